"""Serve a photo to the fan who sent it and to staff allowed to see photos.

Fans' photos are personal data: no URL serves MEDIA_ROOT or the bucket
directly. Every request comes here, is checked, and is then answered by the
storage in use:

- S3 (S3_BUCKET): a redirect to a presigned URL that works S3_URL_SECONDS;
- disk behind nginx (PHOTO_X_ACCEL_REDIRECT): an empty answer whose
  X-Accel-Redirect header has nginx send the file from an internal location;
- disk alone (runserver, tests): Django streams the file.
"""

from __future__ import annotations

import logging

from storages.backends.s3 import S3Storage

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.files.storage import default_storage
from django.db.models import F
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_safe

from .models import Photo

logger = logging.getLogger(__name__)

KINDS = ("display", "thumbnail")
# How long a browser may keep a photo it was given (its own cache only).
MAX_AGE_SECONDS = 300
VIEW_PERMISSION = "activities.view_photo"


def photo_url(photo: Photo, kind: str = "display") -> str:
    """Return the URL of the photo's display copy or thumbnail."""
    return reverse("photo", kwargs={"pk": photo.pk, "kind": kind})


@require_safe
def photo(request: HttpRequest, pk: int, kind: str) -> HttpResponse:
    """Answer the photo's file to its fan or to staff with activities.view_photo.

    Anyone else gets 404, as for a photo that does not exist, and is not sent
    to sign in: the URL must not tell that the photo exists. Staff without
    the permission get 403, photo or not.
    """
    if kind not in KINDS:
        raise Http404
    found = Photo.objects.annotate(fan_id=F("application__fan_id")).filter(pk=pk).first()
    fan = request.fan
    if found is not None and fan and found.fan_id == fan.pk:
        return serve(found, kind)
    if request.user.is_staff:
        if not request.user.has_perm(VIEW_PERMISSION):
            raise PermissionDenied
        if found is not None:
            return serve(found, kind)
    raise Http404


def serve(photo: Photo, kind: str) -> HttpResponse:
    """Answer the file the way the storage in use allows."""
    name = getattr(photo, kind).name
    if isinstance(default_storage, S3Storage):
        return _redirect_to_bucket(photo, name)
    if settings.PHOTO_X_ACCEL_REDIRECT:
        # nginx sends the file as the body, keeping this Content-Type (a bare
        # HttpResponse would say text/html) and Cache-Control; its internal
        # location in deploy/nginx/xgc.conf adds nosniff and Vary again.
        response = HttpResponse(content_type=photo.content_type)
        response["X-Accel-Redirect"] = settings.PHOTO_X_ACCEL_REDIRECT + name
    else:
        try:
            file = default_storage.open(name, "rb")
        except FileNotFoundError:
            # As nginx and S3 answer for a missing file; the row outlived it.
            logger.warning("Photo %s has no file %s", photo.pk, name)
            raise Http404 from None
        response = FileResponse(file, content_type=photo.content_type)
    response["Cache-Control"] = f"private, max-age={MAX_AGE_SECONDS}"
    return _protected(response)


def _redirect_to_bucket(photo: Photo, name: str) -> HttpResponse:
    storage = default_storage
    url = storage.url(
        name,
        parameters={
            # The bucket answers with these, whatever the object's metadata says.
            "ResponseContentType": photo.content_type,
            "ResponseCacheControl": f"private, max-age={storage.querystring_expire}",
        },
    )
    response = HttpResponseRedirect(url)
    # A presigned URL expires: the redirect to it must not be kept.
    response["Cache-Control"] = "private, no-store"
    response["Content-Type"] = photo.content_type
    return _protected(response)


def _protected(response: HttpResponse) -> HttpResponse:
    response["X-Content-Type-Options"] = "nosniff"
    # Whom the answer is for comes from the cookies.
    patch_vary_headers(response, ["Cookie"])
    return response
