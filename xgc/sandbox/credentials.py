"""The sandbox's short-lived web-authorization credentials, kept in the cache.

Codes and OAuth tokens live for minutes or hours and are looked up by their
value only, so they live in the cache with WeChat's lifetimes as timeouts:
nothing piles up in the database, and a sign-in costs the sandbox no query.
With REDIS_URL set every sandbox process shares them; with the local-memory
cache the sandbox must run in one process (runserver does).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from django.core.cache import cache

from .api import SandboxError
from .models import CODE_LIFETIME, REFRESH_TOKEN_LIFETIME, TOKEN_LIFETIME, random_value

CODE_KEY = "sandbox:code:{}"
USED_CODE_KEY = "sandbox:code-used:{}"
# A grant is found by its access_token, and by its refresh_token.
GRANT_KEY = "sandbox:grant:{}"
REFRESH_KEY = "sandbox:grant-by-refresh:{}"
# WeChat's codes are 32 characters; its tokens are longer.
CODE_LENGTH = 32


@dataclass(frozen=True)
class WeChatUser:
    """The WeChat user holding the phone, as WeChat's servers know them."""

    openid: str
    unionid: str
    nickname: str

    def __str__(self) -> str:
        return self.nickname


@dataclass(frozen=True)
class Grant:
    """A web-authorization access_token with its refresh_token."""

    user: WeChatUser
    scope: str
    access_token: str
    refresh_token: str
    # time.time() from which the access_token answers 42001 (expired)
    expires_at: float


def issue_code(user: WeChatUser, scope: str) -> str:
    code = random_value(CODE_LENGTH)
    lifetime = CODE_LIFETIME.total_seconds()
    cache.set(CODE_KEY.format(code), {"user": asdict(user), "scope": scope}, lifetime)
    return code


def redeem_code(code: str) -> Grant:
    """Exchange a code, which works once and for five minutes, for a new grant."""
    issued = cache.get(CODE_KEY.format(code))
    if issued is None:
        raise SandboxError(40029, "invalid code")
    # cache.add succeeds for one caller only, even for two exchanges at once.
    if not cache.add(USED_CODE_KEY.format(code), True, CODE_LIFETIME.total_seconds()):
        raise SandboxError(40163, "code been used")
    return save_grant(WeChatUser(**issued["user"]), issued["scope"], random_value())


def save_grant(user: WeChatUser, scope: str, refresh_token: str) -> Grant:
    """Store a new access_token for refresh_token; both find the grant."""
    lifetime = TOKEN_LIFETIME.total_seconds()
    grant = Grant(user, scope, random_value(), refresh_token, time.time() + lifetime)
    # Both keys live as long as the refresh_token, in one round trip; an
    # access_token past its own expiry then answers 42001, as WeChat's does.
    keys = [GRANT_KEY.format(grant.access_token), REFRESH_KEY.format(refresh_token)]
    cache.set_many(dict.fromkeys(keys, asdict(grant)), REFRESH_TOKEN_LIFETIME.total_seconds())
    return grant


def find_grant(access_token: str) -> Grant | None:
    return _loaded(cache.get(GRANT_KEY.format(access_token)))


def refresh_grant(refresh_token: str) -> Grant | None:
    """Replace a grant's access_token; the old one stops working at once."""
    grant = _loaded(cache.get(REFRESH_KEY.format(refresh_token)))
    if grant is None:
        return None
    cache.delete(GRANT_KEY.format(grant.access_token))
    return save_grant(grant.user, grant.scope, refresh_token)


def _loaded(stored: dict[str, Any] | None) -> Grant | None:
    if stored is None:
        return None
    return Grant(**(stored | {"user": WeChatUser(**stored["user"])}))
