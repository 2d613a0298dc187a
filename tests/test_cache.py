"""OAuth tokens are cached per fan; a Redis outage does not stop sign-in."""

import logging

import pytest

from django.core.cache import cache

from fans.models import FansProfile
from fans.services import oauth_token_cache_key
from xgc.tokens import EXPIRY_MARGIN

from .conftest import answer, start_login, token_answer, userinfo_answer

pytestmark = pytest.mark.django_db


def sign_in_returning_fan(client, wechat_api, openid):
    FansProfile.create_fan(userinfo_answer(openid))
    state = start_login(client)["state"]
    answer(wechat_api, "/sns/oauth2/access_token", token_answer(openid, expires_in=7200))
    return client.get("/wechat/authorize/", {"code": "C", "state": state})


@pytest.mark.redis
def test_tokens_are_cached_in_redis_per_openid_until_shortly_before_expiry(
    client, wechat_api, redis_url
):
    sign_in_returning_fan(client, wechat_api, "oFAN1")
    token = cache.get(oauth_token_cache_key("oFAN1"))
    ttl = cache.ttl(oauth_token_cache_key("oFAN1"))
    assert token.openid == "oFAN1"
    assert token.access_token == "ACCESS_TOKEN_OF_FAN"
    assert 7200 - EXPIRY_MARGIN - 5 <= ttl <= 7200 - EXPIRY_MARGIN
    assert cache.get(oauth_token_cache_key("oFAN2")) is None


def test_fans_still_sign_in_when_redis_is_unreachable(
    client, wechat_api, unreachable_redis, caplog
):
    caplog.set_level(logging.ERROR, logger="django_redis")
    response = sign_in_returning_fan(client, wechat_api, "oFAN1")
    assert response.status_code == 302
    assert "fanid" in response.cookies
    assert cache.get(oauth_token_cache_key("oFAN1")) is None
    assert "Exception ignored" in caplog.text
    assert str(unreachable_redis) in caplog.text
