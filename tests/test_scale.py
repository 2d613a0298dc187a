"""xgc as deployed: nginx in front of two gunicorn instances, PostgreSQL and Redis.

The sandbox stands in for WeChat in a gunicorn of its own. These tests run in
the PostgreSQL pass of `make test` and need nginx (Debian's package) and
Redis; they skip without them, and fail instead when CI=true.
"""

from __future__ import annotations

import re
import subprocess
import sys
from urllib.parse import quote

import pytest
import redis
import requests

from django.db import connection

from activities.models import Activity, Application, Notification
from activities.services import application_decide, application_submit
from fans.models import FansProfile
from xgc.sandbox.credentials import GRANT_KEY, REFRESH_KEY
from xgc.sandbox.models import SandboxFan, SandboxMessage
from xgc.sandbox.process import APPLICATION_RESULT_TEMPLATE_ID, SANDBOX_APP, free_port, wait_until

from .bench_fans import Fan, run_flows
from .bench_profile import tracing_refused
from .bench_servers import (
    SANDBOX_CACHE_PREFIX,
    SECRET_KEY,
    find_nginx,
    nginx_upstream_counts,
    start_balancer,
    start_sandbox,
    start_worker,
    start_xgc,
)
from .conftest import PROJECT, service_missing

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

NEW_FANS = 200
RETURNING_FANS = 100
CONCURRENCY = 16
JSSDK_PAGES = 100


def servers_database_url() -> str:
    """Return a URL of the test database, for servers in other processes."""
    db = connection.settings_dict
    password = f":{quote(db['PASSWORD'], safe='')}" if db["PASSWORD"] else ""
    return f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


@pytest.fixture
def deployment(transactional_db, redis_url, tmp_path):
    """Start the sandbox, two xgc instances and nginx; yield them by name."""
    if find_nginx() is None:
        service_missing("nginx", "not in PATH or /usr/sbin (apt-get install nginx)")
    servers = {}
    port = free_port()
    public_url = f"http://127.0.0.1:{port}"
    try:
        servers["sandbox"] = start_sandbox(
            database_url=servers_database_url(),
            redis_url=redis_url,
            app_netloc=f"127.0.0.1:{port}",
            log_dir=tmp_path,
        )
        for name in ("xgc-1", "xgc-2"):
            servers[name] = start_xgc(
                name,
                port=free_port(),
                public_url=public_url,
                sandbox_url=servers["sandbox"].url,
                database_url=servers_database_url(),
                redis_url=redis_url,
                log_dir=tmp_path,
            )
        upstreams = [servers[name].url.removeprefix("http://") for name in ("xgc-1", "xgc-2")]
        servers["nginx"] = start_balancer(port, upstreams, tmp_path)
        servers["worker"] = start_worker(
            tmp_path,
            public_url=public_url,
            sandbox_url=servers["sandbox"].url,
            database_url=servers_database_url(),
            redis_url=redis_url,
        )
        yield servers
    finally:
        for server in reversed(servers.values()):
            server.stop()


def jssdk_config(app_url: str, page: str) -> int:
    return requests.get(f"{app_url}/wechat/jssdk/config?url={page}", timeout=30).status_code


def test_two_instances_behind_nginx_sign_in_a_few_hundred_fans(deployment, redis_url):
    """Every flow succeeds, each fan is stored once, and both instances serve."""
    nginx, sandbox = deployment["nginx"], deployment["sandbox"]
    seeded = set(SandboxFan.objects.values_list("openid", flat=True))
    requests.post(f"{sandbox.url}/sandbox/stats", timeout=10).raise_for_status()

    fans = [Fan(nginx.url, sandbox.url) for _ in range(NEW_FANS)]
    new, _ = run_flows([fan.sign_up for fan in fans], CONCURRENCY)
    returning, _ = run_flows([fan.come_back for fan in fans[:RETURNING_FANS]], CONCURRENCY)

    assert [flow.error for flow in new + returning if flow.error] == []
    wechat_users = set(SandboxFan.objects.values_list("openid", flat=True)) - seeded
    assert len(wechat_users) == NEW_FANS
    assert FansProfile.objects.count() == NEW_FANS
    assert set(FansProfile.objects.values_list("openid", flat=True)) == wechat_users
    calls = requests.get(f"{sandbox.url}/sandbox/stats", timeout=10).json()["calls"]
    assert {route: count for route, count in calls.items() if count} == {
        "sns/oauth2/access_token": 2 * NEW_FANS + RETURNING_FANS,
        "sns/userinfo": NEW_FANS,
    }
    # Fans' pages ask both instances for a JS-SDK signature at once: one
    # platform token and one ticket serve them all.
    page = quote(f"{nginx.url}/", safe="")
    configs, _ = run_flows(
        [lambda: jssdk_config(nginx.url, page) for _ in range(JSSDK_PAGES)], CONCURRENCY
    )
    assert configs == [200] * JSSDK_PAGES
    calls = requests.get(f"{sandbox.url}/sandbox/stats", timeout=10).json()["calls"]
    assert calls["cgi-bin/stable_token"] == 1
    assert calls["cgi-bin/ticket/getticket"] == 1

    upstreams = nginx_upstream_counts(nginx)
    for name in ("xgc-1", "xgc-2"):
        assert upstreams.get(deployment[name].url.removeprefix("http://"), 0) > 0, upstreams
    logs = {name: deployment[name].log.read_text(encoding="utf-8") for name in deployment}
    outcomes = logs["xgc-1"] + logs["xgc-2"]
    assert outcomes.count("sign-in outcome=consent_needed") == NEW_FANS
    assert outcomes.count("sign-in outcome=signed_in") == NEW_FANS + RETURNING_FANS
    secrets = {SECRET_KEY, SANDBOX_APP["APP_SECRET"], *wechat_users}
    tokens = tokens_wechat_issued(redis_url)
    # an access and a refresh token for every code exchanged
    assert len(tokens) == 2 * (2 * NEW_FANS + RETURNING_FANS)
    secrets |= tokens
    for name in ("xgc-1", "xgc-2", "nginx"):
        assert [secret for secret in secrets if secret in logs[name]] == [], name


def test_an_organisers_decision_reaches_the_fan_and_comes_back_delivered(deployment, settings):
    """Decision → worker → WeChat's template/send → TEMPLATESENDJOBFINISH → nginx → delivered."""
    settings.WECHAT_TEMPLATE_APPLICATION_RESULT = APPLICATION_RESULT_TEMPLATE_ID
    wechat_user = SandboxFan.create_new()  # following the account, as new test fans do
    fan = FansProfile.create_fan({"openid": wechat_user.openid, "nickname": wechat_user.nickname})
    activity = Activity.objects.create(title="周末读书会", published=True)
    application = application_submit(
        activity_id=activity.pk, fan=fan, name="张三", phone="13812345678", note=""
    )
    application_decide(application_id=application.pk, decision=Application.Status.APPROVED)
    notification = application.notifications.get()

    def delivered() -> bool:
        notification.refresh_from_db()
        return notification.state == Notification.State.DELIVERED

    wait_until(delivered, what="the delivery event", seconds=60)
    message = SandboxMessage.objects.get(msgid=notification.msgid)
    assert message.fan == wechat_user
    assert message.data["phrase2"]["value"] == "已通过"
    # The message's link signs the fan in at the public address and opens the application.
    assert message.url.startswith(deployment["nginx"].url + "/wechat/login/?next=")
    assert f"sent (msgid {notification.msgid})" in deployment["worker"].log.read_text()


def tokens_wechat_issued(redis_url: str) -> set[str]:
    """Return the OAuth access and refresh tokens in the sandbox's cache, from its keys."""
    client = redis.Redis.from_url(redis_url)
    tokens = set()
    for key_format in (GRANT_KEY, REFRESH_KEY):
        # django-redis stores a key as prefix:version:key
        pattern = f"{SANDBOX_CACHE_PREFIX}:*:{key_format.format('*')}"
        tokens |= {key.decode().rsplit(":", 1)[1] for key in client.scan_iter(pattern)}
    return tokens


def test_benchmark_smoke_run(redis_url):
    """A small benchmark runs end to end: no errors, the exact WeChat calls, a profile."""
    if reason := tracing_refused():
        service_missing("py-spy", reason)
    command = [
        "--smoke",
        "--profile",
        "--database-url",
        servers_database_url(),
        "--redis-url",
        redis_url,
    ]
    result = subprocess.run(
        [sys.executable, "-m", "tests.bench", *command],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "errors: none" in result.stdout
    assert re.search(r"minimal calls .* pass", result.stdout)
    assert re.search(r"minimal queries .* pass", result.stdout)
    # the arithmetic under the targets: each database stack's own CPU per flow
    assert re.search(
        r"takes [\d.]+ ms of CPU per flow on SQLite and [\d.]+ on PostgreSQL", result.stdout
    )
    # py-spy sampled every app (too few samples in so short a run to say more;
    # tests/test_bench_profile.py checks what they say)
    samples = re.search(r"^samples((?: +\d+)+)$", result.stdout, re.MULTILINE)
    assert samples is not None, result.stdout
    assert len(samples.group(1).split()) == 4
