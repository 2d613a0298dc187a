"""What fans and organisers do to applications, each in one transaction.

Capacity is enforced where the race is: every change that may take a place
locks the activity's row first (SQLite's IMMEDIATE transactions serialise
writers the same way), then counts.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from fans.models import FansProfile

from .models import Activity, Application, Notification
from .notifications import queue_notification


class ApplicationRefused(Exception):
    """The activity cannot take this application; ``reason`` says why."""

    NOT_PUBLISHED = "not_published"
    CLOSED = "closed"
    FULL = "full"
    DECIDED = "decided"

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def application_submit(
    *, activity_id: int, fan: FansProfile, name: str, phone: str, note: str
) -> Application:
    """Create the fan's application, or update it while it is pending.

    A withdrawn application is submitted anew (it takes a place again); an
    approved or rejected one cannot change. Raise ApplicationRefused.
    """
    with transaction.atomic():
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
    if takes_place and activity.capacity is not None and places_taken >= activity.capacity:
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
        if application.status in (decision, Application.Status.WITHDRAWN):
            return application, False
        takes_place = decision in Application.HOLDS_PLACE and not application.holds_place
        if takes_place and activity.capacity is not None:
            if activity.places_taken() >= activity.capacity:
                raise ApplicationRefused(ApplicationRefused.FULL)
        _decide(application, decision, review_note)
        return application, True


def _decide(application: Application, decision: str, review_note: str) -> Notification:
    application.status = decision
    application.review_note = review_note if decision == Application.Status.REJECTED else ""
    application.reviewed_at = timezone.now()
    application.save(update_fields=["status", "review_note", "reviewed_at", "updated_at"])
    return queue_notification(application)
