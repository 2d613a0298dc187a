"""The WeChat sandbox behaves like WeChat, not like a happy-path mock."""

import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from urllib.parse import urlencode

import pytest

from django.core import signing
from django.utils import timezone

from xgc.sandbox import api, credentials, oauth
from xgc.sandbox.api import Faults
from xgc.sandbox.checks import check_sandbox_only_while_debugging
from xgc.sandbox.models import PlatformToken, SandboxFan

from .conftest import redirect_query, run_manage

pytestmark = pytest.mark.django_db

APP = {"appid": "wx1234567890abcdef", "secret": "app-secret-never-logged"}
CALLBACK = "https://xgc.example.com/wechat/authorize/"
FIRST_FAN = "oSBX0000000000000000000001"


def authorize_path(**overrides: str) -> str:
    params = {
        "appid": APP["appid"],
        "redirect_uri": CALLBACK,
        "response_type": "code",
        "scope": "snsapi_base",
        "state": "AbC123",
    } | overrides
    return "/sandbox/connect/oauth2/authorize?" + urlencode(params)


@pytest.fixture
def phone(client):
    """A browser whose WeChat user is the first seeded test fan."""
    client.post(f"/sandbox/phone?{urlencode({'next': '/sandbox/'})}", {"openid": FIRST_FAN})
    return client


def code_for(phone, scope: str = "snsapi_base") -> str:
    response = phone.get(authorize_path(scope=scope))
    if scope == "snsapi_userinfo":
        response = phone.post(authorize_path(scope=scope), {"decision": "allow"})
    return redirect_query(response)["code"]


def api_get(client, path: str, **params: str) -> dict:
    response = client.get(f"/sandbox{path}", params)
    assert response.status_code == 200  # WeChat reports errors in the body
    return json.loads(response.content.decode("utf-8"))


def exchange(client, auth_code: str, **overrides: str) -> dict:
    params = APP | {"code": auth_code, "grant_type": "authorization_code"} | overrides
    return api_get(client, "/sns/oauth2/access_token", **params)


# The authorize page


@pytest.mark.parametrize(
    ("overrides", "shown"),
    [
        ({"appid": ""}, "10012"),
        ({"appid": "wx0000000000000000"}, "10016"),
        ({"redirect_uri": ""}, "10011"),
        ({"scope": ""}, "10010"),
        ({"scope": "snsapi_login"}, "10005"),
        ({"state": ""}, "10013"),
        ({"state": "has-dash"}, "state 只能是字母和数字"),
        ({"state": "a" * 129}, "最多 128 个字符"),
        ({"response_type": "token"}, "须依次为"),
        ({"redirect_uri": "https://evil.example/wechat/authorize/"}, "10003"),
        ({"redirect_uri": "https://xgc.example.com:8443/wechat/authorize/"}, "10003"),
    ],
)
def test_authorize_refuses_bad_links_with_wechats_error_page(phone, overrides, shown):
    response = phone.get(authorize_path(**overrides))
    assert response.status_code == 200
    assert "抱歉，出错了" in response.content.decode()
    assert shown in response.content.decode()


def test_authorize_checks_the_parameter_order(phone):
    query = "scope=snsapi_base&appid=wx1234567890abcdef&redirect_uri=x&response_type=code&state=A"
    response = phone.get("/sandbox/connect/oauth2/authorize?" + query)
    assert "须依次为" in response.content.decode()


def test_a_new_phone_is_asked_who_holds_it_and_remembers(client):
    first = client.get(authorize_path())
    assert first.status_code == 302
    assert first["Location"].startswith("/sandbox/phone?next=")
    chooser = client.get(first["Location"])
    assert "谁在使用这部手机" in chooser.content.decode()
    assert "小鸡炖蘑菇🍄" in chooser.content.decode()
    chosen = client.post(first["Location"], {"openid": FIRST_FAN})
    assert chosen["Location"] == authorize_path()
    assert client.get(authorize_path())["Location"].startswith(CALLBACK + "?code=")


def test_a_phone_cookie_of_an_older_sandbox_asks_again(client):
    """It held the openid alone; the phone's user now travels whole in it."""
    client.cookies[oauth.PHONE_COOKIE] = signing.dumps(FIRST_FAN, salt=oauth.PHONE_COOKIE_SALT)
    assert client.get(authorize_path())["Location"].startswith("/sandbox/phone?next=")


def test_a_new_test_fan_can_hold_the_phone(client):
    client.post("/sandbox/phone", {"openid": "new"})
    code = redirect_query(client.get(authorize_path()))["code"]
    assert exchange(client, code)["openid"] == SandboxFan.objects.last().openid
    assert SandboxFan.objects.count() == 5


def test_base_scope_passes_silently_with_a_code_and_the_state(phone):
    response = phone.get(authorize_path(redirect_uri=CALLBACK + "?restarted=1"))
    query = redirect_query(response)
    assert response["Location"].startswith(CALLBACK + "?restarted=1&code=")
    assert query["state"] == "AbC123"
    assert exchange(phone, query["code"])["scope"] == "snsapi_base"


def test_userinfo_scope_asks_for_consent(phone):
    page = phone.get(authorize_path(scope="snsapi_userinfo"))
    body = page.content.decode()
    assert page.status_code == 200
    assert "允许" in body and "拒绝" in body and "小鸡炖蘑菇🍄" in body


def test_refusal_goes_back_with_the_state_only(phone):
    response = phone.post(authorize_path(scope="snsapi_userinfo"), {"decision": "refuse"})
    assert redirect_query(response) == {"state": "AbC123"}


# /sns/oauth2/access_token


def test_code_exchange_answers_as_wechat_does(phone):
    response = phone.get(
        "/sandbox/sns/oauth2/access_token",
        APP | {"code": code_for(phone, "snsapi_userinfo"), "grant_type": "authorization_code"},
    )
    answer = json.loads(response.content.decode("utf-8"))
    assert response["Content-Type"] == "text/plain"
    assert answer["openid"] == FIRST_FAN
    assert answer["scope"] == "snsapi_userinfo"
    assert answer["expires_in"] == 7200
    assert answer["unionid"].startswith("uSBX")
    assert {"access_token", "refresh_token"} <= answer.keys()


def test_a_code_works_once(phone):
    code = code_for(phone)
    assert "access_token" in exchange(phone, code)
    again = exchange(phone, code)
    assert again["errcode"] == 40163
    assert again["errmsg"].startswith("code been used rid: ")


def test_a_code_exchanged_twice_at_once_gives_one_grant(phone):
    code = code_for(phone)
    answers = []

    def redeem():
        try:
            answers.append(credentials.redeem_code(code).access_token)
        except api.SandboxError as error:
            answers.append(error.errcode)

    with ThreadPoolExecutor(8) as pool:
        for _ in range(8):
            pool.submit(redeem)
    assert answers.count(40163) == 7
    assert len([answer for answer in answers if isinstance(answer, str)]) == 1


def test_a_code_expires_after_five_minutes(phone, monkeypatch):
    code = code_for(phone)
    issued_at = time.time()
    monkeypatch.setattr(time, "time", lambda: issued_at + 5 * 60 + 1)
    assert exchange(phone, code)["errcode"] == 40029


def test_an_access_token_expires_after_two_hours(phone, monkeypatch):
    grant = exchange(phone, code_for(phone))
    issued_at = time.time()
    monkeypatch.setattr(time, "time", lambda: issued_at + 7200)
    check = {"access_token": grant["access_token"], "openid": FIRST_FAN}
    assert api_get(phone, "/sns/auth", **check)["errcode"] == 42001


@pytest.mark.parametrize(
    ("overrides", "errcode"),
    [
        ({"code": "made-up"}, 40029),
        ({"code": ""}, 41008),
        ({"appid": "wx0000000000000000"}, 40013),
        ({"appid": ""}, 41002),
        ({"secret": "wrong"}, 40125),
        ({"grant_type": "client_credential"}, 40002),
    ],
)
def test_code_exchange_errors(phone, overrides, errcode):
    assert exchange(phone, code_for(phone), **overrides)["errcode"] == errcode


# Tokens are bound to an openid and a scope


def test_userinfo_needs_a_userinfo_token_for_the_same_openid(phone):
    base = exchange(phone, code_for(phone, "snsapi_base"))
    full = exchange(phone, code_for(phone, "snsapi_userinfo"))
    with_base = api_get(phone, "/sns/userinfo", access_token=base["access_token"], openid=FIRST_FAN)
    wrong_openid = api_get(phone, "/sns/userinfo", access_token=full["access_token"], openid="oX")
    info = api_get(phone, "/sns/userinfo", access_token=full["access_token"], openid=FIRST_FAN)
    assert with_base["errcode"] == 48001
    assert wrong_openid["errcode"] == 40003
    assert info["nickname"] == "小鸡炖蘑菇🍄"
    assert info["sex"] == 0 and info["city"] == ""
    assert info["headimgurl"] == f"http://testserver/sandbox/mmopen/{FIRST_FAN}/132"


def test_avatars_are_served_locally(client):
    response = client.get(f"/sandbox/mmopen/{FIRST_FAN}/132")
    assert response["Content-Type"] == "image/svg+xml"
    assert "小" in response.content.decode()


def test_sns_auth_and_refresh(phone):
    grant = exchange(phone, code_for(phone, "snsapi_userinfo"))
    check = {"access_token": grant["access_token"], "openid": FIRST_FAN}
    assert api_get(phone, "/sns/auth", **check) == {"errcode": 0, "errmsg": "ok"}
    refreshed = api_get(
        phone,
        "/sns/oauth2/refresh_token",
        appid=APP["appid"],
        grant_type="refresh_token",
        refresh_token=grant["refresh_token"],
    )
    assert refreshed["access_token"] != grant["access_token"]
    assert api_get(phone, "/sns/auth", **check)["errcode"] == 40001
    bad = api_get(
        phone,
        "/sns/oauth2/refresh_token",
        appid=APP["appid"],
        grant_type="refresh_token",
        refresh_token="nope",
    )
    assert bad["errcode"] == 40030


# cgi-bin


def platform_token(client) -> str:
    return api_get(client, "/cgi-bin/token", grant_type="client_credential", **APP)["access_token"]


def test_a_new_platform_token_retires_the_old_one_after_the_overlap(client):
    old = platform_token(client)
    new = platform_token(client)
    assert old != new
    assert api_get(client, "/cgi-bin/menu/delete", access_token=old)["errcode"] == 0
    PlatformToken.objects.filter(access_token=old).update(
        superseded_at=timezone.now() - timedelta(minutes=5, seconds=1)
    )
    assert api_get(client, "/cgi-bin/menu/delete", access_token=old)["errcode"] == 40001
    assert api_get(client, "/cgi-bin/menu/delete", access_token=new)["errcode"] == 0


def test_stable_token_stays_the_same_unless_forced(client):
    def stable(force: bool) -> dict:
        body = {"grant_type": "client_credential", **APP, "force_refresh": force}
        response = client.post(
            "/sandbox/cgi-bin/stable_token", body, content_type="application/json"
        )
        return json.loads(response.content)

    first, second, forced = stable(False), stable(False), stable(True)
    assert first["access_token"] == second["access_token"]
    assert forced["access_token"] != first["access_token"]
    assert 7100 < first["expires_in"] <= 7200


def test_menu_round_trip_and_raw_utf8(client):
    token = platform_token(client)
    menu = {"button": [{"type": "view", "name": "申请活动", "url": "https://xgc.example.com/"}]}
    path = f"/sandbox/cgi-bin/menu/create?access_token={token}"
    escaped = client.post(path, json.dumps(menu), content_type="application/json")
    raw = client.post(
        path, json.dumps(menu, ensure_ascii=False).encode(), content_type="application/json"
    )
    assert json.loads(escaped.content)["errcode"] == 40033
    assert json.loads(raw.content) == {"errcode": 0, "errmsg": "ok"}
    shown = {"button": [menu["button"][0] | {"sub_button": []}]}
    assert api_get(client, "/cgi-bin/menu/get", access_token=token) == {"menu": shown}
    api_get(client, "/cgi-bin/menu/delete", access_token=token)
    assert api_get(client, "/cgi-bin/menu/get", access_token=token)["errcode"] == 46003


@pytest.mark.parametrize(
    ("button", "errcode"),
    [
        ([], 40016),
        ([{"type": "click", "name": "a", "key": "k"}] * 4, 40016),
        ([{"type": "view", "name": "这个名字超过十六个字节", "url": "https://x/"}], 40018),
        ([{"type": "view", "name": "a", "url": "https://x/" + "a" * 1024}], 40022),
        ([{"name": "a", "sub_button": []}], 40023),
        ([{"name": "a", "sub_button": [{"type": "view", "name": "b"}]}], 40027),
    ],
)
def test_menu_limits(client, button, errcode):
    path = f"/sandbox/cgi-bin/menu/create?access_token={platform_token(client)}"
    body = json.dumps({"button": button}, ensure_ascii=False).encode()
    response = client.post(path, body, content_type="application/json")
    assert json.loads(response.content)["errcode"] == errcode


def test_jsapi_ticket(client):
    answer = api_get(
        client, "/cgi-bin/ticket/getticket", access_token=platform_token(client), type="jsapi"
    )
    assert answer["errcode"] == 0 and answer["expires_in"] == 7200 and answer["ticket"]
    assert (
        api_get(client, "/cgi-bin/ticket/getticket", access_token="x", type="jsapi")["errcode"]
        == 40014
    )


# Faults


def test_error_share_makes_calls_answer_system_error(client):
    client.post("/sandbox/faults", {"error_share": "1"})
    answer = api_get(client, "/cgi-bin/token", grant_type="client_credential", **APP)
    assert answer["errcode"] == -1
    assert PlatformToken.objects.count() == 0


def test_latency_and_hangs_delay_api_calls(client, monkeypatch):
    delays = []
    monkeypatch.setattr(api.time, "sleep", delays.append)
    client.post("/sandbox/faults", {"latency_ms": "50", "hang_share": "1", "hang_seconds": "7"})
    api_get(client, "/cgi-bin/token", grant_type="client_credential", **APP)
    assert delays == [0.05, 7.0]


def test_faults_are_validated(client):
    response = client.post("/sandbox/faults", {"error_share": "2"})
    assert response.status_code == 400
    assert Faults.current().error_share == 0
    assert client.get("/sandbox/faults").json() == {
        "latency_ms": 0,
        "error_share": 0.0,
        "hang_share": 0.0,
        "hang_seconds": 30.0,
    }


# Counts for benchmarks


def test_stats_count_api_calls_by_route_and_new_connections(phone):
    """A connection is new the first time a call comes from its client port."""
    for port in ("50001", "50001", "50002"):
        phone.get("/sandbox/sns/oauth2/access_token", {"code": "x"}, REMOTE_PORT=port)
    phone.get("/sandbox/sns/userinfo")  # runserver passes no port: not a connection
    stats = phone.get("/sandbox/stats").json()
    assert {route: n for route, n in stats["calls"].items() if n} == {
        "sns/oauth2/access_token": 3,
        "sns/userinfo": 1,
    }
    assert set(stats["calls"]) >= {"cgi-bin/stable_token", "cgi-bin/ticket/getticket"}
    assert stats["new_connections"] == 2


def test_posting_to_stats_answers_the_counts_then_starts_again(phone):
    """Connections seen before the reset do not count as new after it."""
    phone.get("/sandbox/sns/auth", REMOTE_PORT="50001")
    taken = phone.post("/sandbox/stats").json()
    phone.get("/sandbox/sns/auth", REMOTE_PORT="50001")
    phone.get("/sandbox/sns/auth", REMOTE_PORT="50003")
    stats = phone.get("/sandbox/stats").json()
    assert (taken["calls"]["sns/auth"], taken["new_connections"]) == (1, 1)
    assert (stats["calls"]["sns/auth"], stats["new_connections"]) == (2, 1)


def test_browser_pages_are_not_api_calls(phone):
    phone.get(authorize_path())
    phone.get("/sandbox/ping")
    assert not any(phone.get("/sandbox/stats").json()["calls"].values())


def test_ping_answers_at_once(client):
    response = client.get("/sandbox/ping")
    assert (response.status_code, response.content) == (200, b"ok")


def test_the_phone_chooser_lists_the_seeded_fans_and_not_thousands(client):
    for _ in range(30):
        SandboxFan.create_new()
    page = client.get("/sandbox/phone").content.decode()
    assert page.count('name="openid"') == oauth.CHOOSER_FANS + 1  # and "new"
    assert FIRST_FAN in page


# Never in production


def test_sandbox_is_refused_with_debug_off_unless_forced(settings):
    settings.DEBUG, settings.WECHAT_SANDBOX_FORCE = False, False
    assert [error.id for error in check_sandbox_only_while_debugging()] == ["sandbox.E001"]
    settings.WECHAT_SANDBOX_FORCE = True
    assert check_sandbox_only_while_debugging() == []


def test_sandbox_with_debug_off_is_reported_and_not_mounted(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text(
        "DEBUG=0\nSECRET_KEY=a-long-enough-secret-for-this-test\nWECHAT_SANDBOX=1\n"
        "APP_ID=wxaaaaaaaaaaaaaaaa\nAPP_SECRET=s\n"
        "REDIRECT_URL=https://xgc.example.com/wechat/authorize/\n",
        encoding="utf-8",
    )
    checked = run_manage("check", env_file=str(env_file))
    mounted = run_manage(
        "shell",
        "--no-imports",
        "-c",
        "from django.urls import resolve, Resolver404\n"
        "try:\n    resolve('/sandbox/')\n    print('mounted')\n"
        "except Resolver404:\n    print('absent')",
        env_file=str(env_file),
    )
    assert checked.returncode == 1
    assert "sandbox.E001" in checked.stderr
    assert mounted.stdout.strip() == "absent"


def test_sandbox_serves_both_hosts_on_redirect_urls_host(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text(
        "DEBUG=1\nWECHAT_SANDBOX=1\nREDIRECT_URL=http://127.0.0.1:8000/wechat/authorize/\n",
        encoding="utf-8",
    )
    result = run_manage(
        "shell",
        "--no-imports",
        "-c",
        "from django.conf import settings as s; "
        "print(s.WECHAT_OPEN_BASE_URL, s.WECHAT_API_BASE_URL, s.WECHAT_SANDBOX_OAUTH_DOMAIN)",
        env_file=str(env_file),
    )
    assert result.stdout.split() == [
        "http://127.0.0.1:8000/sandbox",
        "http://127.0.0.1:8000/sandbox",
        "127.0.0.1:8000",
    ]
