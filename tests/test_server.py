"""The server endpoint as WeChat calls it, and the domain verification file."""

import hashlib
import logging
import time
from urllib.parse import urlencode

import pytest

from django.test import Client
from django.urls import NoReverseMatch, reverse

from fans import server
from fans.models import FansProfile

from .conftest import run_manage, userinfo_answer

pytestmark = pytest.mark.django_db

# The official vectors ("消息与事件推送介绍", "消息加解密说明").
VERIFY = {
    "token": "AAAAA",
    "timestamp": "1714036504",
    "nonce": "1514711492",
    "echostr": "4375120948345356249",
    "signature": "f464b24fc39322e44b38aa78f5edd27bd1441696",
}
PUSH = {
    "token": "AAAAA",
    "timestamp": "1714037059",
    "nonce": "486452656",
    "signature": "899cf89e464efb63f54ddac96b0a0a235f53aa78",
}
TOKEN = "xgctoken"
NOW = 1714036504
OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"


@pytest.fixture
def clock(monkeypatch):
    """Freeze time.time, the clock fans.server reads, at NOW; set clock.now to move it."""

    class Clock:
        now = NOW

    monkeypatch.setattr(server.time, "time", lambda: Clock.now)
    return Clock


def sha1(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()  # noqa: S324


def signed(timestamp: int | str = NOW, nonce: str = "nonce42", token: str = TOKEN) -> dict:
    """Return the query WeChat would send, signed independently of fans.server."""
    digest = sha1("".join(sorted([token, str(timestamp), nonce])))
    return {"signature": digest, "timestamp": str(timestamp), "nonce": nonce}


def event(name: str, openid: str = OPENID, msg_type: str = "event") -> bytes:
    return (
        "<xml><ToUserName><![CDATA[gh_123456789abc]]></ToUserName>"
        f"<FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>{NOW}</CreateTime><MsgType><![CDATA[{msg_type}]]></MsgType>"
        f"<Event><![CDATA[{name}]]></Event></xml>"
    ).encode()


def push(client, body: bytes, query: dict | None = None):
    """POST a message the way WeChat does: signature in the query, XML in the body."""
    query = signed() if query is None else query
    return client.post(f"/wechat/?{urlencode(query)}", body, content_type="text/xml")


# The signature


@pytest.mark.parametrize("vector", [VERIFY, PUSH], ids=["verify", "push"])
def test_signature_matches_the_official_vectors(vector):
    assert (
        server.signature(vector["token"], vector["timestamp"], vector["nonce"])
        == (vector["signature"])
    )


def test_signature_sorts_as_strings_not_numbers():
    """Numerically 9 < 10; as strings "10" < "9", which is what WeChat signs."""
    assert server.signature("tok", "9", "10") == sha1("109tok")


# GET: the server URL check


def test_verification_answers_echostr_for_the_official_vector(client, settings, clock):
    settings.TOKEN = VERIFY["token"]
    query = {key: VERIFY[key] for key in ("signature", "timestamp", "nonce", "echostr")}
    response = client.get(reverse("wechat-server"), query)
    assert response.status_code == 200
    assert response.content == b"4375120948345356249"
    assert response["Content-Type"] == "text/plain"


@pytest.mark.parametrize("path", ["/wechat/", "/wechat"])
def test_the_server_url_works_with_or_without_the_slash(client, clock, path):
    """WeChat's console takes either, and WeChat does not follow redirects."""
    assert client.get(path, signed() | {"echostr": "ok"}).content == b"ok"
    pushed = client.post(
        f"{path}?{urlencode(signed())}", event("subscribe"), content_type="text/xml"
    )
    assert pushed.content == b"success"


def test_verification_answers_echostr_verbatim(client, clock):
    response = client.get("/wechat/", signed() | {"echostr": "a b&<x>"})
    assert response.content == b"a b&<x>"


@pytest.mark.parametrize(
    "query",
    [
        signed() | {"signature": "f464b24fc39322e44b38aa78f5edd27bd1441696"},
        signed(token="another-token"),
        signed() | {"nonce": "tampered"},
        {key: value for key, value in signed().items() if key != "signature"},
        {key: value for key, value in signed().items() if key != "timestamp"},
        {key: value for key, value in signed().items() if key != "nonce"},
        signed(timestamp="17140365O4"),
        signed(timestamp=""),
        {},
    ],
    ids=[
        "wrong",
        "other-token",
        "tampered",
        "no-signature",
        "no-timestamp",
        "no-nonce",
        "timestamp-not-a-number",
        "timestamp-empty",
        "nothing",
    ],
)
def test_verification_refuses_a_bad_or_incomplete_signature(client, clock, query):
    response = client.get("/wechat/", query | {"echostr": "123"})
    assert response.status_code == 403
    assert b"123" not in response.content


@pytest.mark.parametrize("offset", [-server.SIGNATURE_MAX_AGE - 1, server.SIGNATURE_MAX_AGE + 1])
def test_a_stale_or_future_timestamp_is_refused(client, clock, caplog, offset):
    """A captured signed URL must not work later; nor a timestamp from the future."""
    query = signed(timestamp=NOW + offset) | {"echostr": "123"}
    assert client.get("/wechat/", query).status_code == 403
    assert "timestamp is 301 s off" in caplog.text


@pytest.mark.parametrize("offset", [-server.SIGNATURE_MAX_AGE, server.SIGNATURE_MAX_AGE])
def test_a_timestamp_at_the_edge_of_the_window_is_accepted(client, clock, offset):
    query = signed(timestamp=NOW + offset) | {"echostr": "123"}
    assert client.get("/wechat/", query).content == b"123"


def test_without_token_every_request_is_refused(client, settings, clock, caplog):
    """An empty TOKEN would make the signature computable by anyone."""
    settings.TOKEN = ""
    response = client.get("/wechat/", signed(token="") | {"echostr": "123"})
    assert response.status_code == 403
    assert "TOKEN is not set" in caplog.text


def test_a_wrong_token_is_logged_without_the_token(client, clock, caplog):
    client.get("/wechat/", signed(token="another-token") | {"echostr": "123"})
    assert "signature does not match TOKEN" in caplog.text
    assert TOKEN not in caplog.text


def test_verification_without_echostr_is_a_bad_request(client, clock):
    assert client.get("/wechat/", signed()).status_code == 400


def test_other_methods_are_not_allowed(client, clock):
    assert client.put("/wechat/").status_code == 405


# POST: pushed messages


def test_subscribe_of_an_unknown_fan_adds_a_bare_row(client, clock, caplog):
    caplog.set_level(logging.INFO, logger="fans")
    response = push(client, event("subscribe"))
    fan = FansProfile.objects.get()
    assert response.status_code == 200
    assert response.content == b"success"
    assert response["Content-Type"] == "text/plain"
    assert fan.openid == OPENID
    assert fan.subscribed is True
    assert fan.subscription_changed_at is not None
    # Not consented: the login flow still shows this fan the register page.
    assert fan.userinfo == {}
    assert fan.nickname == ""
    assert f"Fan {fan.pk} (openid …jWeS6o) followed" in caplog.text
    assert OPENID not in caplog.text
    assert TOKEN not in caplog.text


def test_the_official_push_vector_is_accepted(client, settings, clock):
    settings.TOKEN = PUSH["token"]
    clock.now = int(PUSH["timestamp"])
    query = {key: PUSH[key] for key in ("signature", "timestamp", "nonce")}
    assert push(client, event("subscribe"), query).content == b"success"
    assert FansProfile.objects.get().subscribed is True


def test_unsubscribe_and_subscribe_again_keep_the_fans_profile(client, clock, caplog):
    caplog.set_level(logging.INFO, logger="fans")
    fan = FansProfile.create_fan(userinfo_answer(OPENID, nickname="小鸡炖蘑菇🍄"))
    updated_at = fan.updated_at
    push(client, event("unsubscribe"))
    fan.refresh_from_db()
    assert fan.subscribed is False
    assert fan.nickname == "小鸡炖蘑菇🍄"
    assert fan.userinfo["nickname"] == "小鸡炖蘑菇🍄"
    assert fan.updated_at == updated_at
    assert "unfollowed" in caplog.text
    push(client, event("subscribe"), signed(nonce="another"))
    fan.refresh_from_db()
    assert fan.subscribed is True
    assert FansProfile.objects.count() == 1


def test_consent_after_subscribe_keeps_the_follow_state(client, clock):
    push(client, event("subscribe"))
    FansProfile.create_fan(userinfo_answer(OPENID))
    fan = FansProfile.objects.get()
    assert fan.subscribed is True
    assert fan.userinfo != {}


@pytest.mark.parametrize(
    "body",
    [
        event("CLICK"),
        event("VIEW"),
        event("SCAN"),
        event("subscribe", msg_type="text"),
        event("subscribe", openid=""),
        event("subscribe", openid="o" * 65),
        b"<xml><MsgType>event</MsgType><Event>subscribe</Event></xml>",
        b"<xml><ToUserName>gh_1</ToUserName><Encrypt>c2FmZSBtb2Rl</Encrypt></xml>",
        b"<xml><MsgType>text</MsgType><Content>\xe4\xbd\xa0\xe5\xa5\xbd</Content></xml>",
    ],
    ids=[
        "click",
        "view",
        "scan",
        "text-message",
        "no-openid",
        "openid-too-long",
        "no-from",
        "safe-mode",
        "chat",
    ],
)
def test_other_messages_are_acknowledged_and_ignored(client, clock, body):
    response = push(client, body)
    assert response.content == b"success"
    assert FansProfile.objects.count() == 0


def test_a_push_with_a_bad_signature_is_refused(client, clock):
    response = push(client, event("subscribe"), signed(token="another-token"))
    assert response.status_code == 403
    assert FansProfile.objects.count() == 0


def test_a_replayed_push_is_refused_after_the_window(client, clock):
    query = signed()
    clock.now = NOW + server.SIGNATURE_MAX_AGE + 1
    assert push(client, event("subscribe"), query).status_code == 403
    assert FansProfile.objects.count() == 0


def test_pushes_need_no_csrf_token(clock):
    """WeChat posts without a CSRF cookie or token."""
    response = push(Client(enforce_csrf_checks=True), event("subscribe"))
    assert response.status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not xml",
        b"<xml><MsgType>event</MsgType>",
        b"<xml/><xml/>",
        b'<?xml version="1.0" encoding="bogus"?><xml/>',
        b'<?xml version="1.0" encoding="big5"?><xml/>',
        # Billion laughs, an external entity, and a bare DTD.
        b'<!DOCTYPE xml [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]><xml>&b;</xml>',
        b'<!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]><xml>&x;</xml>',
        b"<!DOCTYPE xml><xml/>",
    ],
    ids=[
        "empty",
        "text",
        "unclosed",
        "two-roots",
        "unknown-encoding",
        "multibyte-encoding",
        "entities",
        "external-entity",
        "dtd",
    ],
)
def test_malformed_or_dangerous_xml_is_a_bad_request(client, clock, body):
    response = push(client, body)
    assert response.status_code == 400
    assert FansProfile.objects.count() == 0


def test_a_body_over_the_limit_is_refused(client, clock):
    body = event("subscribe")
    at_limit = body + b" " * (server.MAX_BODY_SIZE - len(body))
    assert push(client, at_limit).content == b"success"
    assert push(client, at_limit + b" ", signed(nonce="another")).status_code == 413


# MP_verify_<code>.txt


def test_mp_verify_serves_the_configured_code(client, settings):
    settings.WECHAT_MP_VERIFY = "AbC123xyz"
    response = client.get("/MP_verify_AbC123xyz.txt")
    assert response.status_code == 200
    assert response.content == b"AbC123xyz"
    assert response["Content-Type"] == "text/plain"


@pytest.mark.parametrize(
    ("setting", "path"),
    [
        ("AbC123xyz", "/MP_verify_abc123xyz.txt"),
        ("AbC123xyz", "/MP_verify_AbC123.txt"),
        ("AbC123xyz", "/MP_verify_AbC123xyzz.txt"),
        ("AbC123xyz", "/wechat/MP_verify_AbC123xyz.txt"),
        ("", "/MP_verify_AbC123xyz.txt"),
        ("", "/MP_verify_.txt"),
        ("Ab-C_1", "/MP_verify_Ab-C_1.txt"),
        ("a", "/MP_verify_a.txt.bak"),
    ],
)
def test_mp_verify_serves_nothing_else(client, settings, setting, path):
    settings.WECHAT_MP_VERIFY = setting
    assert client.get(path).status_code == 404


def test_mp_verify_routes_only_letters_and_digits():
    with pytest.raises(NoReverseMatch):
        reverse("wechat-mp-verify", args=["../x"])


def test_a_replayed_verification_is_refused(client, clock):
    query = signed() | {"echostr": "first"}
    assert client.get("/wechat/", query).content == b"first"
    assert client.get("/wechat/", query).status_code == 403


def test_a_replayed_push_is_acknowledged_but_not_acted_on(client, clock, caplog):
    """A resent or replayed push cannot flip the follow state back."""
    caplog.set_level(logging.INFO, logger="fans.server")
    subscribe_query = signed(nonce="first")
    assert push(client, event("subscribe"), subscribe_query).content == b"success"
    assert push(client, event("unsubscribe"), signed(nonce="second")).content == b"success"
    replayed = push(client, event("subscribe"), subscribe_query)
    assert replayed.status_code == 200 and replayed.content == b"success"
    assert FansProfile.objects.get(openid=OPENID).subscribed is False
    assert "replayed: acknowledged, not processed" in caplog.text


# With the sandbox, a development token works out of the box (settings.py
# derives it, so these run manage.py in a fresh process with a fresh .env)

ASK_SERVER = (
    "from django.test import Client; "
    "r = Client(HTTP_HOST='127.0.0.1:8000').get('/wechat/', {query!r}); "
    "print(r.status_code, r.content.decode())"
)


@pytest.mark.parametrize(
    ("env", "token", "answer"),
    [
        ({}, "sandboxdevtoken", "200 4375120948345356249"),
        # Outside the sandbox an empty TOKEN still refuses every request.
        ({"WECHAT_SANDBOX": "0"}, "sandboxdevtoken", "403"),
        ({"WECHAT_SANDBOX": "0"}, "", "403"),
        # With DEBUG off the sandbox is not mounted (sandbox.E001), nor its token used.
        ({"DEBUG": "0", "SECRET_KEY": "k" * 50}, "sandboxdevtoken", "403"),
        # A TOKEN of one's own replaces the development token.
        ({"TOKEN": "myOwnToken42"}, "sandboxdevtoken", "403"),
        ({"TOKEN": "myOwnToken42"}, "myOwnToken42", "200 4375120948345356249"),
    ],
)
def test_a_fresh_env_file_answers_the_server_check_only_with_the_sandbox(
    fresh_env, env, token, answer
):
    query = signed(timestamp=int(time.time()), token=token) | {"echostr": "4375120948345356249"}
    result = run_manage(
        "shell", "--no-imports", "-c", ASK_SERVER.format(query=query), env_file=fresh_env, **env
    )
    # The last line: the log lines before it say why a request was refused.
    assert result.stdout.splitlines()[-1].split() == answer.split(), result.stderr


def test_the_sandbox_index_shows_the_server_url_and_token(client, settings):
    settings.TOKEN = settings.DEVELOPMENT_TOKEN
    page = client.get("/sandbox/").content.decode()
    assert "服务器配置 Token" in page
    assert "sandboxdevtoken" in page
    assert "https://xgc.example.com/wechat<" in page
