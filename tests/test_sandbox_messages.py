"""The sandbox's template messages behave like WeChat's, delivery event included."""

import json
import re
from datetime import timedelta
from urllib.parse import urlencode, urlsplit

import pytest
import requests
import responses
from defusedxml import ElementTree

from django.http import QueryDict
from django.test import Client
from django.utils import timezone

from fans.models import FansProfile
from fans.server import is_signed
from xgc.sandbox.api import Faults
from xgc.sandbox.messages import TEMPLATE_CATALOGUE
from xgc.sandbox.models import PlatformToken, SandboxFan, SandboxMessage
from xgc.sandbox.process import APPLICATION_RESULT_TEMPLATE_ID
from xgc.sandbox.push import NOT_PUSHED

pytestmark = pytest.mark.django_db

APP = {"appid": "wx1234567890abcdef", "secret": "app-secret-never-logged"}
# reverse("wechat-server") of xgc's r"^wechat/?$" drops the optional slash.
SERVER_URL = "https://xgc.example.com/wechat"
FIRST_FAN = "oSBX0000000000000000000001"
SECOND_FAN = "oSBX0000000000000000000002"
DETAIL_URL = "https://xgc.example.com/wechat/login/?next=/applications/7/"


@pytest.fixture
def pushes():
    """Catch the sandbox's pushes to xgc's server URL, which answers success."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(responses.POST, SERVER_URL, body="success")
        yield mock


@pytest.fixture
def token(client) -> str:
    body = {"grant_type": "client_credential", **APP}
    response = client.post("/sandbox/cgi-bin/stable_token", body, content_type="application/json")
    return response.json()["access_token"]


@pytest.fixture
def phone(client):
    """A browser whose WeChat user is the first seeded test fan."""
    client.post("/sandbox/phone", {"openid": FIRST_FAN})
    return client


def message(**overrides) -> dict:
    """Return the body xgc sends for an approved application, as the brief's example."""
    return {
        "touser": FIRST_FAN,
        "template_id": APPLICATION_RESULT_TEMPLATE_ID,
        "url": DETAIL_URL,
        "client_msg_id": "",
        "data": {
            "thing1": {"value": "周末读书会"},
            "phrase2": {"value": "已通过"},
            "time3": {"value": "2026年12月2日 14:05"},
        },
    } | overrides


def send(client, token: str, body) -> dict:
    raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    response = client.post(
        f"/sandbox/cgi-bin/message/template/send?access_token={token}",
        raw,
        content_type="application/json",
    )
    assert response.status_code == 200  # WeChat reports errors in the body
    return json.loads(response.content.decode("utf-8"))


def data_with(**values: str) -> dict:
    return {key: {"value": value} for key, value in values.items()}


def feed_to_xgc(client, push) -> str:
    """Deliver a captured push to xgc's own /wechat/; return its answer."""
    query = urlsplit(push.request.url).query
    response = client.post(f"/wechat/?{query}", push.request.body, content_type="text/xml")
    return response.content.decode()


# The catalogue


def test_the_catalogue_has_the_application_result_template():
    template = TEMPLATE_CATALOGUE[APPLICATION_RESULT_TEMPLATE_ID]
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", APPLICATION_RESULT_TEMPLATE_ID)
    assert template.title == "申请结果通知"
    assert template.keywords == {"thing1": "活动名称", "phrase2": "审核结果", "time3": "审核时间"}


def test_the_index_shows_the_catalogue_and_links_the_messages_page(client):
    page = client.get("/sandbox/").content.decode()
    assert APPLICATION_RESULT_TEMPLATE_ID in page and "申请结果通知" in page
    assert "thing1" in page and "审核时间" in page
    assert 'href="/sandbox/messages"' in page
    assert 'href="/sandbox/messages"' in client.get("/sandbox/phone").content.decode()


def test_seeded_fans_follow():
    assert SandboxFan.objects.filter(follows=False).count() == 0
    assert SandboxFan.objects.count() >= 4


# Sending


def test_a_send_answers_a_19_digit_msgid_and_records_the_message(client, token, pushes):
    answer = send(client, token, message(client_msg_id="n1"))
    assert (answer["errcode"], answer["errmsg"]) == (0, "ok")
    assert isinstance(answer["msgid"], int) and len(str(answer["msgid"])) == 19
    recorded = SandboxMessage.objects.get()
    assert (recorded.fan.openid, recorded.msgid) == (FIRST_FAN, answer["msgid"])
    assert (recorded.template_id, recorded.url) == (APPLICATION_RESULT_TEMPLATE_ID, DETAIL_URL)
    assert recorded.client_msg_id == "n1"
    assert recorded.data["phrase2"] == {"value": "已通过"}
    assert recorded.push_result.startswith("已推送")


@pytest.mark.parametrize(
    "time_value", ["2026年12月2日 14:05", "2026-12-02 14:05", "14:05", "9:30~11:00"]
)
def test_time_keywords_take_wechats_forms(client, token, pushes, time_value):
    data = data_with(thing1="周末读书会", phrase2="未通过", time3=time_value)
    assert send(client, token, message(data=data))["errcode"] == 0


def test_an_unknown_openid_is_40003(client, token):
    assert send(client, token, message(touser="oSBXnobody"))["errcode"] == 40003
    assert send(client, token, message(touser=""))["errcode"] == 40003
    assert not SandboxMessage.objects.exists()


def test_a_fan_who_does_not_follow_gets_43004(client, token):
    SandboxFan.objects.filter(openid=FIRST_FAN).update(follows=False)
    answer = send(client, token, message())
    assert answer["errcode"] == 43004
    assert answer["errmsg"].startswith("require subscribe")
    assert not SandboxMessage.objects.exists()


def test_an_unknown_template_is_40037(client, token):
    assert send(client, token, message(template_id="x" * 43))["errcode"] == 40037


@pytest.mark.parametrize(
    ("data", "keyword"),
    [
        (data_with(thing1="一" * 21, phrase2="已通过", time3="14:05"), "thing1"),
        (data_with(thing1="周末读书会", phrase2="已通过"), "time3"),
        (data_with(thing1="周末读书会", phrase2="passed", time3="14:05"), "phrase2"),
        (data_with(thing1="周末读书会", phrase2="已通过", time3="下午两点"), "time3"),
        (data_with(thing1="周末读书会", phrase2="已通过", time3="2026-13-02 14:05"), "time3"),
        (data_with(thing1="周末\n读书会", phrase2="已通过", time3="14:05"), "thing1"),
        (data_with(thing1="周末读书会", phrase2="已通过", time3="14:05", thing9="x"), "thing9"),
        (
            {"thing1": "周末读书会", "phrase2": {"value": "已通过"}, "time3": {"value": "14:05"}},
            "thing1",
        ),
    ],
    ids=[
        "thing-21",
        "missing",
        "english-phrase",
        "not-a-time",
        "no-13th-month",
        "line-break",
        "extra",
        "bare",
    ],
)
def test_values_that_break_the_keyword_rules_are_47003(client, token, data, keyword):
    answer = send(client, token, message(data=data))
    assert answer["errcode"] == 47003
    assert answer["errmsg"].startswith(f"argument invalid! data.{keyword}.value")
    assert not SandboxMessage.objects.exists()


def test_first_remark_and_colours_are_dropped_silently(client, token, pushes):
    data = message()["data"] | {"first": {"value": "您好"}, "remark": {"value": "谢谢"}}
    data["thing1"]["color"] = "#173177"
    assert send(client, token, message(data=data))["errcode"] == 0
    assert set(SandboxMessage.objects.get().data) == {"thing1", "phrase2", "time3"}
    assert SandboxMessage.objects.get().data["thing1"] == {"value": "周末读书会"}


@pytest.mark.parametrize("body", [b"not json", b"[]", json.dumps({"touser": 1}).encode()])
def test_a_body_that_is_not_a_json_object_is_47001(client, token, body):
    assert send(client, token, body)["errcode"] == 47001


def test_a_stale_platform_token_is_refused(client, token):
    now = timezone.now()
    PlatformToken.objects.filter(access_token=token).update(
        superseded_at=now - timedelta(minutes=6)
    )
    assert send(client, token, message())["errcode"] == 40001
    PlatformToken.objects.filter(access_token=token).update(
        superseded_at=None, expires_at=now - timedelta(seconds=1)
    )
    assert send(client, token, message())["errcode"] == 42001
    assert send(client, "", message())["errcode"] == 41001
    assert not SandboxMessage.objects.exists()


def test_the_same_client_msg_id_sends_once_within_ten_minutes(client, token, pushes):
    first = send(client, token, message(client_msg_id="retry-me"))
    again = send(client, token, message(client_msg_id="retry-me"))
    assert first["msgid"] == again["msgid"]
    assert SandboxMessage.objects.count() == 1
    assert len(pushes.calls) == 1
    SandboxMessage.objects.update(created_at=timezone.now() - timedelta(minutes=11))
    later = send(client, token, message(client_msg_id="retry-me"))
    assert later["msgid"] != first["msgid"]
    assert SandboxMessage.objects.count() == 2


def test_an_injected_fault_makes_the_send_answer_minus_1(client, token):
    Faults(error_share=1.0).save()
    answer = send(client, token, message())
    assert answer["errcode"] == -1
    assert not SandboxMessage.objects.exists()


# The delivery event


def test_the_delivery_push_is_signed_and_xgc_accepts_it(client, token, pushes):
    msgid = send(client, token, message())["msgid"]
    (push,) = pushes.calls
    url = urlsplit(push.request.url)
    assert f"{url.scheme}://{url.netloc}{url.path}" == SERVER_URL
    assert is_signed(QueryDict(url.query))
    body = push.request.body.decode()
    assert "<FromUserName><![CDATA[oSBX0000000000000000000001]]></FromUserName>" in body
    assert "<Event><![CDATA[TEMPLATESENDJOBFINISH]]></Event>" in body
    event = ElementTree.fromstring(body)
    assert [child.tag for child in event] == [
        "ToUserName",
        "FromUserName",
        "CreateTime",
        "MsgType",
        "Event",
        "MsgID",
        "Status",
    ]
    assert event.findtext("ToUserName").startswith("gh_")
    assert (event.findtext("MsgType"), event.findtext("MsgID")) == ("event", str(msgid))
    assert event.findtext("Status") == "success"
    assert push.request.headers["Content-Type"] == "text/xml"
    assert feed_to_xgc(client, push) == "success"


def test_no_push_without_a_token(client, token, settings):
    settings.TOKEN = ""
    with responses.RequestsMock():  # any request would fail the test
        assert send(client, token, message())["errcode"] == 0
    assert SandboxMessage.objects.get().push_result == NOT_PUSHED


def test_a_failed_push_is_recorded_not_an_error_of_the_send(client, token):
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, SERVER_URL, body=requests.ConnectionError("refused"))
        answer = send(client, token, message())
    assert answer["errcode"] == 0
    assert SandboxMessage.objects.get().push_result == "推送失败：ConnectionError"


# The phone: 服务通知 and following


def test_the_messages_page_shows_the_holders_messages_newest_first(phone, token, pushes):
    send(
        phone, token, message(data=data_with(thing1="周末读书会", phrase2="已通过", time3="14:05"))
    )
    send(
        phone, token, message(data=data_with(thing1="书法体验课", phrase2="未通过", time3="15:30"))
    )
    send(phone, token, message(touser=SECOND_FAN, url="https://xgc.example.com/other"))
    page = phone.get("/sandbox/messages").content.decode()
    assert page.count("申请结果通知") == 2
    assert page.index("书法体验课") < page.index("周末读书会")
    assert "活动名称" in page and "审核结果" in page and "未通过" in page
    assert f'href="{DETAIL_URL}">详情' in page.replace("&amp;", "&")
    assert "https://xgc.example.com/other" not in page
    assert "sandbox/sandbox.css" in page


def test_a_detail_link_is_only_a_web_link(phone, token, pushes):
    send(phone, token, message(url="javascript:alert(1)"))
    page = phone.get("/sandbox/messages").content.decode()
    assert "申请结果通知" in page and "详情" not in page and "javascript:" not in page


def test_the_messages_page_without_a_holder_asks_who_holds_the_phone(client):
    response = client.get("/sandbox/messages")
    assert response.status_code == 302
    assert response["Location"] == "/sandbox/phone?" + urlencode({"next": "/sandbox/messages"})


def test_unfollowing_and_following_push_events_and_gate_sends(phone, token, pushes):
    page = phone.get("/sandbox/messages").content.decode()
    assert "取消关注" in page and "csrfmiddlewaretoken" in page
    after = phone.post("/sandbox/messages", {"follows": "0"}, follow=True).content.decode()
    assert "已取消关注公众号 · 已推送" in after and "关注公众号</button>" in after
    assert not SandboxFan.objects.get(openid=FIRST_FAN).follows
    assert send(phone, token, message())["errcode"] == 43004

    phone.post("/sandbox/messages", {"follows": "1"})
    assert SandboxFan.objects.get(openid=FIRST_FAN).follows
    unfollow, follow = pushes.calls
    assert "<Event><![CDATA[unsubscribe]]></Event>" in unfollow.request.body.decode()
    assert "<Event><![CDATA[subscribe]]></Event>" in follow.request.body.decode()
    assert is_signed(QueryDict(urlsplit(follow.request.url).query))
    assert feed_to_xgc(phone, unfollow) == "success"
    assert not FansProfile.objects.get(openid=FIRST_FAN).subscribed
    assert feed_to_xgc(phone, follow) == "success"
    assert FansProfile.objects.get(openid=FIRST_FAN).subscribed
    assert send(phone, token, message())["errcode"] == 0


def test_following_twice_pushes_once(phone, pushes):
    phone.post("/sandbox/messages", {"follows": "1"})
    assert not pushes.calls


def test_the_toggle_needs_csrf(phone):
    browser = Client(enforce_csrf_checks=True)
    browser.cookies = phone.cookies  # the phone holder, without a CSRF token
    assert browser.post("/sandbox/messages", {"follows": "0"}).status_code == 403
    assert SandboxFan.objects.get(openid=FIRST_FAN).follows
