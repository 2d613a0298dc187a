"""The platform access_token and jsapi_ticket, fetched once for every process.

Each fetch of cgi-bin/token retires the token every other process holds, and
both the token and the ticket have small daily quotas (protocol notes 4.3).
So they live in the shared cache (Redis in production), and a lock in the
same cache lets exactly one caller fetch while the others wait for its result.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings
from django.core.cache import cache

from . import wechat

logger = logging.getLogger(__name__)

T = TypeVar("T")

# A cached credential (these, and fans' OAuth tokens) expires this long before
# WeChat's expires_in, so that one read from the cache is still good to use.
EXPIRY_MARGIN = 300
# Waiters look at the cache this often while the lock holder fetches.
POLL_SECONDS = 0.05


class SharedCredential:
    """A credential cached for all processes, with one fetch per expiry window."""

    def __init__(self, name: str, fetch: Callable[[bool], wechat.Credential]):
        self.name = name
        # fetch(replacing) gets the credential; replacing is True when the
        # cached one was just refused.
        self.fetch = fetch
        self.cache_key = f"wechat:{name}"
        self.lock_key = f"wechat:{name}:lock"

    def get(self) -> str:
        return cache.get(self.cache_key) or self.refresh()

    def refresh(self, refused: str | None = None) -> str:
        """Return a credential other than ``refused``, fetching it at most once."""
        # The lock outlives any fetch (bounded by the HTTP timeout), so it can
        # only expire under a holder that died; a waiter then takes over.
        lock_seconds = settings.WECHAT_HTTP_TIMEOUT + 5
        deadline = time.monotonic() + 2 * lock_seconds
        owner = uuid.uuid4().hex
        while True:
            acquired = cache.add(self.lock_key, owner, lock_seconds)
            if acquired is None:
                # django-redis answers None when Redis is down (IGNORE_EXCEPTIONS):
                # there is no shared cache to coordinate through, so fetch.
                logger.warning("Cache unavailable: fetching %s without the lock", self.name)
                return self._fetch(refused is not None)
            if acquired:
                try:
                    current = cache.get(self.cache_key)
                    if current and current != refused:
                        return current
                    return self._fetch(refused is not None)
                finally:
                    if cache.get(self.lock_key) == owner:
                        cache.delete(self.lock_key)
            current = cache.get(self.cache_key)
            if current and current != refused:
                return current
            if time.monotonic() > deadline:
                raise wechat.WeChatError(None, f"gave up waiting for the {self.name}")
            time.sleep(POLL_SECONDS)

    def _fetch(self, replacing: bool) -> str:
        credential = self.fetch(replacing)
        timeout = credential.expires_in - EXPIRY_MARGIN
        if timeout > 0:
            cache.set(self.cache_key, credential.value, timeout)
        logger.info("Fetched the %s (expires in %s s)", self.name, credential.expires_in)
        return credential.value


def _fetch_platform_token(replacing: bool) -> wechat.Credential:
    if settings.WECHAT_TOKEN_ENDPOINT == "token":  # noqa: S105 (an endpoint name)
        return wechat.fetch_client_token()
    # In normal mode stable_token would hand back the token just refused.
    return wechat.fetch_stable_token(force_refresh=replacing)


platform_token = SharedCredential("platform-token", _fetch_platform_token)
jsapi_ticket = SharedCredential(
    "jsapi-ticket",
    lambda replacing: with_platform_token(wechat.fetch_jsapi_ticket),
)


def with_platform_token(call: Callable[[str], T]) -> T:
    """Run call(token); if WeChat refuses the token, replace it and retry once."""
    token = platform_token.get()
    try:
        return call(token)
    except wechat.WeChatError as error:
        if not error.token_rejected:
            raise
        logger.warning("WeChat refused the platform token (%s); replacing it once", error.errcode)
    return call(platform_token.refresh(refused=token))
