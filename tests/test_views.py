"""The login flow as a fan's browser and WeChat see it."""

import logging
from datetime import timedelta
from urllib.parse import quote
from xml.etree import ElementTree

import pytest
import requests

from django.contrib.staticfiles import finders
from django.core import signing
from django.core.cache import cache
from django.test import Client, RequestFactory
from django.utils import timezone

from fans.auth import FAN_COOKIE, fan_from_cookie
from fans.models import FansProfile
from fans.services import oauth_token_cache_key

from .conftest import API, answer, redirect_query, start_login, token_answer, userinfo_answer

pytestmark = pytest.mark.django_db

REDIRECT_URL = "https://xgc.example.com/wechat/authorize/"


def callback(client, wechat_api, state, *, openid, scope="snsapi_base", code="CODE1", **extra):
    """Answer the code exchange as WeChat would, then hit the callback."""
    answer(wechat_api, "/sns/oauth2/access_token", token_answer(openid, scope, **extra), code=code)
    return client.get("/wechat/authorize/", {"code": code, "state": state})


def sign_up(client, wechat_api, openid, *, next_url="/", **userinfo):
    """Walk a new fan through consent; return the callback's response."""
    state = start_login(client, scope="snsapi_userinfo", next=next_url)["state"]
    answer(wechat_api, "/sns/userinfo", userinfo_answer(openid, **userinfo), openid=openid)
    return callback(client, wechat_api, state, openid=openid, scope="snsapi_userinfo")


def signed_in_fan(client):
    """Return the fan the browser's fanid cookie names, if its signature holds."""
    request = RequestFactory().get("/")
    request.COOKIES[FAN_COOKIE] = client.cookies[FAN_COOKIE].value
    return fan_from_cookie(request)


# /wechat/login/


def test_login_redirects_to_the_exact_authorize_url(client):
    response = client.get("/wechat/login/", {"next": "/orders/"})
    state = redirect_query(response)["state"]
    assert response.status_code == 302
    assert response["Location"] == (
        "https://open.weixin.qq.com/connect/oauth2/authorize?appid=wx1234567890abcdef"
        f"&redirect_uri={quote(REDIRECT_URL, safe='')}"
        f"&response_type=code&scope=snsapi_base&state={state}#wechat_redirect"
    )
    assert response["Cache-Control"].startswith("max-age=0")


def test_login_state_is_fresh_alphanumeric_and_bound_to_the_browser(client):
    first = start_login(client)["state"]
    flow_cookie = client.cookies["wechat_flow"]
    second = start_login(client)["state"]
    assert first != second
    assert first.isalnum() and first.isascii() and len(first) <= 128
    assert flow_cookie["httponly"] and flow_cookie["samesite"] == "Lax"
    assert flow_cookie["path"] == "/wechat/"


def test_the_flow_cookie_is_secure_over_https(client):
    response = client.get("/wechat/login/", secure=True)
    assert response.cookies["wechat_flow"]["secure"]


def test_login_asks_for_consent_with_userinfo_scope(client):
    assert start_login(client, scope="snsapi_userinfo")["scope"] == "snsapi_userinfo"


def test_login_refuses_an_unknown_scope(client):
    response = client.get("/wechat/login/", {"scope": "snsapi_login"})
    assert response.status_code == 400
    assert "链接无效" in response.content.decode()
    assert "wechat_flow" not in response.cookies


# The callback: state


def test_callback_without_bound_state_restarts_silently_once(client, wechat_api):
    """A lost cookie restarts the flow with snsapi_base; nothing is stored."""
    response = client.get("/wechat/authorize/", {"code": "CODE1", "state": "AbC"})
    query = redirect_query(response)
    assert response.status_code == 302
    assert response["Location"].startswith("https://open.weixin.qq.com/connect/oauth2/authorize?")
    assert query["scope"] == "snsapi_base"
    assert query["redirect_uri"] == REDIRECT_URL + "?restarted=1"
    assert FAN_COOKIE not in response.cookies
    assert FansProfile.objects.count() == 0


def test_callback_state_failing_again_shows_a_page_never_a_loop(client, wechat_api):
    client.cookies.clear()
    response = client.get("/wechat/authorize/", {"restarted": "1", "code": "C", "state": "X"})
    assert response.status_code == 400
    body = response.content.decode()
    assert "登录未完成" in body
    assert 'href="/wechat/login/?next=%2F"' in body
    assert FAN_COOKIE not in response.cookies


def test_state_from_another_browser_signs_nobody_in(client, wechat_api, other_browser):
    """A victim's browser must not accept a state and code an attacker obtained."""
    attacker_state = start_login(other_browser)["state"]
    start_login(client)
    response = client.get("/wechat/authorize/", {"code": "ATTACKER", "state": attacker_state})
    assert response.status_code == 302
    assert "restarted%3D1" in response["Location"]
    assert FAN_COOKIE not in response.cookies


@pytest.mark.parametrize(
    "flow_cookie",
    [
        '{"state": "AbC", "next": "/"}',
        signing.dumps({"state": "AbC", "next": "/"}, salt="another-salt"),
    ],
)
def test_a_forged_flow_cookie_binds_no_state(client, flow_cookie):
    client.cookies["wechat_flow"] = flow_cookie
    response = client.get("/wechat/authorize/", {"code": "C", "state": "AbC"})
    assert "restarted%3D1" in response["Location"]


def test_a_state_older_than_ten_minutes_is_refused(client, monkeypatch):
    state = start_login(client)["state"]
    later = signing.time.time() + 601
    monkeypatch.setattr(signing.time, "time", lambda: later)
    response = client.get("/wechat/authorize/", {"code": "C", "state": state})
    assert "restarted%3D1" in response["Location"]


def test_state_is_good_for_one_callback_only(client, wechat_api):
    sign_up(client, wechat_api, "oFAN1")
    state_again = client.get("/wechat/authorize/", {"code": "CODE1", "state": "whatever"})
    assert "restarted%3D1" in state_again["Location"]


# The callback: outcomes


def test_fan_who_refuses_sees_a_friendly_page(client):
    state = start_login(client, scope="snsapi_userinfo")["state"]
    response = client.get("/wechat/authorize/", {"state": state})
    body = response.content.decode()
    assert response.status_code == 200
    assert "你已取消授权" in body
    assert "scope=snsapi_userinfo" in body
    assert FansProfile.objects.count() == 0


def test_first_visit_with_base_scope_shows_the_register_page(client, wechat_api):
    state = start_login(client, next="/orders/?id=7")["state"]
    response = callback(client, wechat_api, state, openid="oNEW")
    body = response.content.decode()
    assert response.status_code == 200
    assert "你还未进行信息认证，请进行第一次认证" in body
    assert 'href="/wechat/login/?next=%2Forders%2F%3Fid%3D7&amp;scope=snsapi_userinfo"' in body
    assert len(wechat_api.calls) == 1
    assert FansProfile.objects.count() == 0
    assert FAN_COOKIE not in response.cookies


def test_a_fan_row_without_consent_still_gets_the_register_page(client, wechat_api):
    """A row known only by openid (no userinfo yet) is not a registered fan."""
    FansProfile.objects.create(openid="oBARE")
    state = start_login(client)["state"]
    response = callback(client, wechat_api, state, openid="oBARE")
    assert "你还未进行信息认证" in response.content.decode()
    assert FAN_COOKIE not in response.cookies


def test_consent_stores_the_fan_and_signs_them_in(client, wechat_api):
    response = sign_up(client, wechat_api, "oFAN1", next_url="/orders/", nickname="小鸡炖蘑菇🍄😀")
    fan = FansProfile.objects.get()
    cookie = response.cookies[FAN_COOKIE]
    assert response.status_code == 302
    assert response["Location"] == "/orders/"
    assert fan.openid == "oFAN1"
    assert fan.nickname == "小鸡炖蘑菇🍄😀"
    assert fan.unionid == "oUNION000000000000000000001"
    assert fan.userinfo["nickname"] == "小鸡炖蘑菇🍄😀"
    assert fan.last_login_at is not None
    assert signed_in_fan(client) == fan
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["max-age"] == 3600
    assert not cookie["secure"]
    assert response.cookies["wechat_flow"].value == ""  # the state is spent


def test_fan_cookie_is_secure_over_https(client, wechat_api):
    state = start_login(client, scope="snsapi_userinfo")["state"]
    answer(wechat_api, "/sns/userinfo", userinfo_answer("oFAN1"))
    answer(wechat_api, "/sns/oauth2/access_token", token_answer("oFAN1", "snsapi_userinfo"))
    response = client.get("/wechat/authorize/", {"code": "C", "state": state}, secure=True)
    assert response.cookies[FAN_COOKIE]["secure"]


def test_two_fans_in_a_row_each_get_their_own_profile_and_token(client, wechat_api, other_browser):
    sign_up(client, wechat_api, "oFAN1", nickname="甲")
    sign_up(other_browser, wechat_api, "oFAN2", nickname="乙")
    assert signed_in_fan(client).nickname == "甲"
    assert signed_in_fan(other_browser).nickname == "乙"
    assert FansProfile.objects.count() == 2
    assert cache.get(oauth_token_cache_key("oFAN1")).openid == "oFAN1"
    assert cache.get(oauth_token_cache_key("oFAN2")).openid == "oFAN2"


def test_returning_fan_costs_one_wechat_call(client, wechat_api, django_assert_max_num_queries):
    fan = FansProfile.create_fan(userinfo_answer("oFAN1"))
    FansProfile.objects.filter(pk=fan.pk).update(last_login_at=None)
    state = start_login(client, next="/me/")["state"]
    with django_assert_max_num_queries(2) as captured:
        response = callback(client, wechat_api, state, openid="oFAN1")
    # A lookup by a unique column has nothing to sort.
    assert not [query["sql"] for query in captured.captured_queries if "ORDER BY" in query["sql"]]
    assert len(wechat_api.calls) == 1
    assert wechat_api.calls[0].request.url.startswith(API + "/sns/oauth2/access_token?")
    assert response["Location"] == "/me/"
    assert signed_in_fan(client) == fan
    fan.refresh_from_db()
    assert fan.last_login_at is not None


def test_consent_again_updates_the_same_row(client, wechat_api):
    sign_up(client, wechat_api, "oFAN1", nickname="旧名字")
    sign_up(client, wechat_api, "oFAN1", nickname="新名字")
    assert list(FansProfile.objects.values_list("nickname", flat=True)) == ["新名字"]


def test_snapshot_user_is_not_stored(client, wechat_api):
    state = start_login(client, scope="snsapi_userinfo")["state"]
    response = callback(
        client, wechat_api, state, openid="oFAKE", scope="snsapi_userinfo", is_snapshotuser=1
    )
    assert response.status_code == 200
    assert "使用完整服务" in response.content.decode()
    assert FansProfile.objects.count() == 0
    assert FAN_COOKIE not in response.cookies


# The callback: WeChat says no


@pytest.mark.parametrize("errcode", [40163, 40029])
def test_replayed_or_expired_code_restarts_once(client, wechat_api, errcode):
    state = start_login(client, next="/orders/")["state"]
    wechat_api.get(API + "/sns/oauth2/access_token", json={"errcode": errcode, "errmsg": "code"})
    response = client.get("/wechat/authorize/", {"code": "USED", "state": state})
    query = redirect_query(response)
    assert response.status_code == 302
    assert query["redirect_uri"] == REDIRECT_URL + "?restarted=1"
    # The restarted flow still remembers where the fan was going.
    restarted_state = query["state"]
    answer(wechat_api, "/sns/oauth2/access_token", {"errcode": errcode, "errmsg": "code"})
    again = client.get(
        "/wechat/authorize/", {"restarted": "1", "code": "USED", "state": restarted_state}
    )
    assert again.status_code == 400
    assert 'href="/wechat/login/?next=%2Forders%2F"' in again.content.decode()


@pytest.mark.parametrize(
    ("wechat_answer", "logged"),
    [
        ({"json": {"errcode": 40013, "errmsg": "invalid appid"}}, "WeChat error 40013"),
        ({"json": {"errcode": 40125, "errmsg": "invalid appsecret"}}, "WeChat error 40125"),
        ({"json": {"errcode": 41002, "errmsg": "appid missing"}}, "WeChat error 41002"),
        ({"json": {"errcode": -1, "errmsg": "system error"}}, "WeChat error -1"),
        ({"body": requests.ReadTimeout()}, "access_token timed out"),
        ({"body": requests.ConnectionError()}, "failed (ConnectionError)"),
        ({"status": 503, "body": "busy"}, "answered HTTP 503"),
        ({"status": 500, "body": "Internal Server Error"}, "answered HTTP 500"),
        ({"body": '{"access_token": "AT", "openid": "o'}, "not JSON"),
        ({"body": "<html><title>系统繁忙</title></html>"}, "not JSON"),
    ],
)
def test_configuration_and_network_errors_show_502_with_retry(
    client, wechat_api, caplog, wechat_answer, logged
):
    state = start_login(client)["state"]
    wechat_api.get(API + "/sns/oauth2/access_token", **wechat_answer)
    caplog.set_level(logging.WARNING, logger="fans")
    response = client.get("/wechat/authorize/", {"code": "C", "state": state})
    assert response.status_code == 502
    assert "登录失败" in response.content.decode()
    assert 'href="/wechat/login/?next=%2F"' in response.content.decode()
    assert logged in caplog.text
    assert "app-secret-never-logged" not in caplog.text


def test_userinfo_refused_shows_502(client, wechat_api):
    state = start_login(client, scope="snsapi_userinfo")["state"]
    answer(wechat_api, "/sns/userinfo", {"errcode": 48001, "errmsg": "api unauthorized"})
    response = callback(client, wechat_api, state, openid="oFAN1", scope="snsapi_userinfo")
    assert response.status_code == 502
    assert FansProfile.objects.count() == 0


# next


@pytest.mark.parametrize(
    ("next_url", "lands_on"),
    [
        ("https://evil.example/", "/"),
        ("//evil.example", "/"),
        ("/\\evil.example", "/"),
        ("\\\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("evil.example", "/"),
        ("http:///evil.example", "/"),
        ("///evil.example", "/"),
        # An encoded slash stays a path on this site.
        ("/%2F%2Fevil.example", "/%2F%2Fevil.example"),
        ("/orders/?id=7#top", "/orders/?id=7#top"),
        # Back to the login views would send the fan round WeChat forever.
        ("/wechat/authorize/", "/"),
        ("/wechat/login/?next=/x", "/"),
    ],
)
def test_next_never_leaves_the_site(client, wechat_api, next_url, lands_on):
    FansProfile.create_fan(userinfo_answer("oFAN1"))
    state = start_login(client, next=next_url)["state"]
    response = callback(client, wechat_api, state, openid="oFAN1")
    assert response["Location"] == lands_on


# The fan's pages


def test_home_sends_a_stranger_to_login(client):
    response = client.get("/", {"tab": "1"})
    assert response.status_code == 302
    assert response["Location"] == "/wechat/login/?next=%2F%3Ftab%3D1"


def test_home_greets_the_signed_in_fan(client, wechat_api):
    sign_up(client, wechat_api, "oFAN1", nickname="小鸡炖蘑菇🍄😀")
    body = client.get("/").content.decode()
    assert "你好，小鸡炖蘑菇🍄😀" in body
    assert 'src="https://thirdwx.qlogo.cn/mmopen/vi_32/avatar/132"' in body


@pytest.mark.parametrize(
    "cookie",
    [
        "1",
        "1:forged:signature",
        signing.TimestampSigner(salt="another-salt").sign("1"),
    ],
)
def test_forged_fan_cookie_is_ignored(client, cookie):
    FansProfile.create_fan(userinfo_answer("oFAN1"))
    client.cookies[FAN_COOKIE] = cookie
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/wechat/login/")


def test_fan_cookie_expires_after_its_max_age(client, wechat_api, monkeypatch):
    sign_up(client, wechat_api, "oFAN1")
    assert client.get("/").status_code == 200
    later = signing.time.time() + 3601
    monkeypatch.setattr(signing.time, "time", lambda: later)
    assert client.get("/").status_code == 302


@pytest.fixture
def other_browser():
    """A second browser, with cookies of its own."""
    return Client()


def test_urls_ignore_a_redirect_url_in_the_wsgi_environment(client):
    """runserver copies os.environ, where .env's REDIRECT_URL lives, into requests."""
    response = client.get("/", REDIRECT_URL="https://xgc.example.com/wechat/authorize/")
    assert response["Location"] == "/wechat/login/?next=%2F"


# The greeting: first visit or a later one


def test_the_first_visit_is_greeted_as_a_first_meeting(client, wechat_api):
    """A fan who has just consented for the first time is not welcomed back."""
    sign_up(client, wechat_api, "oFAN1")
    body = client.get("/").content.decode()
    assert "第一次见面" in body
    assert "欢迎回来" not in body


def test_a_later_sign_in_welcomes_the_fan_back(client, wechat_api):
    """A silent sign-in on another day is a return: 欢迎回来."""
    sign_up(client, wechat_api, "oFAN1")
    yesterday = timezone.now() - timedelta(days=1)
    FansProfile.objects.update(created_at=yesterday, last_login_at=yesterday)
    client.cookies.clear()
    state = start_login(client)["state"]
    assert callback(client, wechat_api, state, openid="oFAN1")["Location"] == "/"
    body = client.get("/").content.decode()
    assert "欢迎回来" in body
    assert "第一次见面" not in body


def test_consenting_again_later_is_a_return_too(client, wechat_api):
    """A snsapi_userinfo menu link signs a known fan in through consent each time."""
    sign_up(client, wechat_api, "oFAN1")
    FansProfile.objects.update(created_at=timezone.now() - timedelta(days=1))
    client.cookies.clear()
    sign_up(client, wechat_api, "oFAN1")
    assert "欢迎回来" in client.get("/").content.decode()


# The icon


def test_pages_link_the_icon(client):
    body = client.get("/wechat/login/?scope=bad").content.decode()
    assert '<link rel="icon" href="/static/xgc/icon.svg" type="image/svg+xml">' in body


def test_favicon_ico_leads_to_the_icon(client):
    """Pages without the link (the admin's) make browsers ask for /favicon.ico."""
    response = client.get("/favicon.ico")
    assert response.status_code == 301
    assert response["Location"] == "/static/xgc/icon.svg"
    assert "max-age=86400" in response["Cache-Control"]
    assert client.head("/favicon.ico").status_code == 301
    # The static file itself, xgc's own (served by whitenoise: see the browser test).
    root = ElementTree.parse(finders.find("xgc/icon.svg")).getroot()  # noqa: S314
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
