"""Real outages: Redis stops and comes back, PostgreSQL drops a connection,
and many first visits of one fan arrive at once."""

import shutil
import subprocess
import threading

import psycopg
import pytest
import redis

from django.conf import settings as django_settings
from django.core.cache import cache
from django.db import connection
from django.test import Client

import xgc.settings as configured
from fans.models import FansProfile
from fans.services import oauth_token_cache_key
from xgc import tokens
from xgc.sandbox.process import free_port, wait_until
from xgc.settings import redis_cache

from .conftest import API, answer, service_missing, start_login, token_answer, userinfo_answer
from .test_views import sign_up

REDIS_START_SECONDS = 10


class PrivateRedis:
    """A redis-server of this test's own, on a free loopback port."""

    def __init__(self, directory):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.directory = directory
        self.process = None

    def start(self):
        command = [shutil.which("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self.directory)]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, socket_connect_timeout=1)

        def answers() -> bool:
            try:
                return client.ping()
            except redis.ConnectionError:
                return False

        wait_until(answers, what="redis-server", seconds=REDIS_START_SECONDS, process=self.process)

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)

    def keys(self):
        return redis.Redis(port=self.port).keys("*")


@pytest.fixture
def private_redis(tmp_path, settings):
    if not shutil.which("redis-server"):
        service_missing("redis-server", "not installed (apt-get install redis-server)")
    server = PrivateRedis(tmp_path)
    server.start()
    settings.CACHES = {"default": redis_cache(server.url)}
    yield server
    server.stop()


def sign_in_returning_fan(client, wechat_api, openid):
    FansProfile.objects.get_or_create(openid=openid, defaults={"userinfo": {"openid": openid}})
    state = start_login(client)["state"]
    answer(wechat_api, "/sns/oauth2/access_token", token_answer(openid), code=f"code-{openid}")
    return client.get("/wechat/authorize/", {"code": f"code-{openid}", "state": state})


@pytest.mark.django_db
def test_fans_sign_in_while_redis_is_down_and_the_cache_returns_with_it(
    client, wechat_api, private_redis
):
    wechat_api.post(API + "/cgi-bin/stable_token", json={"access_token": "PT", "expires_in": 7200})
    assert "fanid" in sign_in_returning_fan(client, wechat_api, "oBEFORE").cookies
    assert cache.get(oauth_token_cache_key("oBEFORE")) is not None

    private_redis.stop()
    during = sign_in_returning_fan(Client(), wechat_api, "oDURING")
    assert during.status_code == 302 and "fanid" in during.cookies
    # No lock can be taken: the token is fetched anyway, not waited for.
    assert tokens.platform_token.get() == "PT"

    private_redis.start()
    assert "fanid" in sign_in_returning_fan(Client(), wechat_api, "oAFTER").cookies
    assert cache.get(oauth_token_cache_key("oAFTER")).openid == "oAFTER"
    assert tokens.platform_token.get() == "PT"
    assert any(b"platform-token" in key for key in private_redis.keys())


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_database_connection_killed_by_the_server_is_replaced(client, wechat_api):
    """With the production connection settings the next request reconnects."""
    connection.close()
    connection.settings_dict["CONN_MAX_AGE"] = configured.DATABASES["default"]["CONN_MAX_AGE"]
    connection.settings_dict["CONN_HEALTH_CHECKS"] = True
    assert configured.DATABASES["default"]["CONN_HEALTH_CHECKS"] is True
    try:
        sign_up(client, wechat_api, "oFAN1")
        assert client.get("/").status_code == 200
        backend = connection.connection.info.backend_pid
        db = django_settings.DATABASES["default"]
        with psycopg.connect(
            host=db["HOST"],
            port=db["PORT"],
            user=db["USER"],
            password=db["PASSWORD"] or None,
            dbname=connection.settings_dict["NAME"],
            autocommit=True,
        ) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", [backend])
        # What Django's handler does as each request starts (the test client
        # skips it): connections due a health check get one.
        connection.close_if_unusable_or_obsolete()
        response = client.get("/")
        assert response.status_code == 200
        assert connection.connection.info.backend_pid != backend
    finally:
        connection.close()
        connection.settings_dict["CONN_MAX_AGE"] = 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_first_visits_of_one_fan_leave_one_row(wechat_api):
    visits = 50
    browsers = [Client() for _ in range(visits)]
    states = [start_login(browser, scope="snsapi_userinfo")["state"] for browser in browsers]
    for number in range(visits):
        answer(
            wechat_api,
            "/sns/oauth2/access_token",
            token_answer("oSAME", "snsapi_userinfo"),
            code=f"code{number}",
        )
    answer(wechat_api, "/sns/userinfo", userinfo_answer("oSAME", nickname="同一个人"))
    barrier = threading.Barrier(visits, timeout=30)
    statuses = []

    def visit(number):
        barrier.wait()
        try:
            response = browsers[number].get(
                "/wechat/authorize/", {"code": f"code{number}", "state": states[number]}
            )
            statuses.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=visit, args=(number,)) for number in range(visits)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert statuses == [302] * visits
    assert FansProfile.objects.filter(openid="oSAME").count() == 1
    assert FansProfile.objects.get(openid="oSAME").nickname == "同一个人"
