"""The platform token and jsapi_ticket: cached, locked, replaced at most once."""

import json
import logging
import os
import subprocess
import sys
import time

import pytest

from django.core.cache import cache

from xgc import tokens, wechat

from .conftest import API, PROJECT, TEST_REDIS_URL

STABLE = API + "/cgi-bin/stable_token"


def stable_answers(wechat_api, *values: str, expires_in: int = 7200):
    """Answer successive stable_token calls with these tokens."""
    return [
        wechat_api.post(STABLE, json={"access_token": value, "expires_in": expires_in})
        for value in values
    ]


def test_a_cold_cache_fetches_once_then_serves_from_the_cache(wechat_api):
    (call,) = stable_answers(wechat_api, "TOKEN_A")
    assert tokens.platform_token.get() == "TOKEN_A"
    assert tokens.platform_token.get() == "TOKEN_A"
    assert call.call_count == 1
    assert json.loads(call.calls[0].request.body)["force_refresh"] is False


def test_a_token_about_to_expire_is_not_cached(wechat_api):
    stable_answers(wechat_api, "SHORT", expires_in=tokens.EXPIRY_MARGIN)
    assert tokens.platform_token.get() == "SHORT"
    assert cache.get(tokens.platform_token.cache_key) is None


@pytest.mark.redis
def test_the_token_expires_from_redis_before_wechat_retires_it(wechat_api, redis_url):
    stable_answers(wechat_api, "TOKEN_A")
    tokens.platform_token.get()
    ttl = cache.ttl(tokens.platform_token.cache_key)
    assert 7200 - tokens.EXPIRY_MARGIN - 5 <= ttl <= 7200 - tokens.EXPIRY_MARGIN


def test_cgi_bin_token_can_be_chosen(wechat_api, settings):
    settings.WECHAT_TOKEN_ENDPOINT = "token"
    call = wechat_api.get(API + "/cgi-bin/token", json={"access_token": "T", "expires_in": 7200})
    assert tokens.platform_token.get() == "T"
    assert "grant_type=client_credential" in call.calls[0].request.url


@pytest.mark.parametrize("errcode", [40001, 40014, 42001])
def test_a_refused_token_is_replaced_and_the_call_retried_once(wechat_api, errcode):
    first, forced = stable_answers(wechat_api, "OLD", "NEW")
    seen = []

    def call(token):
        seen.append(token)
        if token == "OLD":
            raise wechat.WeChatError(errcode, "invalid credential")
        return "done"

    assert tokens.with_platform_token(call) == "done"
    assert seen == ["OLD", "NEW"]
    # stable_token in normal mode would hand back the refused token.
    assert json.loads(forced.calls[0].request.body)["force_refresh"] is True
    assert cache.get(tokens.platform_token.cache_key) == "NEW"


def test_a_second_refusal_is_an_error_not_a_loop(wechat_api):
    stable_answers(wechat_api, "OLD", "NEW")
    seen = []

    def call(token):
        seen.append(token)
        raise wechat.WeChatError(40001, "invalid credential")

    with pytest.raises(wechat.WeChatError) as raised:
        tokens.with_platform_token(call)
    assert raised.value.errcode == 40001
    assert seen == ["OLD", "NEW"]


def test_other_errors_do_not_replace_the_token(wechat_api):
    (call,) = stable_answers(wechat_api, "TOKEN")

    def quota_reached(token):
        raise wechat.WeChatError(45009, "reach max api daily quota limit")

    with pytest.raises(wechat.WeChatError):
        tokens.with_platform_token(quota_reached)
    assert call.call_count == 1


def test_a_token_already_replaced_elsewhere_is_used_without_fetching(wechat_api):
    """Only the token that failed is replaced: another process may have done it."""
    (call,) = stable_answers(wechat_api, "OLD")
    seen = []

    def call_wechat(token):
        seen.append(token)
        if token == "OLD":
            cache.set(tokens.platform_token.cache_key, "NEWER", 600)
            raise wechat.WeChatError(40001, "invalid credential")
        return "done"

    assert tokens.with_platform_token(call_wechat) == "done"
    assert seen == ["OLD", "NEWER"]
    assert call.call_count == 1


def test_jsapi_ticket_is_cached_with_its_own_lifetime(wechat_api):
    stable_answers(wechat_api, "TOKEN")
    ticket = wechat_api.get(
        API + "/cgi-bin/ticket/getticket",
        json={"errcode": 0, "errmsg": "ok", "ticket": "TICKET", "expires_in": 7200},
    )
    assert tokens.jsapi_ticket.get() == "TICKET"
    assert tokens.jsapi_ticket.get() == "TICKET"
    assert ticket.call_count == 1
    assert "access_token=TOKEN" in ticket.calls[0].request.url


class FakeClock:
    """Time that moves only when the code under test sleeps."""

    def __init__(self, monkeypatch, on_sleep=None):
        self.offset = 0.0
        self.sleeps = 0
        self.on_sleep = on_sleep
        real_time, real_monotonic = time.time, time.monotonic
        monkeypatch.setattr(time, "time", lambda: real_time() + self.offset)
        monkeypatch.setattr(time, "monotonic", lambda: real_monotonic() + self.offset)
        monkeypatch.setattr(time, "sleep", self.sleep)

    def sleep(self, seconds):
        self.sleeps += 1
        self.offset += seconds
        if self.on_sleep:
            self.on_sleep(self)


def test_waiters_take_the_token_the_lock_holder_stores(wechat_api, monkeypatch):
    cache.add(tokens.platform_token.lock_key, "another process", 60)

    def holder_finishes(clock):
        if clock.sleeps == 3:
            cache.set(tokens.platform_token.cache_key, "FROM_THE_HOLDER", 600)

    FakeClock(monkeypatch, holder_finishes)
    assert tokens.platform_token.get() == "FROM_THE_HOLDER"
    assert len(wechat_api.calls) == 0


def test_a_waiter_takes_over_when_the_holder_died(wechat_api, monkeypatch, settings):
    (call,) = stable_answers(wechat_api, "AFTER_TAKEOVER")
    cache.add(
        tokens.platform_token.lock_key, "a process that died", settings.WECHAT_HTTP_TIMEOUT + 5
    )
    clock = FakeClock(monkeypatch)
    assert tokens.platform_token.get() == "AFTER_TAKEOVER"
    assert call.call_count == 1
    assert clock.offset >= settings.WECHAT_HTTP_TIMEOUT + 5


def test_waiting_is_bounded(wechat_api, monkeypatch):
    def lock_never_released(clock):
        cache.set(tokens.platform_token.lock_key, "stuck", 60)

    cache.add(tokens.platform_token.lock_key, "stuck", 60)
    FakeClock(monkeypatch, lock_never_released)
    with pytest.raises(wechat.WeChatError, match="gave up waiting for the platform-token"):
        tokens.platform_token.get()
    assert len(wechat_api.calls) == 0


def test_without_redis_the_token_is_still_fetched(wechat_api, unreachable_redis, caplog):
    caplog.set_level(logging.WARNING, logger="xgc.tokens")
    stable_answers(wechat_api, "TOKEN")
    assert tokens.platform_token.get() == "TOKEN"
    assert "Cache unavailable: fetching platform-token without the lock" in caplog.text


@pytest.mark.redis
def test_processes_and_threads_on_a_cold_cache_cause_one_fetch(redis_url):
    """3 processes x 10 threads ask at once while WeChat takes 500 ms to answer."""
    env = {key: os.environ[key] for key in ("PATH", "HOME") if key in os.environ} | {
        "XGC_DOTENV": "",
        "DEBUG": "1",
        "REDIS_URL": TEST_REDIS_URL,
        "REDIRECT_URL": "http://127.0.0.1:8000/wechat/authorize/",
    }
    command = [sys.executable, "manage.py", "bench_platform_token", "--json"]
    options = ["--processes", "3", "--threads", "10", "--windows", "2", "--latency-ms", "500"]
    result = subprocess.run(
        command + options, cwd=PROJECT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    windows = json.loads(result.stdout)
    assert [window["callers"] for window in windows] == [30, 30]
    assert [window["fetches"] for window in windows] == [1, 1]
    assert [window["tokens"] for window in windows] == [1, 1]
    assert [window["errors"] for window in windows] == [0, 0]
