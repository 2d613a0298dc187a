"""The benchmark's reference app (tests/bench_reference.py), called in-process.

WeChat's API is mocked with responses. Each test runs on SQLite in tmp_path;
the PostgreSQL pass of `make test` (XGC_TEST_DATABASE_URL) runs them again on
PostgreSQL, as tests/conftest.py arranges for the postgres mark.
"""

from __future__ import annotations

import html
import json
import os
import re
import sqlite3
import threading
import time
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit
from wsgiref.util import setup_testing_defaults
from wsgiref.validate import validator

import psycopg
import pytest
import requests

from tests import bench_reference
from tests.bench_reference import Config, create_schema, make_app

from .conftest import API, answer, token_answer, userinfo_answer

OPEN = "https://open.weixin.qq.com"
CALLBACK = "https://xgc.example.com/wechat/authorize/"
APP_ID = "wx1234567890abcdef"
APP_SECRET = "app-secret-never-logged"
# The fans' own patterns (tests/bench_fans.py).
REGISTER_LINK = re.compile(r'href="([^"]+)">去认证')
GREETING = re.compile(r"你好，([^<]+)</h1>")


@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]
    text: str

    def header(self, name: str) -> str | None:
        values = [value for key, value in self.headers if key.lower() == name.lower()]
        assert len(values) <= 1, f"{name} sent {len(values)} times"
        return values[0] if values else None

    def set_cookies(self) -> SimpleCookie:
        """Parse every Set-Cookie with the standard library's parser."""
        cookies = SimpleCookie()
        for key, value in self.headers:
            if key.lower() == "set-cookie":
                cookies.load(value)
        return cookies


class Browser:
    """Calls the WSGI app as a browser would, keeping cookies by name and path."""

    def __init__(self, app):
        # wsgiref's validator fails the test on any breach of the WSGI spec.
        self.app = validator(app)
        self.cookies: dict[str, tuple[str, str]] = {}

    def get(
        self, path: str, query: dict[str, str] | None = None, method: str = "GET", **environ: Any
    ) -> Answer:
        setup_testing_defaults(environ)
        environ.update(REQUEST_METHOD=method, PATH_INFO=path, QUERY_STRING=urlencode(query or {}))
        sent = [
            f"{name}={value}" for name, (value, at) in self.cookies.items() if path.startswith(at)
        ]
        if sent:
            environ["HTTP_COOKIE"] = "; ".join(sent)
        started = {}

        def start_response(status, headers, exc_info=None):
            started.update(status=status, headers=headers)

        result = self.app(environ, start_response)
        try:
            body = b"".join(result)
        finally:
            result.close()
        answer = Answer(int(started["status"].split()[0]), started["headers"], body.decode())
        for name, morsel in answer.set_cookies().items():
            if morsel["max-age"] == "0":
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = (morsel.value, morsel["path"] or "/")
        return answer


def make_config(database_url: str) -> Config:
    return Config(
        database_url=database_url,
        open_base_url=OPEN,
        api_base_url=API,
        app_id=APP_ID,
        app_secret=APP_SECRET,
        redirect_url=CALLBACK,
        secret_key="reference-tests-secret-" + "x" * 40,
        mp_verify="bench",
    )


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request, tmp_path):
    """A fresh reference_fan table on SQLite, or on the PostgreSQL of the PostgreSQL pass."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'reference.sqlite3'}"
        create_schema(url)
        yield url
        return
    url = os.environ["XGC_TEST_DATABASE_URL"]
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("DROP TABLE IF EXISTS reference_fan")
    create_schema(url)
    try:
        yield url
    finally:
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute("DROP TABLE IF EXISTS reference_fan")


@pytest.fixture
def app(database_url):
    app = make_app(make_config(database_url))
    yield app
    app.store.close()


def fetch_all(database_url: str, sql: str) -> list[tuple]:
    """Read the table with a connection of the test's own."""
    if database_url.startswith("sqlite:///"):
        connection = sqlite3.connect(database_url.removeprefix("sqlite:///"))
        try:
            with connection:  # commits
                return connection.execute(sql).fetchall()
        finally:
            connection.close()
    with psycopg.connect(database_url) as connection:
        return connection.execute(sql).fetchall()


def start(browser: Browser, **query: str) -> dict[str, str]:
    """Open /wechat/login/; return the authorize link's parameters."""
    response = browser.get("/wechat/login/", query)
    assert response.status == 302
    location = urlsplit(response.header("Location"))
    return {key: values[0] for key, values in parse_qs(location.query).items()}


def callback(browser: Browser, code: str, state: str) -> Answer:
    return browser.get("/wechat/authorize/", {"code": code, "state": state})


def sign_up(browser: Browser, wechat_api, openid: str, nickname: str = "小鸡炖蘑菇🍄😀", **query):
    """Go through the consent flow (scope snsapi_userinfo); return the callback's answer."""
    state = start(browser, scope="snsapi_userinfo", **query)["state"]
    answer(
        wechat_api,
        "/sns/oauth2/access_token",
        token_answer(openid, "snsapi_userinfo"),
        code=f"code-{openid}",
    )
    answer(wechat_api, "/sns/userinfo", userinfo_answer(openid, nickname=nickname), openid=openid)
    return callback(browser, f"code-{openid}", state)


def come_back(browser: Browser, wechat_api, openid: str, **query) -> Answer:
    """Sign in silently (scope snsapi_base); return the callback's answer."""
    state = start(browser, **query)["state"]
    answer(wechat_api, "/sns/oauth2/access_token", token_answer(openid), code=f"again-{openid}")
    return callback(browser, f"again-{openid}", state)


# Trivial routes


def test_mp_verify_answers_its_code_only(app):
    browser = Browser(app)
    response = browser.get("/MP_verify_bench.txt")
    assert (response.status, response.text) == (200, "bench")
    assert response.header("Content-Type").startswith("text/plain")
    assert browser.get("/MP_verify_other.txt").status == 404


def test_unknown_paths_are_404_and_other_methods_405(app):
    browser = Browser(app)
    assert browser.get("/admin/").status == 404
    refused = browser.get("/wechat/login/", method="POST")
    assert refused.status == 405
    assert refused.header("Allow") == "GET"


# /wechat/login/


def test_login_redirects_to_authorize_with_a_signed_flow_cookie(app):
    browser = Browser(app)
    response = browser.get("/wechat/login/", {"next": "/"})
    assert response.status == 302
    match = re.fullmatch(
        re.escape(
            f"{OPEN}/connect/oauth2/authorize?appid={APP_ID}"
            f"&redirect_uri={quote(CALLBACK, safe='')}&response_type=code&scope=snsapi_base&state="
        )
        + r"([A-Za-z0-9]{32})#wechat_redirect",
        response.header("Location"),
    )
    assert match, response.header("Location")
    flow = response.set_cookies()["wechat_flow"]
    assert flow["path"] == "/wechat/"
    assert flow["max-age"] == "600"
    assert flow["httponly"] is True
    assert flow["samesite"] == "Lax"
    assert flow["secure"] == ""
    assert match.group(1) in bench_reference._unb64(flow.value.split(".")[0]).decode()
    # Each login has its own state.
    assert start(browser)["state"] != match.group(1)


def test_login_asks_for_the_scope_given(app):
    assert start(Browser(app), scope="snsapi_userinfo")["scope"] == "snsapi_userinfo"
    assert Browser(app).get("/wechat/login/", {"scope": "snsapi_login"}).status == 400


def test_cookies_are_secure_over_https(app, wechat_api):
    browser = Browser(app)
    https = {"wsgi.url_scheme": "https"}
    login = browser.get("/wechat/login/", {"scope": "snsapi_userinfo"}, **https)
    assert login.set_cookies()["wechat_flow"]["secure"] is True
    state = parse_qs(urlsplit(login.header("Location")).query)["state"][0]
    answer(wechat_api, "/sns/oauth2/access_token", token_answer("oNEW", "snsapi_userinfo"))
    answer(wechat_api, "/sns/userinfo", userinfo_answer("oNEW"))
    signed_in = browser.get("/wechat/authorize/", {"code": "c", "state": state}, **https)
    assert signed_in.set_cookies()["fanid"]["secure"] is True


# State checks


@pytest.mark.parametrize("tamper", ["absent", "mac", "payload", "expired", "other purpose"])
def test_callback_without_a_valid_flow_cookie_is_refused(app, wechat_api, tamper):
    """No WeChat call is made (the mock has no answers) and nobody is signed in."""
    browser = Browser(app)
    state = start(browser)["state"]
    value, _ = browser.cookies["wechat_flow"]
    payload, timestamp, mac = value.split(".")
    flow = json.loads(bench_reference._unb64(payload))
    if tamper == "absent":
        del browser.cookies["wechat_flow"]
    elif tamper == "mac":
        browser.cookies["wechat_flow"] = (f"{payload}.{timestamp}.{mac[::-1]}", "/wechat/")
    elif tamper == "payload":
        forged = bench_reference._b64(json.dumps(flow | {"next": "/admin/"}).encode())
        browser.cookies["wechat_flow"] = (f"{forged}.{timestamp}.{mac}", "/wechat/")
    elif tamper == "expired":
        old = app.flow_signer.sign(payload, int(time.time()) - 601)
        browser.cookies["wechat_flow"] = (old, "/wechat/")
    else:
        browser.cookies["wechat_flow"] = (app.fan_signer.sign(payload), "/wechat/")
    response = callback(browser, "code", state)
    assert response.status == 400
    assert "登录未完成" in response.text
    assert response.header("X-Bench-Queries") == "0"
    assert "fanid" not in browser.cookies


def test_callback_with_another_state_is_refused(app, wechat_api):
    browser = Browser(app)
    state = start(browser)["state"]
    assert callback(browser, "code", state.swapcase()).status == 400
    # The state is forgotten after its one callback, even a refused one.
    assert "wechat_flow" not in browser.cookies
    assert callback(browser, "code", state).status == 400


def test_a_fan_who_cancels_gets_a_link_to_consent(app, wechat_api):
    browser = Browser(app)
    state = start(browser, next="/activities/")["state"]
    response = browser.get("/wechat/authorize/", {"state": state})
    assert response.status == 200
    assert "你已取消授权" in response.text
    assert "/wechat/login/?next=%2Factivities%2F&amp;scope=snsapi_userinfo" in response.text


# New fans


def test_a_new_fans_silent_callback_shows_the_register_link(app, wechat_api, database_url):
    browser = Browser(app)
    state = start(browser, next="/")["state"]
    answer(
        wechat_api,
        "/sns/oauth2/access_token",
        token_answer("oNEW"),
        appid=APP_ID,
        secret=APP_SECRET,
        code="code1",
        grant_type="authorization_code",
    )
    response = callback(browser, "code1", state)
    assert response.status == 200
    assert '<a href="/wechat/login/?next=%2F&amp;scope=snsapi_userinfo">去认证</a>' in response.text
    assert response.header("X-Bench-Queries") == "1"
    assert "wechat_flow" not in browser.cookies
    assert "fanid" not in browser.cookies
    assert fetch_all(database_url, "SELECT openid FROM reference_fan") == []


def test_the_register_link_keeps_next_and_asks_for_consent(app, wechat_api):
    browser = Browser(app)
    state = start(browser, next="/activities/7/")["state"]
    answer(wechat_api, "/sns/oauth2/access_token", token_answer("oNEW"))
    link = REGISTER_LINK.search(callback(browser, "code1", state).text).group(1)
    query = parse_qs(urlsplit(html.unescape(link)).query)
    assert query == {"next": ["/activities/7/"], "scope": ["snsapi_userinfo"]}


def test_consent_stores_the_fan_and_signs_them_in(app, wechat_api, database_url):
    browser = Browser(app)
    response = sign_up(browser, wechat_api, "oNEW")
    assert response.status == 302
    assert response.header("Location") == "/"
    assert response.header("X-Bench-Queries") == "1"
    fanid = response.set_cookies()["fanid"]
    assert fanid["path"] == "/"
    assert fanid["max-age"] == str(30 * 24 * 60 * 60)
    assert fanid["httponly"] is True
    assert fanid["samesite"] == "Lax"
    assert response.set_cookies()["wechat_flow"]["max-age"] == "0"
    [(fan_id, openid, nickname, headimgurl, userinfo)] = fetch_all(
        database_url, "SELECT id, openid, nickname, headimgurl, userinfo FROM reference_fan"
    )
    assert fanid.value.split(".")[0] == str(fan_id)
    assert (openid, nickname) == ("oNEW", "小鸡炖蘑菇🍄😀")
    assert headimgurl == "https://thirdwx.qlogo.cn/mmopen/vi_32/avatar/132"
    assert json.loads(userinfo) == userinfo_answer("oNEW", nickname="小鸡炖蘑菇🍄😀")
    home = browser.get("/")
    assert GREETING.search(home.text).group(1) == "小鸡炖蘑菇🍄😀"
    assert "第一次见面" in home.text


def test_the_userinfo_call_carries_the_fans_token(app, wechat_api):
    browser = Browser(app)
    state = start(browser, scope="snsapi_userinfo")["state"]
    answer(
        wechat_api,
        "/sns/oauth2/access_token",
        token_answer("oNEW", "snsapi_userinfo", access_token="FAN-TOKEN"),
    )
    answer(
        wechat_api,
        "/sns/userinfo",
        userinfo_answer("oNEW"),
        access_token="FAN-TOKEN",
        openid="oNEW",
        lang="zh_CN",
    )
    assert callback(browser, "code1", state).status == 302


def test_consenting_again_updates_the_one_row(app, wechat_api, database_url):
    first = sign_up(Browser(app), wechat_api, "oNEW", nickname="旧名字")
    again = sign_up(Browser(app), wechat_api, "oNEW", nickname="新名字")
    assert (
        first.set_cookies()["fanid"].value.split(".")[0]
        == again.set_cookies()["fanid"].value.split(".")[0]
    )
    assert fetch_all(database_url, "SELECT nickname FROM reference_fan") == [("新名字",)]


@pytest.mark.parametrize(
    ("given", "landing"),
    [
        ("/activities/?page=2", "/activities/?page=2"),
        ("/活动/", "/%E6%B4%BB%E5%8A%A8/"),
        ("//evil.example/", "/"),
        ("/\\evil.example/", "/"),
        ("https://evil.example/", "/"),
        ("/\t/evil.example/", "/"),
        ("/wechat/login/", "/"),
        ("", "/"),
    ],
)
def test_next_is_followed_only_on_this_site(app, wechat_api, given, landing):
    response = sign_up(Browser(app), wechat_api, "oNEW", next=given)
    assert response.header("Location") == landing


# Returning fans


def test_a_returning_fan_is_signed_in_with_one_statement(app, wechat_api, database_url):
    browser = Browser(app)
    sign_up(browser, wechat_api, "oBACK", nickname='<b>"小&鸡"</b>')
    [(signed_up_at,)] = fetch_all(database_url, "SELECT last_login_at FROM reference_fan")
    del browser.cookies["fanid"]
    response = come_back(browser, wechat_api, "oBACK", next="/")
    assert response.status == 302
    assert response.header("Location") == "/"
    assert response.header("X-Bench-Queries") == "1"
    assert "wechat_flow" not in browser.cookies
    [(logged_in_at,)] = fetch_all(database_url, "SELECT last_login_at FROM reference_fan")
    assert logged_in_at != signed_up_at
    home = browser.get("/")
    assert home.status == 200
    assert "<h1>你好，&lt;b&gt;&quot;小&amp;鸡&quot;&lt;/b&gt;</h1>" in home.text
    assert "<b>" not in home.text


def test_a_fan_without_userinfo_has_not_consented(app, wechat_api, database_url):
    """A row without userinfo (xgc makes them from follow events) is not a signed-up fan."""
    sign_up(Browser(app), wechat_api, "oBARE")
    fetch_all(database_url, "UPDATE reference_fan SET userinfo = NULL RETURNING id")
    response = come_back(Browser(app), wechat_api, "oBARE")
    assert response.status == 200
    assert REGISTER_LINK.search(response.text)


# WeChat failures


def test_a_wechat_errcode_is_a_502(app, wechat_api):
    browser = Browser(app)
    state = start(browser)["state"]
    answer(wechat_api, "/sns/oauth2/access_token", {"errcode": 40029, "errmsg": "invalid code"})
    response = callback(browser, "code1", state)
    assert response.status == 502
    assert "登录失败" in response.text
    assert "fanid" not in browser.cookies


def test_a_userinfo_errcode_is_a_502_and_stores_nothing(app, wechat_api, database_url):
    browser = Browser(app)
    state = start(browser, scope="snsapi_userinfo")["state"]
    answer(wechat_api, "/sns/oauth2/access_token", token_answer("oNEW", "snsapi_userinfo"))
    answer(wechat_api, "/sns/userinfo", {"errcode": 48001, "errmsg": "api unauthorized"})
    assert callback(browser, "code1", state).status == 502
    assert fetch_all(database_url, "SELECT openid FROM reference_fan") == []


@pytest.mark.parametrize(
    "problem",
    [
        requests.ConnectionError("refused"),
        requests.Timeout("slow"),
        b"<html>busy</html>",
        b'{"expires_in": 7200}',
    ],
)
def test_no_usable_answer_from_wechat_is_a_502_without_the_secret(app, wechat_api, caplog, problem):
    browser = Browser(app)
    state = start(browser)["state"]
    wechat_api.get(f"{API}/sns/oauth2/access_token", body=problem)
    response = callback(browser, "code1", state)
    assert response.status == 502
    assert caplog.records
    assert APP_SECRET not in caplog.text


def test_a_snapshot_page_user_is_not_stored(app, wechat_api, database_url):
    browser = Browser(app)
    state = start(browser, scope="snsapi_userinfo")["state"]
    answer(
        wechat_api,
        "/sns/oauth2/access_token",
        token_answer("oFAKE", "snsapi_userinfo", is_snapshotuser=1),
    )
    response = callback(browser, "code1", state)
    assert response.status == 200
    assert "快照页" in response.text
    assert fetch_all(database_url, "SELECT openid FROM reference_fan") == []


# Home


def test_home_without_a_fan_cookie_starts_sign_in(app):
    response = Browser(app).get("/")
    assert response.status == 302
    assert response.header("Location") == "/wechat/login/?next=%2F"


@pytest.mark.parametrize("cookie", ["forged", "expired", "unknown fan", "flow cookie"])
def test_home_with_a_bad_fan_cookie_starts_sign_in(app, wechat_api, cookie):
    browser = Browser(app)
    sign_up(browser, wechat_api, "oNEW")
    fan_id = browser.cookies["fanid"][0].split(".")[0]
    value = {
        "forged": f"{fan_id}.{int(time.time())}.{'A' * 43}",
        "expired": app.fan_signer.sign(fan_id, int(time.time()) - 30 * 24 * 60 * 60 - 1),
        "unknown fan": app.fan_signer.sign("999999"),
        "flow cookie": app.flow_signer.sign(fan_id),
    }[cookie]
    browser.cookies["fanid"] = (value, "/")
    response = browser.get("/")
    assert response.status == 302
    assert response.header("Location") == "/wechat/login/?next=%2F"


# Failures, threads, configuration


def test_a_failure_is_a_short_500_and_logged(tmp_path, caplog):
    # No create_schema: every query fails.
    app = make_app(make_config(f"sqlite:///{tmp_path / 'empty.sqlite3'}"))
    browser = Browser(app)
    browser.cookies["fanid"] = (app.fan_signer.sign("1"), "/")
    response = browser.get("/")
    assert response.status == 500
    assert "Traceback" not in response.text and "reference_fan" not in response.text
    assert "no such table" in caplog.text
    app.store.close()


def test_create_schema_is_idempotent_and_sqlite_uses_wal(database_url):
    create_schema(database_url)
    assert fetch_all(database_url, "SELECT COUNT(*) FROM reference_fan") == [(0,)]
    if database_url.startswith("sqlite:///"):
        assert fetch_all(database_url, "PRAGMA journal_mode") == [("wal",)]


def test_threads_signing_in_at_once_each_use_their_own_connection(app, wechat_api, database_url):
    """Sixteen first visits of one fan and of others at once: no lock errors, one row each."""
    visits = 16
    browsers = [Browser(app) for _ in range(visits)]
    states = [start(browser, scope="snsapi_userinfo")["state"] for browser in browsers]
    for number in range(visits):
        openid = "oSAME" if number % 2 else f"oFAN{number}"
        answer(
            wechat_api,
            "/sns/oauth2/access_token",
            token_answer(openid, "snsapi_userinfo"),
            code=f"code{number}",
        )
        answer(wechat_api, "/sns/userinfo", userinfo_answer(openid), openid=openid)
    barrier = threading.Barrier(visits, timeout=30)
    answers: dict[int, Answer] = {}

    def visit(number: int) -> None:
        barrier.wait()
        try:
            answers[number] = callback(browsers[number], f"code{number}", states[number])
        finally:
            app.store.close()

    threads = [threading.Thread(target=visit, args=(number,)) for number in range(visits)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(answers) == list(range(visits))
    assert {answer.status for answer in answers.values()} == {302}
    same = {
        answers[number].set_cookies()["fanid"].value.split(".")[0] for number in range(1, visits, 2)
    }
    assert len(same) == 1
    assert fetch_all(database_url, "SELECT COUNT(*) FROM reference_fan") == [(visits // 2 + 1,)]


def test_config_comes_from_the_environment(monkeypatch, tmp_path):
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'env.sqlite3'}",
        "WECHAT_OPEN_BASE_URL": "http://127.0.0.1:9/sandbox",
        "WECHAT_API_BASE_URL": "http://127.0.0.1:9/sandbox",
        "APP_ID": APP_ID,
        "APP_SECRET": APP_SECRET,
        "REDIRECT_URL": "http://127.0.0.1:8/wechat/authorize/",
        "SECRET_KEY": "k" * 50,
        "WECHAT_MP_VERIFY": "envcode",
    }
    config = bench_reference.config_from_env(env | {"WECHAT_HTTP_TIMEOUT": "2.5"})
    assert (config.mp_verify, config.http_timeout) == ("envcode", 2.5)
    with pytest.raises(bench_reference.ConfigError, match="APP_SECRET, SECRET_KEY"):
        bench_reference.config_from_env(env | {"APP_SECRET": "", "SECRET_KEY": " "})
    with pytest.raises(bench_reference.ConfigError, match="sqlite"):
        make_app(bench_reference.config_from_env(env | {"DATABASE_URL": "sqlite://:memory:"}))
    # What gunicorn does: import the module, then look application up.
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert "application" not in vars(bench_reference)
    try:
        application = bench_reference.application
        assert Browser(application).get("/MP_verify_envcode.txt").text == "envcode"
        assert bench_reference.application is application
    finally:
        vars(bench_reference).pop("application", None)
