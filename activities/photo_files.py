"""Where photos live: their two files in the default storage, and their rows.

The pipeline (activities/photos.py) never sees a storage; this module is the
edge where its output becomes files and a Photo. Names are random
(photo_name), never the client's, and a name is never reused. A file without
a row is an orphan: save_photo removes its own on failure, and
``manage.py clean_photo_files`` finds any left by a crash.
"""

from __future__ import annotations

import logging
from functools import partial

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from .models import Application, Photo, photo_name
from .photos import ProcessedPhoto

logger = logging.getLogger(__name__)

# The folder of default_storage that holds every photo file.
PHOTOS_DIR = "photos"
THUMBNAIL_SUFFIX = "-thumb"


def thumbnail_name(display_name: str) -> str:
    """Return the thumbnail's name: the display copy's stem with a suffix."""
    stem, dot, extension = display_name.rpartition(".")
    return f"{stem}{THUMBNAIL_SUFFIX}{dot}{extension}"


def _content(data: bytes, content_type: str) -> ContentFile:
    content = ContentFile(data)
    # S3Storage stores a file's content_type as the object's ContentType
    # before guessing from the name: the type of the bytes xgc encoded, never
    # one a client declared. FileSystemStorage ignores it.
    content.content_type = content_type
    return content


def save_photo(*, application: Application, photo: ProcessedPhoto, source: str) -> Photo:
    """Store the display copy and the thumbnail, then create their Photo row.

    If anything fails after a file was written (the row breaks the unique
    (application, sha256) constraint, the storage fails halfway), the files
    written are deleted and the error raised again: no orphan is left.
    """
    display = photo_name(photo.extension)
    written: list[str] = []
    try:
        written.append(
            default_storage.save(display, _content(photo.display.data, photo.content_type))
        )
        written.append(
            default_storage.save(
                thumbnail_name(written[0]), _content(photo.thumbnail.data, photo.content_type)
            )
        )
        # A savepoint, so that a refused row leaves the caller's transaction usable.
        with transaction.atomic():
            return Photo.objects.create(
                application=application,
                display=written[0],
                thumbnail=written[1],
                content_type=photo.content_type,
                width=photo.display.width,
                height=photo.display.height,
                thumbnail_width=photo.thumbnail.width,
                thumbnail_height=photo.thumbnail.height,
                display_bytes=len(photo.display.data),
                original_bytes=photo.original_bytes,
                sha256=photo.sha256,
                source=source,
            )
    except BaseException:
        _delete_names(written)
        raise


def delete_photo_files(photo: Photo) -> None:
    """Delete the photo's two files; a file already gone is no error.

    Best effort: a storage failure is logged, not raised, so that it never
    hides the error being handled or undoes a committed delete.
    ``manage.py clean_photo_files`` removes what is left.
    """
    _delete_names([photo.display.name, photo.thumbnail.name])


def _delete_names(names: list[str]) -> None:
    for name in names:
        if not name:
            continue
        try:
            default_storage.delete(name)
        except Exception:
            logger.exception("Could not delete photo file %s; clean_photo_files will", name)


@receiver(post_delete, sender=Photo, dispatch_uid="activities.photo_files.delete_files")
def delete_files_after_commit(sender, instance: Photo, using: str, **kwargs) -> None:
    """Delete a deleted photo's files, once the delete is committed.

    A rolled-back delete keeps them: the row is back, and so are its files.
    Deleting an application deletes its photos (CASCADE), and so their files.
    """
    transaction.on_commit(partial(delete_photo_files, instance), using=using, robust=True)
