"""The template message that answers each decision: nothing lost, nothing twice.

The queue really runs: decisions enqueue tasks in the database, and
``manage.py worker --batch`` runs what is due, against a WeChat mocked with
``responses``.
"""

from __future__ import annotations

import json
import signal
import time
from datetime import timedelta

import pytest
import requests
from django_tasks_db.models import DBTaskResult, get_date_max

from django.core.management import call_command
from django.utils import timezone

from activities import notifications
from activities.models import Application, DeliveryReport, Notification
from activities.services import application_decide, application_submit
from fans.server import signature

from .conftest import API

TEMPLATE_ID = "tmplApplicationResult"
SEND = API + "/cgi-bin/message/template/send"
STABLE = API + "/cgi-bin/stable_token"
MSGID = 3717005636572528642


@pytest.fixture(autouse=True)
def template(settings):
    settings.WECHAT_TEMPLATE_APPLICATION_RESULT = TEMPLATE_ID


@pytest.fixture
def application(make_fan, make_activity):
    activity = make_activity(title="周末读书会：一起读《红楼梦》第一回到第五回")
    fan = make_fan(openid="oFANnotified00000000000001")
    return application_submit(
        activity_id=activity.pk, fan=fan, name="张三", phone="13812345678", note=""
    )


def run_worker() -> None:
    """Run every task that is due, then return (the worker's --batch mode)."""
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        call_command("worker", batch=True, reload=False, startup_delay=False, verbosity=0)
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


def token_answer(wechat_api, *values: str):
    return [
        wechat_api.post(STABLE, json={"access_token": value, "expires_in": 7200})
        for value in values
    ]


def send_answers(wechat_api, *bodies: dict | Exception):
    return [
        wechat_api.post(SEND, body=body)
        if isinstance(body, Exception)
        else wechat_api.post(SEND, body=json.dumps(body), content_type="application/json")
        for body in bodies
    ]


def approve(application: Application) -> Notification:
    application_decide(application_id=application.pk, decision=Application.Status.APPROVED)
    return application.notifications.get()


def test_a_decision_queues_one_message_in_its_own_transaction(application):
    """The outbox row and its task exist as soon as the decision commits."""
    notification = approve(application)
    assert notification.state == Notification.State.QUEUED
    assert notification.decision == Application.Status.APPROVED
    (task,) = DBTaskResult.objects.all()
    assert task.task_path == "activities.notifications.send_notification"
    assert task.args_kwargs["args"] == [notification.pk]


def test_the_same_decision_again_queues_nothing(application):
    approve(application)
    _, changed = application_decide(
        application_id=application.pk, decision=Application.Status.APPROVED
    )
    assert not changed
    assert Notification.objects.count() == 1 == DBTaskResult.objects.count()


def test_without_a_template_nothing_is_queued(application, settings):
    settings.WECHAT_TEMPLATE_APPLICATION_RESULT = ""
    application_decide(application_id=application.pk, decision=Application.Status.REJECTED)
    assert not Notification.objects.exists()
    assert not DBTaskResult.objects.exists()


def test_the_worker_sends_the_exact_template_message(wechat_api, application):
    """One POST with WeChat's body: openid, template, link, client_msg_id, the three keywords."""
    token_answer(wechat_api, "PLATFORM")
    (send,) = send_answers(wechat_api, {"errcode": 0, "errmsg": "ok", "msgid": MSGID})
    notification = approve(application)
    run_worker()

    request = send.calls[0].request
    assert request.url == f"{SEND}?access_token=PLATFORM"
    # Raw UTF-8, as WeChat wants it (escapes are refused elsewhere with 40033).
    assert "周末读书会".encode() in request.body
    decided = timezone.localtime(Application.objects.get().reviewed_at)
    assert json.loads(request.body) == {
        "touser": "oFANnotified00000000000001",
        "template_id": TEMPLATE_ID,
        "url": f"https://xgc.example.com/wechat/login/?next=%2Fapplications%2F{application.pk}%2F",
        "client_msg_id": notification.client_msg_id,
        "data": {
            "thing1": {"value": "周末读书会：一起读《红楼梦》第一回到第五"},
            "phrase2": {"value": "已通过"},
            "time3": {"value": f"{decided.year}年{decided.month}月{decided.day}日 {decided:%H:%M}"},
        },
    }
    notification.refresh_from_db()
    assert notification.state == Notification.State.SENT
    assert notification.msgid == str(MSGID)
    assert notification.attempts == 1


def test_the_message_link_opens_the_application_after_sign_in(application, client):
    """The link goes through /wechat/login/ with next= the application's page."""
    notification = approve(application)
    link = notifications.template_message(notification)["url"]
    response = client.get(link.removeprefix("https://xgc.example.com"))
    assert response.status_code == 302
    flow = response.cookies["wechat_flow"].value
    from django.core import signing

    assert signing.loads(flow, salt="fans.flow")["next"] == f"/applications/{application.pk}/"


def test_a_task_that_runs_twice_sends_once(wechat_api, application):
    token_answer(wechat_api, "PLATFORM")
    (send,) = send_answers(wechat_api, {"errcode": 0, "errmsg": "ok", "msgid": MSGID})
    notification = approve(application)
    notifications.send_notification.enqueue(notification.pk)
    run_worker()
    assert send.call_count == 1
    assert DBTaskResult.objects.successful().count() == 2


def test_a_rejection_says_so(wechat_api, application):
    token_answer(wechat_api, "PLATFORM")
    (send,) = send_answers(wechat_api, {"errcode": 0, "errmsg": "ok", "msgid": MSGID})
    application_decide(
        application_id=application.pk, decision=Application.Status.REJECTED, review_note="名额有限"
    )
    run_worker()
    assert json.loads(send.calls[0].request.body)["data"]["phrase2"] == {"value": "未通过"}


def scheduled():
    """Return the tasks waiting for a later time (a task due at once has the maximum date)."""
    return DBTaskResult.objects.filter(status="READY").exclude(run_after=get_date_max())


def make_due(notification: Notification) -> None:
    """Let the retry scheduled for later run now, as the clock would."""
    past = timezone.now() - timedelta(seconds=1)
    Notification.objects.filter(pk=notification.pk).update(next_attempt_at=past)
    scheduled().update(run_after=past)


@pytest.mark.parametrize(
    "failure",
    [
        {"errcode": -1, "errmsg": "system error"},
        requests.Timeout("read timed out"),
        requests.ConnectionError("connection refused"),
    ],
    ids=["busy", "timeout", "unreachable"],
)
def test_a_passing_failure_is_retried_later_with_the_same_client_msg_id(
    wechat_api, application, failure
):
    token_answer(wechat_api, "PLATFORM")
    first, second = send_answers(
        wechat_api, failure, {"errcode": 0, "errmsg": "ok", "msgid": MSGID}
    )
    notification = approve(application)
    before = timezone.now()
    run_worker()

    notification.refresh_from_db()
    assert notification.state == Notification.State.QUEUED
    assert notification.error
    delay = notifications.RETRY_DELAYS[0]
    assert before + delay <= notification.next_attempt_at <= timezone.now() + delay
    retry = scheduled().get()
    assert retry.args_kwargs["args"] == [notification.pk]
    assert first.call_count == 1 and second.call_count == 0

    make_due(notification)
    run_worker()
    notification.refresh_from_db()
    assert notification.state == Notification.State.SENT
    assert notification.attempts == 2
    bodies = [json.loads(call.request.body) for call in wechat_api.calls if call.request.body]
    sends = [body for body in bodies if "touser" in body]
    assert {body["client_msg_id"] for body in sends} == {notification.client_msg_id}


def test_a_refused_platform_token_is_replaced_once(wechat_api, application):
    old, new = token_answer(wechat_api, "OLD", "NEW")
    refused, accepted = send_answers(
        wechat_api,
        {"errcode": 40001, "errmsg": "invalid credential"},
        {"errcode": 0, "errmsg": "ok", "msgid": MSGID},
    )
    notification = approve(application)
    run_worker()
    assert json.loads(new.calls[0].request.body)["force_refresh"] is True
    assert accepted.calls[0].request.url.endswith("access_token=NEW")
    notification.refresh_from_db()
    assert notification.state == Notification.State.SENT


@pytest.mark.parametrize(
    ("errcode", "reason"),
    [(43004, "未关注"), (40003, "openid"), (40037, "模板 ID"), (47003, "模板参数")],
)
def test_an_answer_that_would_not_change_is_recorded_not_retried(
    wechat_api, application, errcode, reason
):
    token_answer(wechat_api, "PLATFORM")
    send_answers(wechat_api, {"errcode": errcode, "errmsg": "refused"})
    notification = approve(application)
    run_worker()
    notification.refresh_from_db()
    assert notification.state == Notification.State.FAILED
    assert str(errcode) in notification.error and reason in notification.error
    assert notification.finished_at is not None
    assert not DBTaskResult.objects.filter(status="READY").exists()


def test_retries_are_bounded(wechat_api, application):
    token_answer(wechat_api, "PLATFORM")
    busy = {"errcode": -1, "errmsg": "system error"}
    (send,) = send_answers(wechat_api, busy)
    notification = approve(application)
    for _ in range(notifications.MAX_ATTEMPTS):
        run_worker()
        make_due(notification)
    run_worker()
    notification.refresh_from_db()
    assert send.call_count == notifications.MAX_ATTEMPTS
    assert notification.state == Notification.State.FAILED
    assert f"{notifications.MAX_ATTEMPTS} 次尝试均失败" in notification.error


def test_a_decision_made_while_no_worker_runs_is_sent_when_one_starts(wechat_api, application):
    """The queue is the database: nothing is lost while the worker is stopped."""
    notification = approve(application)
    application_decide(application_id=application.pk, decision=Application.Status.REJECTED)
    assert Notification.objects.filter(state=Notification.State.QUEUED).count() == 2
    token_answer(wechat_api, "PLATFORM")
    send_answers(
        wechat_api,
        {"errcode": 0, "errmsg": "ok", "msgid": MSGID},
        {"errcode": 0, "errmsg": "ok", "msgid": MSGID + 1},
    )
    run_worker()
    assert set(Notification.objects.values_list("state", flat=True)) == {"sent"}
    notification.refresh_from_db()
    assert notification.msgid == str(MSGID)


def test_a_send_left_half_done_by_a_stopped_worker_is_resumed_within_the_window(
    wechat_api, application
):
    notification = approve(application)
    DBTaskResult.objects.all().delete()  # the stopped worker had taken its task
    claimed = timezone.now() - notifications.STALE_CLAIM - timedelta(seconds=5)
    Notification.objects.filter(pk=notification.pk).update(
        state=Notification.State.SENDING, claimed_at=claimed, attempts=1
    )
    token_answer(wechat_api, "PLATFORM")
    (send,) = send_answers(wechat_api, {"errcode": 0, "errmsg": "ok", "msgid": MSGID})
    run_worker()
    notification.refresh_from_db()
    assert notification.state == Notification.State.SENT
    # The same client_msg_id: WeChat drops it if the first send did go out.
    assert json.loads(send.calls[0].request.body)["client_msg_id"] == notification.client_msg_id


def test_a_send_left_half_done_too_long_ago_is_failed_not_repeated(application):
    notification = approve(application)
    DBTaskResult.objects.all().delete()
    claimed = timezone.now() - notifications.CLIENT_MSG_ID_WINDOW
    Notification.objects.filter(pk=notification.pk).update(
        state=Notification.State.SENDING, claimed_at=claimed, attempts=1
    )
    run_worker()
    notification.refresh_from_db()
    assert notification.state == Notification.State.FAILED
    assert "未重发" in notification.error


def push_event(client, msgid: str, status: str, *, tag: str = "MsgID"):
    timestamp, nonce = str(int(time.time())), f"{msgid[-9:]}{len(status)}"
    query = (
        f"signature={signature('xgctoken', timestamp, nonce)}&timestamp={timestamp}&nonce={nonce}"
    )
    body = (
        "<xml><ToUserName><![CDATA[gh_0123456789ab]]></ToUserName>"
        "<FromUserName><![CDATA[oFANnotified00000000000001]]></FromUserName>"
        f"<CreateTime>{timestamp}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        "<Event><![CDATA[TEMPLATESENDJOBFINISH]]></Event>"
        f"<{tag}>{msgid}</{tag}><Status><![CDATA[{status}]]></Status></xml>"
    )
    response = client.post(f"/wechat/?{query}", body, content_type="text/xml")
    assert response.content == b"success"


@pytest.mark.parametrize("tag", ["MsgID", "MsgId"])
def test_the_delivery_event_marks_the_message_delivered(wechat_api, application, client, tag):
    token_answer(wechat_api, "PLATFORM")
    send_answers(wechat_api, {"errcode": 0, "errmsg": "ok", "msgid": MSGID})
    notification = approve(application)
    run_worker()
    push_event(client, str(MSGID), "success", tag=tag)
    notification.refresh_from_db()
    assert notification.state == Notification.State.DELIVERED
    assert notification.finished_at is not None


def test_a_failed_delivery_keeps_wechats_words(wechat_api, application, client):
    token_answer(wechat_api, "PLATFORM")
    send_answers(wechat_api, {"errcode": 0, "errmsg": "ok", "msgid": MSGID})
    notification = approve(application)
    run_worker()
    push_event(client, str(MSGID), "failed:user block")
    notification.refresh_from_db()
    assert notification.state == Notification.State.FAILED
    assert "failed:user block" in notification.error


def test_a_delivery_event_that_beats_the_send_answer_is_applied_after_it(
    wechat_api, application, client
):
    """WeChat may push the event before the worker has stored the msgid.

    The report waits in the database, which the worker (another process)
    shares with the web process that received it.
    """
    push_event(client, str(MSGID), "success")
    assert DeliveryReport.objects.get(msgid=str(MSGID)).status == "success"
    token_answer(wechat_api, "PLATFORM")
    send_answers(wechat_api, {"errcode": 0, "errmsg": "ok", "msgid": MSGID})
    notification = approve(application)
    run_worker()
    notification.refresh_from_db()
    assert notification.state == Notification.State.DELIVERED
    assert not DeliveryReport.objects.exists()


def test_reports_of_messages_xgc_never_sent_do_not_pile_up(client, db):
    push_event(client, "1111", "success")
    DeliveryReport.objects.update(received_at=timezone.now() - timedelta(days=2))
    push_event(client, "2222", "success")
    assert list(DeliveryReport.objects.values_list("msgid", flat=True)) == ["2222"]


def test_an_auto_approved_application_is_announced_too(make_fan, make_activity):
    activity = make_activity(review_required=False)
    application = application_submit(
        activity_id=activity.pk, fan=make_fan(), name="李四", phone="13900000000", note=""
    )
    assert application.status == Application.Status.APPROVED
    assert application.notifications.get().decision == Application.Status.APPROVED


def test_the_task_sends_nothing_for_a_notification_not_queued(wechat_api, application):
    notification = approve(application)
    Notification.objects.filter(pk=notification.pk).update(state=Notification.State.SENT)
    assert notifications.deliver(notification.pk) == "skipped"
    assert not wechat_api.calls
