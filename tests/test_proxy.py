"""X-Forwarded-* headers count only when settings say a proxy sets them."""

import pytest

from django.test import RequestFactory

from fans.auth import FAN_COOKIE

from .conftest import answer, start_login, token_answer, userinfo_answer

pytestmark = pytest.mark.django_db

TUNNEL_HOST = "xgc.tunnel.example"
FORGED = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example"}
FROM_TUNNEL = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": TUNNEL_HOST}


@pytest.fixture
def behind_proxy(settings):
    """What TRUST_X_FORWARDED=1 turns on, with the tunnel's host allowed."""
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.USE_X_FORWARDED_HOST = True
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, TUNNEL_HOST]


def consent(client, wechat_api, headers: dict[str, str]):
    """Walk a new fan through consent over plain HTTP, with the given headers."""
    state = start_login(client, scope="snsapi_userinfo")["state"]
    answer(wechat_api, "/sns/oauth2/access_token", token_answer("oFAN1", "snsapi_userinfo"))
    answer(wechat_api, "/sns/userinfo", userinfo_answer("oFAN1"))
    return client.get("/wechat/authorize/", {"code": "CODE1", "state": state}, headers=headers)


def test_forwarded_headers_are_ignored_by_default(client, wechat_api):
    """Without a proxy in front, any client could send them."""
    response = consent(client, wechat_api, FORGED)
    assert response.status_code == 302
    assert not response.cookies[FAN_COOKIE]["secure"]


def test_forwarded_host_and_scheme_are_ignored_by_default():
    request = RequestFactory().get("/", headers=FORGED)
    assert not request.is_secure()
    assert request.get_host() == "testserver"
    assert request.build_absolute_uri("/x") == "http://testserver/x"


def test_behind_the_proxy_the_fan_cookie_is_secure(client, wechat_api, behind_proxy):
    response = consent(client, wechat_api, FROM_TUNNEL)
    assert response.status_code == 302
    assert response.cookies[FAN_COOKIE]["secure"]


def test_behind_the_proxy_urls_use_the_forwarded_host_and_scheme(behind_proxy):
    request = RequestFactory().get("/", headers=FROM_TUNNEL)
    assert request.is_secure()
    assert request.get_host() == TUNNEL_HOST
    assert request.build_absolute_uri("/x") == f"https://{TUNNEL_HOST}/x"


def test_behind_the_proxy_a_forwarded_host_must_still_be_allowed(client, behind_proxy):
    response = client.get("/wechat/login/", headers=FORGED)
    assert response.status_code == 400
