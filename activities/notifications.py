"""Template messages that tell fans an organiser's decision: nothing lost, nothing twice.

A decision writes a Notification row (the outbox) and queues a task in the
same transaction (``TASKS``: the database queue), so a decision that commits
is always announced, whether WeChat or the worker is up at that moment or not.
The task claims its row with a conditional UPDATE, so a task that runs twice
sends once. WeChat's answer is recorded on the row; its TEMPLATESENDJOBFINISH
event, pushed to /wechat/, records delivery. Protocol notes section 12.
"""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from xml.etree.ElementTree import Element

from django_tasks import task

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.dispatch import receiver
from django.urls import reverse
from django.utils import timezone

from fans.auth import login_url, public_url
from fans.server import wechat_message_received
from xgc import tokens, wechat

from .models import Application, DeliveryReport, Notification

logger = logging.getLogger(__name__)

# Waits before the 2nd, 3rd... attempt after -1, an HTTP error, a timeout or
# a quota: about 14 hours in all, then the notification is failed.
RETRY_DELAYS = [
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=12),
]
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
# Answers that another try would only repeat: recorded, never retried.
FINAL_ERRORS = {
    40003: "openid 无效",
    40037: "模板 ID 无效（检查 WECHAT_TEMPLATE_APPLICATION_RESULT）",
    43004: "粉丝未关注公众号，收不到模板消息",
    47003: "模板参数不符合模板要求（检查 WECHAT_TEMPLATE_KEY_*）",
    48001: "公众号没有模板消息权限",
}
# WeChat drops a second message with the same client_msg_id for 10 minutes:
# within that window a send a stopped worker left unanswered may be repeated.
CLIENT_MSG_ID_WINDOW = timedelta(minutes=10)
# A send takes at most a token fetch and the send itself, each bounded by
# WECHAT_HTTP_TIMEOUT; a claim older than this was left by a stopped worker.
STALE_CLAIM = timedelta(minutes=2)
# A delivery report that matches no sent message is kept this long.
EARLY_REPORT_LIFETIME = timedelta(days=1)
# Category templates take at most 20 characters in a thing keyword.
THING_MAX_LENGTH = 20
RESULT_TEXT = {Application.Status.APPROVED: "已通过", Application.Status.REJECTED: "未通过"}


def queue_notification(application: Application) -> Notification | None:
    """Queue the message announcing the application's new status.

    Call it inside the transaction that changes the status. Without a
    template (WECHAT_TEMPLATE_APPLICATION_RESULT) nothing is queued.
    """
    if not settings.WECHAT_TEMPLATE_APPLICATION_RESULT:
        return None
    notification = Notification.objects.create(application=application, decision=application.status)
    send_notification.enqueue(notification.pk)
    return notification


@task()
def send_notification(notification_id: int) -> str:
    """Send one decision's template message; return what became of it."""
    return deliver(notification_id)


def deliver(notification_id: int) -> str:
    """Claim the notification and send it; return its state afterwards."""
    now = timezone.now()
    claimed = Notification.objects.filter(
        pk=notification_id, state=Notification.State.QUEUED, next_attempt_at__lte=now
    ).update(state=Notification.State.SENDING, claimed_at=now, attempts=F("attempts") + 1)
    if not claimed:
        # Sent, failed, or claimed by another run of the same task.
        return "skipped"
    notification = Notification.objects.select_related("application__activity", "application__fan")
    notification = notification.get(pk=notification_id)
    try:
        msgid = tokens.with_platform_token(
            lambda access_token: wechat.send_template_message(
                access_token, template_message(notification)
            )
        )
    except wechat.WeChatError as error:
        return _record_failure(notification, error)
    notification.state, notification.msgid = Notification.State.SENT, msgid
    notification.sent_at, notification.error = timezone.now(), ""
    notification.save(update_fields=["state", "msgid", "sent_at", "error"])
    apply_early_report(msgid)
    logger.info("Notification %s sent (msgid %s)", notification.pk, msgid)
    return Notification.State.SENT


def _record_failure(notification: Notification, error: wechat.WeChatError) -> str:
    final = FINAL_ERRORS.get(error.errcode)
    if final or notification.attempts >= MAX_ATTEMPTS:
        notification.state = Notification.State.FAILED
        notification.finished_at = timezone.now()
        reason = final or f"{MAX_ATTEMPTS} 次尝试均失败"
    else:
        notification.state = Notification.State.QUEUED
        notification.next_attempt_at = timezone.now() + RETRY_DELAYS[notification.attempts - 1]
        reason = "将重试"
    notification.error = f"{error}：{reason}"[:300]
    notification.save(update_fields=["state", "finished_at", "next_attempt_at", "error"])
    if notification.state == Notification.State.QUEUED:
        send_notification.using(run_after=notification.next_attempt_at).enqueue(notification.pk)
    logger.warning("Notification %s not sent: %s", notification.pk, notification.error)
    return notification.state


def template_message(notification: Notification) -> dict:
    """Return the body of cgi-bin/message/template/send for a notification."""
    application = notification.application
    decided_at = timezone.localtime(application.reviewed_at or notification.created_at)
    return {
        "touser": application.fan.openid,
        "template_id": settings.WECHAT_TEMPLATE_APPLICATION_RESULT,
        "url": application_link(application),
        "client_msg_id": notification.client_msg_id,
        "data": {
            settings.WECHAT_TEMPLATE_KEY_ACTIVITY: {
                "value": application.activity.title[:THING_MAX_LENGTH]
            },
            settings.WECHAT_TEMPLATE_KEY_RESULT: {"value": RESULT_TEXT[notification.decision]},
            # WeChat's documented time form; whether it also takes ISO dates
            # is UNCONFIRMED.
            settings.WECHAT_TEMPLATE_KEY_TIME: {
                "value": f"{decided_at:%Y}年{decided_at.month}月{decided_at.day}日 {decided_at:%H:%M}"
            },
        },
    }


def application_link(application: Application) -> str:
    """Return the absolute link that signs the fan in and opens the application."""
    return public_url(login_url(reverse("application-detail", args=[application.pk])))


def recover_interrupted() -> int:
    """Requeue sends a stopped worker left half-done; return how many were found.

    Within WeChat's client_msg_id window a repeat cannot reach the fan twice;
    past it the send is failed rather than risk a second message.
    """
    now = timezone.now()
    stale = Notification.objects.filter(
        state=Notification.State.SENDING, claimed_at__lt=now - STALE_CLAIM
    )
    found = 0
    for notification in stale:
        found += 1
        with transaction.atomic():
            if notification.claimed_at > now - CLIENT_MSG_ID_WINDOW + STALE_CLAIM:
                notification.state, notification.next_attempt_at = Notification.State.QUEUED, now
                notification.save(update_fields=["state", "next_attempt_at"])
                send_notification.enqueue(notification.pk)
            else:
                notification.state, notification.finished_at = Notification.State.FAILED, now
                notification.error = "发送时 worker 中断，无法确认微信是否已发出；未重发以免重复"
                notification.save(update_fields=["state", "finished_at", "error"])
    return found


def record_delivery(msgid: str, status: str) -> bool:
    """Record a TEMPLATESENDJOBFINISH status; return whether a sent message matched."""
    delivered = status == "success"
    updated = Notification.objects.filter(msgid=msgid, state=Notification.State.SENT).update(
        state=Notification.State.DELIVERED if delivered else Notification.State.FAILED,
        error="" if delivered else f"微信投递失败：{status}"[:300],
        finished_at=timezone.now(),
    )
    return bool(updated)


def apply_early_report(msgid: str) -> None:
    """Apply a delivery report that came before the msgid was recorded, if there is one."""
    report = DeliveryReport.objects.filter(msgid=msgid).first()
    if report is not None:
        record_delivery(msgid, report.status)
        report.delete()


@receiver(wechat_message_received)
def template_send_finished(sender, message: Element, **kwargs) -> None:
    """Record WeChat's TEMPLATESENDJOBFINISH event on the notification it reports."""
    if message.findtext("MsgType") != "event" or message.findtext("Event") != (
        "TEMPLATESENDJOBFINISH"
    ):
        return
    # SDKs disagree on the element's case (protocol notes section 12).
    msgid = (message.findtext("MsgID") or message.findtext("MsgId") or "").strip()
    status = (message.findtext("Status") or "").strip()[:100]
    if not re.fullmatch(r"-?[0-9]{1,32}", msgid) or not status:
        return
    # The report is stored before the notification is looked for, and the
    # worker looks for reports after storing the msgid: whichever comes
    # second finds the other's write.
    DeliveryReport.objects.update_or_create(msgid=msgid, defaults={"status": status})
    if record_delivery(msgid, status):
        DeliveryReport.objects.filter(msgid=msgid).delete()
    # Reports of messages xgc did not send (another system on the account)
    # would otherwise pile up.
    DeliveryReport.objects.filter(received_at__lt=timezone.now() - EARLY_REPORT_LIFETIME).delete()
