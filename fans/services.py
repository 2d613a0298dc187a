"""What the callback does once WeChat has vouched for a fan."""

from __future__ import annotations

from django.core.cache import cache

from xgc import wechat
from xgc.tokens import EXPIRY_MARGIN

from .models import FansProfile


def oauth_token_cache_key(openid: str) -> str:
    return f"wechat:oauth-token:{openid}"


def cache_oauth_token(token: wechat.OAuthToken) -> None:
    """Keep the fan's OAuth token under their own openid until it expires."""
    timeout = token.expires_in - EXPIRY_MARGIN
    if timeout > 0:
        cache.set(oauth_token_cache_key(token.openid), token, timeout)


def fan_for_token(token: wechat.OAuthToken) -> FansProfile | None:
    """Return the fan the token belongs to, or None if they never consented.

    With a snsapi_userinfo token the profile is fetched and stored (one API
    call); with a snsapi_base token only a known fan is found.
    """
    cache_oauth_token(token)
    if token.allows_userinfo:
        return FansProfile.create_fan(wechat.get_user_info(token))
    # A row without userinfo (e.g. made by a follow event) has not consented.
    # Signing in needs the pk alone: the profile's JSON is left undecoded.
    try:
        fan = FansProfile.objects.exclude(userinfo={}).only("pk").get(openid=token.openid)
    except FansProfile.DoesNotExist:
        return None
    fan.record_login()
    return fan
