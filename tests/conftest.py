"""Shared fixtures: a mocked WeChat, flow helpers, and the real services.

Tests that need PostgreSQL or Redis skip with the reason when the service is
not answering, and fail instead when CI=true.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import redis
import responses
from responses import matchers

from django.conf import settings
from django.core.cache import cache
from django.db import connection

from xgc.settings import redis_cache

FIXTURES = Path(__file__).parent / "fixtures"
PROJECT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI") == "true"
API = "https://api.weixin.qq.com"
TEST_REDIS_URL = os.environ.get("XGC_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def run_manage(*args, env_file: str, **env: str) -> subprocess.CompletedProcess:
    """Run manage.py in a fresh process that reads settings from env_file."""
    base = {key: os.environ[key] for key in ("PATH", "HOME") if key in os.environ}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT,
        env=base | {"XGC_DOTENV": env_file, "DJANGO_SETTINGS_MODULE": "xgc.settings"} | env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def service_missing(what: str, reason: str) -> None:
    """Skip the current test for a missing service, or fail it in CI."""
    if IN_CI:
        pytest.fail(f"{what} must be available when CI=true: {reason}")
    pytest.skip(f"{what} not available ({reason})")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    on_postgres = connection.vendor == "postgresql"
    if on_postgres:
        problem = _postgres_problem()
        if problem and IN_CI:
            pytest.exit(f"PostgreSQL must be available when CI=true: {problem}", returncode=1)
        if problem:
            skip = pytest.mark.skip(reason=f"PostgreSQL not available ({problem})")
            for item in items:
                item.add_marker(skip)
            return
    skip_postgres_only = pytest.mark.skip(
        reason="needs PostgreSQL: runs in the PostgreSQL pass of `make test` "
        "(or set XGC_TEST_DATABASE_URL=postgres://...)"
    )
    for item in items:
        if "postgres" in item.keywords and not on_postgres:
            item.add_marker(skip_postgres_only)


def _postgres_problem() -> str | None:
    import psycopg

    db = settings.DATABASES["default"]
    try:
        psycopg.connect(
            host=db["HOST"] or None,
            port=db["PORT"] or None,
            user=db["USER"] or None,
            password=db["PASSWORD"] or None,
            dbname="postgres",
            connect_timeout=3,
        ).close()
    except psycopg.Error as exc:
        return f"{db['HOST']}:{db['PORT']}: {str(exc).strip()}"
    return None


@pytest.fixture(autouse=True)
def _empty_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def redis_url(settings) -> str:
    """Point the default cache at the real Redis used for tests."""
    try:
        redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        service_missing("Redis", f"{TEST_REDIS_URL}: {exc}")
    settings.CACHES = {"default": redis_cache(TEST_REDIS_URL)}
    cache.clear()
    yield TEST_REDIS_URL
    cache.clear()


@pytest.fixture
def unreachable_redis(settings) -> int:
    """Point the cache at a loopback port that nothing listens on; return it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.CACHES = {"default": redis_cache(f"redis://127.0.0.1:{port}/0")}
    return port


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


@pytest.fixture
def wechat_api():
    """A mocked api.weixin.qq.com; every registered answer must be used."""
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


def answer(
    mock: responses.RequestsMock, path: str, body: dict[str, Any], **params: str
) -> responses.BaseResponse:
    """Register WeChat's answer for a GET, sent as WeChat does: text/plain, no charset."""
    return mock.get(
        API + path,
        body=json.dumps(body, ensure_ascii=False).encode("utf-8"),
        content_type="text/plain",
        match=[matchers.query_param_matcher(params, strict_match=False)] if params else [],
    )


def token_answer(openid: str, scope: str = "snsapi_base", **extra: Any) -> dict[str, Any]:
    return fixture("sns_oauth2_access_token") | {"openid": openid, "scope": scope} | extra


def userinfo_answer(openid: str, **extra: Any) -> dict[str, Any]:
    return fixture("sns_userinfo") | {"openid": openid} | extra


def start_login(client, **query: str) -> dict[str, str]:
    """Open /wechat/login/ and return the authorize URL's parameters."""
    response = client.get("/wechat/login/", query)
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    return {key: values[0] for key, values in parse_qs(location.query).items()}


def redirect_query(response) -> dict[str, str]:
    return {
        key: values[0] for key, values in parse_qs(urlsplit(response["Location"]).query).items()
    }


# Fans and activities, for the tests of what a signed-in fan does.


@pytest.fixture
def make_fan(db):
    """Return make(nickname=..., **fields): a fan who has consented, with a unique openid."""
    made = []

    def make(nickname: str = "测试粉丝🙂", **fields: Any):
        from fans.models import FansProfile

        made.append(None)
        openid = fields.pop("openid", f"oFAN{len(made):022d}")
        info = {"openid": openid, "nickname": nickname}
        return FansProfile.objects.create(openid=openid, nickname=nickname, userinfo=info, **fields)

    return make


def sign_in(client, fan) -> None:
    """Give the test client the signed fanid cookie that the callback sets for fan."""
    from django.core.signing import get_cookie_signer

    from fans.auth import FAN_COOKIE, FAN_COOKIE_SALT

    signer = get_cookie_signer(salt=FAN_COOKIE + FAN_COOKIE_SALT)
    client.cookies[FAN_COOKIE] = signer.sign(str(fan.pk))


@pytest.fixture
def make_activity(db):
    """Return make(**fields): a published activity open for applications."""

    def make(**fields: Any):
        from activities.models import Activity

        defaults = {"title": "周末读书会", "description": "一起读书。\n带一本你喜欢的书。"}
        return Activity.objects.create(**(defaults | {"published": True} | fields))

    return make


@pytest.fixture
def media_root(settings, tmp_path) -> Path:
    """Keep photos on disk in a temporary MEDIA_ROOT, whatever the environment says."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.STORAGES = settings.STORAGES | {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    }
    settings.PHOTO_X_ACCEL_REDIRECT = ""
    return settings.MEDIA_ROOT


def stored_files(root: Path) -> list[str]:
    """Return the names of the files under root, relative to it, sorted."""
    return sorted(path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file())


@pytest.fixture
def fresh_env(tmp_path) -> str:
    """Return the path of a .env copied from .env.example, as `make run` creates it."""
    path = tmp_path / ".env"
    path.write_text((PROJECT / ".env.example").read_text(encoding="utf-8"), encoding="utf-8")
    return str(path)
