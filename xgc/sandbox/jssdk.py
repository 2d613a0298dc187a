"""The JS-SDK on the sandbox's phone, and the temporary media it uploads.

``jweixin.js`` stands in for WeChat's script; it asks ``preverify`` whether
wx.config's signature is right and sends photos to ``upload_image``, which
keeps them as temporary media for cgi-bin/media/get. Injected faults apply
to uploads and to media/get.
Rules from shared/wechat-protocol.md sections 8 and 11.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from xgc.wechat import jsapi_signature

from .api import SNS_CONTENT_TYPE, SandboxError, apply_faults, require, wechat_api
from .models import MEDIA_LIFETIME, JsapiTicket, SandboxMedia
from .platform import valid_platform_token

STAND_IN = Path(__file__).parent / "static" / "sandbox" / "jweixin.js"
# WeChat's documented limit for an image (the current media upload page).
UPLOAD_MAX_BYTES = 10 * 1024 * 1024


@require_GET
def jweixin(request: HttpRequest) -> FileResponse:
    """Serve the stand-in for res.wx.qq.com/open/js/jweixin-1.6.0.js."""
    response = FileResponse(STAND_IN.open("rb"), content_type="text/javascript")
    response["Cache-Control"] = "no-cache"
    return response


def config_refused(reason: str) -> JsonResponse:
    # The page's wx.error sees errMsg only, as with WeChat; the stand-in
    # writes the reason to the console for the developer.
    return JsonResponse({"errMsg": "config:invalid signature", "reason": reason})


# The stand-in posts from xgc's pages; the sandbox only ever runs while
# developing (see sandbox.E001).
@csrf_exempt
@require_POST
def preverify(request: HttpRequest) -> JsonResponse:
    """Check wx.config as WeChat's client does: the signature of this page's URL."""
    params = request.POST
    if params.get("appId") != settings.APP_ID:
        return config_refused(f"appId is not the sandbox's APP_ID {settings.APP_ID}")
    ticket = (
        JsapiTicket.objects.filter(expires_at__gt=timezone.now()).order_by("-expires_at").first()
    )
    if ticket is None:
        return config_refused("no jsapi_ticket has been issued, or it expired")
    timestamp = params.get("timestamp", "")
    if not timestamp.isdigit():
        return config_refused("timestamp must be whole seconds")
    expected = jsapi_signature(
        ticket=ticket.ticket,
        noncestr=params.get("nonceStr", ""),
        timestamp=int(timestamp),
        url=params.get("url", ""),
    )
    if not constant_time_compare(params.get("signature", ""), expected):
        return config_refused(
            "the signature is not sha1(jsapi_ticket=…&noncestr=…&timestamp=…&url=…) of the "
            "latest ticket and this page's URL without #"
        )
    return JsonResponse({"errMsg": "config:ok"})


@csrf_exempt
@require_POST
def upload_image(request: HttpRequest) -> JsonResponse:
    """Keep a photo from wx.uploadImage as temporary media; answer its serverId."""
    try:
        # A slow or failing WeChat slows or fails the phone's uploads too.
        apply_faults()
    except SandboxError:
        return JsonResponse({"errMsg": "uploadImage:fail, system error"})
    upload = request.FILES.get("media")
    if upload is None or not upload.size:
        return JsonResponse({"errMsg": "uploadImage:fail, no image"})
    if not (upload.content_type or "").startswith("image/"):
        return JsonResponse({"errMsg": "uploadImage:fail, not an image"})
    if upload.size > UPLOAD_MAX_BYTES:
        return JsonResponse({"errMsg": "uploadImage:fail, image too large"})
    # Nothing outlives its three days: keep the database small.
    SandboxMedia.objects.filter(created_at__lte=timezone.now() - MEDIA_LIFETIME).delete()
    media = SandboxMedia.objects.create(content=upload.read(), content_type=upload.content_type)
    return JsonResponse({"errMsg": "uploadImage:ok", "serverId": media.media_id})


@wechat_api(SNS_CONTENT_TYPE, method="GET")
def media_get(request: HttpRequest) -> HttpResponse:
    """cgi-bin/media/get: the file for 3 days, else 40007 as HTTP 200 text/plain JSON."""
    valid_platform_token(request)
    media_id = require(request.GET, "media_id", 41006)
    media = SandboxMedia.objects.filter(media_id=media_id).first()
    if media is None or media.expired():
        raise SandboxError(40007, "invalid media_id")
    response = HttpResponse(bytes(media.content), content_type=media.content_type)
    # The header names and values WeChat's documentation shows.
    response["Content-disposition"] = f'attachment; filename="{media.media_id}.jpg"'
    response["Cache-Control"] = "no-cache, must-revalidate"
    return response
