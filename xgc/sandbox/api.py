"""How the sandbox answers API calls: WeChat's JSON, errors and injected faults."""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import wraps
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from .stats import record_call

# WeChat sends /sns/* JSON as text/plain without a charset (protocol notes
# 2.6); some cgi-bin answers carry a non-standard "encoding" parameter.
SNS_CONTENT_TYPE = "text/plain"
CGI_CONTENT_TYPE = "application/json; encoding=utf-8"
FAULTS_KEY = "sandbox:faults"


@dataclass
class Faults:
    """Latency and failures added to every sandbox API call.

    In the cache, read on every call: with REDIS_URL set, every sandbox process
    sees a change at once.
    """

    latency_ms: int = 0
    error_share: float = 0.0
    hang_share: float = 0.0
    hang_seconds: float = 30.0

    def __str__(self) -> str:
        return f"+{self.latency_ms} ms, {self.error_share:.0%} errors, {self.hang_share:.0%} hangs"

    @classmethod
    def current(cls) -> Faults:
        return cls(**cache.get(FAULTS_KEY, {}))

    def save(self) -> None:
        cache.set(FAULTS_KEY, asdict(self), timeout=None)


class SandboxError(Exception):
    """An error WeChat reports in-band: HTTP 200 with errcode and errmsg."""

    def __init__(self, errcode: int, errmsg: str):
        super().__init__(errcode, errmsg)
        self.errcode = errcode
        self.errmsg = errmsg


def json_answer(data: dict[str, Any], content_type: str) -> HttpResponse:
    return HttpResponse(json.dumps(data, ensure_ascii=False).encode(), content_type=content_type)


def wechat_api(content_type: str) -> Callable:
    """Make a view answer like a WeChat API endpoint, faults included.

    The view returns the JSON answer as a dict, or a whole HttpResponse.
    """

    def decorate(view: Callable[..., dict[str, Any] | HttpResponse]) -> Callable[..., HttpResponse]:
        @csrf_exempt
        @wraps(view)
        def endpoint(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            record_call(view.__name__, request)
            try:
                apply_faults()
                data = view(request, *args, **kwargs)
            except SandboxError as error:
                # errmsg carries a varying "rid" suffix, as WeChat's does.
                data = {
                    "errcode": error.errcode,
                    "errmsg": f"{error.errmsg} rid: {uuid.uuid4().hex[:24]}",
                }
            if isinstance(data, HttpResponse):
                # A file, as cgi-bin/media/get answers when it has no error.
                return data
            return json_answer(data, content_type)

        # Marks the API endpoints for stats.api_routes.
        endpoint.wechat_api = True
        return endpoint

    return decorate


def apply_faults() -> None:
    faults = Faults.current()
    if faults.latency_ms:
        time.sleep(faults.latency_ms / 1000)
    # Not a security use: picks which calls fail, as a flaky WeChat would.
    roll = random.random()  # noqa: S311
    if roll < faults.hang_share:
        time.sleep(faults.hang_seconds)
    elif roll < faults.hang_share + faults.error_share:
        raise SandboxError(-1, "system error")


def require(params: Any, name: str, missing_errcode: int) -> str:
    value = params.get(name, "")
    if not value:
        raise SandboxError(missing_errcode, f"{name} missing")
    return value


def check_app(params: Any, *, with_secret: bool = True) -> None:
    """Accept only xgc's own APP_ID and APP_SECRET, as WeChat would."""
    if require(params, "appid", 41002) != settings.APP_ID:
        raise SandboxError(40013, "invalid appid")
    if with_secret and require(params, "secret", 41004) != settings.APP_SECRET:
        raise SandboxError(40125, "invalid appsecret")
