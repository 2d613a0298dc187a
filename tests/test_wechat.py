"""xgc.wechat: the authorize URL and the /sns/* client."""

import json
import logging
import threading

import pytest
import requests

from xgc import wechat
from xgc.wechat import OAuthToken, WeChatError

from .conftest import API, answer, token_answer, userinfo_answer

SECRET = "app-secret-never-logged"


def a_token(scope: str = "snsapi_userinfo") -> OAuthToken:
    return OAuthToken(
        openid="oFAN1",
        scope=scope,
        expires_in=7200,
        access_token="ACCESS_TOKEN_OF_FAN",
        refresh_token="REFRESH_TOKEN_OF_FAN",
    )


def test_authorize_url_is_exactly_wechats_template():
    """Parameters in WeChat's order, redirect_uri fully encoded, fragment last."""
    url = wechat.authorize_url(
        redirect_uri="https://xgc.example.com/wechat/authorize/?a=1&b=2",
        scope="snsapi_userinfo",
        state="AbC123",
    )
    assert url == (
        "https://open.weixin.qq.com/connect/oauth2/authorize"
        "?appid=wx1234567890abcdef"
        "&redirect_uri=https%3A%2F%2Fxgc.example.com%2Fwechat%2Fauthorize%2F%3Fa%3D1%26b%3D2"
        "&response_type=code&scope=snsapi_userinfo&state=AbC123#wechat_redirect"
    )


def test_authorize_url_follows_the_open_base_url_setting(settings):
    settings.WECHAT_OPEN_BASE_URL = "http://127.0.0.1:9000/sandbox/"
    url = wechat.authorize_url(redirect_uri="https://x/", scope="snsapi_base", state="s")
    assert url.startswith("http://127.0.0.1:9000/sandbox/connect/oauth2/authorize?appid=")


def test_code_exchange_sends_documented_parameters_and_reads_the_token(wechat_api):
    call = answer(
        wechat_api,
        "/sns/oauth2/access_token",
        token_answer("oFAN1", "snsapi_userinfo", unionid="oUNION1"),
        appid="wx1234567890abcdef",
        secret=SECRET,
        code="CODE1",
        grant_type="authorization_code",
    )
    token = wechat.fetch_access_token("CODE1", requested_scope="snsapi_base")
    assert call.call_count == 1
    assert token.openid == "oFAN1"
    assert token.unionid == "oUNION1"
    assert token.expires_in == 7200
    assert token.allows_userinfo
    assert not token.is_snapshot_user
    assert "ACCESS_TOKEN" not in repr(token)


def test_missing_scope_in_answer_falls_back_to_the_requested_scope(wechat_api):
    body = token_answer("oFAN1")
    del body["scope"]
    answer(wechat_api, "/sns/oauth2/access_token", body)
    token = wechat.fetch_access_token("CODE1", requested_scope="snsapi_userinfo")
    assert token.scope == "snsapi_userinfo"


def test_snapshot_user_is_flagged(wechat_api):
    answer(wechat_api, "/sns/oauth2/access_token", token_answer("oFAKE", is_snapshotuser=1))
    assert wechat.fetch_access_token("C", requested_scope="snsapi_base").is_snapshot_user


def test_userinfo_decodes_text_plain_utf8_without_mojibake(wechat_api):
    """WeChat's text/plain without charset must still give the exact nickname."""
    call = answer(
        wechat_api,
        "/sns/userinfo",
        userinfo_answer("oFAN1", nickname="张三😀", sex="1"),
        access_token="ACCESS_TOKEN_OF_FAN",
        openid="oFAN1",
        lang="zh_CN",
    )
    info = wechat.get_user_info(a_token())
    assert call.calls[0].response.headers["Content-Type"] == "text/plain"
    assert info["nickname"] == "张三😀"


@pytest.mark.parametrize(
    ("body", "errcode"),
    [
        ({"errcode": 40029, "errmsg": "invalid code, rid: 6543-21"}, 40029),
        ({"errcode": "40163", "errmsg": "code been used"}, 40163),
        ({"errcode": 40125, "errmsg": "invalid appsecret"}, 40125),
        ({"errcode": -1, "errmsg": "system error"}, -1),
    ],
)
def test_errcode_raises_wechat_error(wechat_api, body, errcode):
    answer(wechat_api, "/sns/oauth2/access_token", body)
    with pytest.raises(WeChatError) as raised:
        wechat.fetch_access_token("C", requested_scope="snsapi_base")
    assert raised.value.errcode == errcode
    assert raised.value.errmsg == body["errmsg"]
    assert raised.value.code_rejected == (errcode in (40029, 40163))


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"body": requests.ConnectTimeout(f"secret={SECRET}")}, "timed out"),
        ({"body": requests.ConnectionError(f"url /x?secret={SECRET}")}, "ConnectionError"),
        ({"status": 502, "body": f"Bad Gateway secret={SECRET}"}, "HTTP 502"),
        ({"body": "<html>系统繁忙</html>"}, "not JSON"),
        ({"body": b"\xff\xfe{}"}, "not JSON"),
        ({"body": "[1, 2]"}, "not an object"),
        ({"body": '{"openid": "o"}'}, "without openid/access_token"),
    ],
)
def test_transport_failures_raise_wechat_error_without_the_secret(
    wechat_api, caplog, kwargs, words
):
    """Timeouts, HTTP errors and garbage become WeChatError(None) that never show the secret."""
    wechat_api.get(API + "/sns/oauth2/access_token", **kwargs)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(WeChatError) as raised:
        wechat.fetch_access_token("C", requested_scope="snsapi_base")
    error = raised.value
    assert error.errcode is None
    assert words in str(error)
    # No chained exception either: requests' own messages quote the URL.
    assert error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__
    assert SECRET not in str(error) and SECRET not in repr(error.args)
    assert SECRET not in caplog.text


def test_every_call_carries_the_configured_timeout(wechat_api, settings, monkeypatch):
    settings.WECHAT_HTTP_TIMEOUT = 2.5
    answer(wechat_api, "/sns/userinfo", userinfo_answer("oFAN1"))
    seen = []
    real_request = requests.Session.request

    def recording_request(self, method, url, **kwargs):
        seen.append(kwargs.get("timeout"))
        return real_request(self, method, url, **kwargs)

    monkeypatch.setattr(requests.Session, "request", recording_request)
    wechat.get_user_info(a_token())
    assert seen == [2.5]


def test_refresh_sends_no_secret(wechat_api):
    call = answer(
        wechat_api,
        "/sns/oauth2/refresh_token",
        token_answer("oFAN1", "snsapi_userinfo"),
        appid="wx1234567890abcdef",
        grant_type="refresh_token",
        refresh_token="REFRESH_TOKEN_OF_FAN",
    )
    token = wechat.refresh_access_token(a_token())
    assert "secret" not in call.calls[0].request.url
    assert token.openid == "oFAN1"


def test_check_access_token(wechat_api):
    answer(wechat_api, "/sns/auth", {"errcode": 0, "errmsg": "ok"}, openid="oFAN1")
    assert wechat.check_access_token(a_token()) is True
    wechat_api.replace(
        "GET", API + "/sns/auth", json={"errcode": 40003, "errmsg": "invalid openid"}
    )
    assert wechat.check_access_token(a_token()) is False


def test_check_access_token_raises_when_wechat_is_unreachable(wechat_api):
    wechat_api.get(API + "/sns/auth", body=requests.ReadTimeout())
    with pytest.raises(WeChatError):
        wechat.check_access_token(a_token())


def test_one_session_per_thread_is_reused():
    """Connections are pooled across calls; threads don't share a Session."""
    first, second = wechat._session(), wechat._session()
    other = []
    thread = threading.Thread(target=lambda: other.append(wechat._session()))
    thread.start()
    thread.join()
    assert first is second
    assert other[0] is not first


@pytest.mark.parametrize(
    ("no_proxy", "proxies"),
    [("", {"https": "http://proxy.example:3128"}), ("weixin.qq.com", {})],
)
def test_the_session_takes_proxy_and_ca_bundle_from_the_environment(
    settings, monkeypatch, no_proxy, proxies
):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", no_proxy)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/company-ca.pem")
    monkeypatch.setattr(wechat, "_local", threading.local())
    session = wechat._session()
    assert session.proxies == proxies
    assert session.verify == "/etc/ssl/company-ca.pem"
    # Pointed at another host, a thread makes a session for it.
    settings.WECHAT_API_BASE_URL = "http://127.0.0.1:8000/sandbox"
    assert wechat._session() is not session


def test_stable_token_posts_raw_json_with_the_secret(wechat_api):
    call = wechat_api.post(
        API + "/cgi-bin/stable_token",
        json={"access_token": "PLATFORM_TOKEN", "expires_in": 7200},
    )
    assert wechat.fetch_stable_token().value == "PLATFORM_TOKEN"
    assert json.loads(call.calls[0].request.body) == {
        "grant_type": "client_credential",
        "appid": "wx1234567890abcdef",
        "secret": SECRET,
        "force_refresh": False,
    }
