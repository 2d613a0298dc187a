"""What fans and organisers do to applications, each in one transaction.

Capacity is enforced where the race is: every change that may take a place
locks the activity's row first (SQLite's IMMEDIATE transactions serialise
writers the same way), then counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone

from fans.models import FansProfile
from xgc import tokens, wechat

from . import photo_pool
from .models import Activity, Application, Notification, Photo
from .notifications import queue_notification
from .photo_files import delete_photo_files, save_photo
from .photos import PhotoRejected, ProcessedPhoto


class ApplicationRefused(Exception):
    """The activity cannot take this application; ``reason`` says why."""

    NOT_PUBLISHED = "not_published"
    CLOSED = "closed"
    FULL = "full"
    DECIDED = "decided"
    WITHDRAWN = "withdrawn"
    TOO_MANY_PHOTOS = "too_many_photos"

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ReceivedPhoto:
    photo: ProcessedPhoto
    source: str


class PhotoProblem(Exception):
    """A photo could not be taken; ``message`` names it and says why, for the fan.

    ``media_id`` is the WeChat photo's id when that is the one to choose again.
    """

    def __init__(self, message: str, media_id: str = ""):
        super().__init__(message)
        self.message, self.media_id = message, media_id


def photos_receive(
    *, uploads: Iterable[UploadedFile], media_ids: Iterable[str]
) -> list[ReceivedPhoto]:
    """Process every photo a form brought; raise PhotoProblem at the first bad one.

    Uploads come from the browser; media ids are WeChat's temporary media
    (JS-SDK uploadImage), downloaded now: they last 3 days. Nothing is stored.
    Each photo is processed in a photo process (activities/photo_pool.py)
    while this thread waits, one at a time: the photos of other fans of this
    worker take turns with this fan's, and the first bad one stops the rest.
    """
    received = []
    for upload in uploads:
        label = f"照片「{upload.name}」"
        if upload.size > settings.PHOTO_MAX_BYTES:
            raise PhotoProblem(f"{label}太大（最多 {settings.PHOTO_MAX_BYTES // 2**20} MB）")
        # Django writes uploads over FILE_UPLOAD_MAX_MEMORY_SIZE to disk: the
        # photo process reads the file itself.
        on_disk = getattr(upload, "temporary_file_path", None)
        data = Path(on_disk()) if on_disk else upload.read()
        received.append(ReceivedPhoto(_processed(data, label), Photo.Source.UPLOAD))
    for number, media_id in enumerate(media_ids, 1):
        label = f"微信中选择的第 {number} 张照片"
        photo = _processed(_download(media_id, label), label, media_id)
        received.append(ReceivedPhoto(photo, Photo.Source.WECHAT))
    return received


def _download(media_id: str, label: str) -> bytes:
    try:
        return tokens.with_platform_token(
            lambda access_token: wechat.get_media(
                access_token, media_id, max_bytes=settings.PHOTO_MAX_BYTES
            )
        )
    except wechat.WeChatError as error:
        if error.errcode == wechat.MEDIA_EXPIRED_ERRCODE:
            raise PhotoProblem(f"{label}已在微信过期，请重新选择这张照片", media_id) from None
        # Passing: the same id can be fetched again on the next submit.
        raise PhotoProblem(f"暂时无法从微信取回{label}，请稍后再提交") from None


def _processed(data: bytes | Path, label: str, media_id: str = "") -> ProcessedPhoto:
    """Return the processed photo; a refused one is PhotoProblem naming media_id, to choose again."""
    try:
        return photo_pool.process(
            data,
            max_bytes=settings.PHOTO_MAX_BYTES,
            max_pixels=settings.PHOTO_MAX_PIXELS,
            display_size=settings.PHOTO_DISPLAY_SIZE,
            thumbnail_size=settings.PHOTO_THUMBNAIL_SIZE,
        )
    except PhotoRejected as rejected:
        raise PhotoProblem(f"{label}：{rejected.reason}", media_id) from None
    except photo_pool.PhotoUnavailable:
        # Passing (busy, or a photo process died): the same photo may go through next time.
        raise PhotoProblem(f"暂时无法处理{label}，请稍后再提交") from None


def application_submit(
    *,
    activity_id: int,
    fan: FansProfile,
    name: str,
    phone: str,
    note: str,
    photos: Sequence[ReceivedPhoto] = (),
) -> Application:
    """Create the fan's application, or update it while it is pending.

    A withdrawn application is submitted anew (it takes a place again); an
    approved or rejected one cannot change. Photos are added (the same photo
    twice is kept once), up to Photo.MAX_PER_APPLICATION. Raise
    ApplicationRefused; whatever fails, no file is left behind.
    """
    saved: list[Photo] = []
    try:
        with transaction.atomic():
            application = _submit(activity_id, fan, name, phone, note)
            _attach(application, photos, saved)
            return application
    except BaseException:
        # The rows are rolled back; the files written for them are not.
        for photo in saved:
            delete_photo_files(photo)
        raise


def _submit(activity_id: int, fan: FansProfile, name: str, phone: str, note: str) -> Application:
    activity = Activity.objects.select_for_update().get(pk=activity_id)
    application = Application.objects.filter(activity=activity, fan=fan).first()
    taken = activity.places_taken() if activity.capacity is not None else 0
    reason = refusal(activity, application, places_taken=taken)
    if reason:
        raise ApplicationRefused(reason)
    takes_place = application is None or not application.holds_place
    if application is None:
        application = Application(activity=activity, fan=fan)
    application.name, application.phone, application.note = name, phone, note
    application.status = Application.Status.PENDING
    application.save()
    if takes_place and not activity.review_required:
        _decide(application, Application.Status.APPROVED, review_note="")
    return application


def _attach(application: Application, photos: Sequence[ReceivedPhoto], saved: list[Photo]) -> None:
    """Store the photos the application does not have yet, adding each to saved."""
    known = set(application.photos.values_list("sha256", flat=True))
    new = {}
    for received in photos:
        if received.photo.sha256 not in known:
            new.setdefault(received.photo.sha256, received)
    if len(known) + len(new) > Photo.MAX_PER_APPLICATION:
        raise ApplicationRefused(ApplicationRefused.TOO_MANY_PHOTOS)
    for received in new.values():
        saved.append(
            save_photo(application=application, photo=received.photo, source=received.source)
        )


def refusal(
    activity: Activity, application: Application | None, *, places_taken: int
) -> str | None:
    """Return why the fan cannot submit this application now (a reason), or None.

    The form page asks before the fan types; application_submit asks again
    with the activity locked, and that answer is the one that counts.
    """
    if not activity.published:
        return ApplicationRefused.NOT_PUBLISHED
    if activity.deadline_passed():
        return ApplicationRefused.CLOSED
    if application is not None and application.status in Application.DECISIONS:
        return ApplicationRefused.DECIDED
    takes_place = application is None or not application.holds_place
    if takes_place and activity.places_left(places_taken) == 0:
        return ApplicationRefused.FULL
    return None


def decision_refusal(activity: Activity, application: Application, decision: str) -> str | None:
    """Return why the decision cannot be made now (WITHDRAWN or FULL), or None.

    Call it with both rows locked, as application_decide does.
    """
    if application.status == Application.Status.WITHDRAWN:
        return ApplicationRefused.WITHDRAWN
    takes_place = decision in Application.HOLDS_PLACE and not application.holds_place
    if takes_place and activity.capacity is not None:
        if activity.places_left(activity.places_taken()) == 0:
            return ApplicationRefused.FULL
    return None


def application_withdraw(*, application_id: int, fan: FansProfile) -> Application:
    """Withdraw the fan's own pending or approved application, freeing its place."""
    with transaction.atomic():
        application = Application.objects.select_for_update().get(pk=application_id, fan=fan)
        if application.holds_place:
            application.status = Application.Status.WITHDRAWN
            application.save(update_fields=["status", "updated_at"])
        return application


def application_decide(
    *, application_id: int, decision: str, review_note: str = ""
) -> tuple[Application, bool]:
    """Approve or reject an application; return it and whether it changed.

    A change queues exactly one template message, in the same transaction. The
    same decision again changes nothing and sends nothing; a withdrawn
    application is not decided; approving one that holds no place needs a free
    place (ApplicationRefused FULL otherwise).
    """
    if decision not in Application.DECISIONS:
        raise ValueError(f"{decision!r} is not a decision")
    with transaction.atomic():
        activity_id = (
            Application.objects.filter(pk=application_id)
            .values_list("activity_id", flat=True)
            .get()
        )
        activity = Activity.objects.select_for_update().get(pk=activity_id)
        application = Application.objects.select_for_update().get(pk=application_id)
        if application.status == decision:
            return application, False
        reason = decision_refusal(activity, application, decision)
        if reason == ApplicationRefused.WITHDRAWN:
            return application, False
        if reason:
            raise ApplicationRefused(reason)
        _decide(application, decision, review_note)
        return application, True


def _decide(application: Application, decision: str, review_note: str) -> Notification:
    application.status = decision
    application.review_note = review_note if decision == Application.Status.REJECTED else ""
    application.reviewed_at = timezone.now()
    application.save(update_fields=["status", "review_note", "reviewed_at", "updated_at"])
    return queue_notification(application)
