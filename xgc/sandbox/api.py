"""How the sandbox answers API calls: WeChat's JSON, errors and injected faults."""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import wraps
from typing import Any, Literal

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
# WeChat answers a wrong HTTP method in-band (protocol notes section 3).
WRONG_METHOD = {"GET": (43001, "require GET method"), "POST": (43002, "require POST method")}
# What WeChat answers for a path it does not serve is UNCONFIRMED. 48001 is what
# it gives for an API the account may not call, e.g. a mini program's
# cgi-bin/message/wxopen/template/send with an official account's token
# (binarywang/WxJava issue #1038); 40066 "invalid url" is the other candidate.
UNKNOWN_API = (48001, "api unauthorized")


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


def error_answer(errcode: int, errmsg: str) -> dict[str, Any]:
    # errmsg carries a varying "rid" suffix, as WeChat's does.
    return {"errcode": errcode, "errmsg": f"{errmsg} rid: {uuid.uuid4().hex[:24]}"}


def wechat_api(content_type: str, *, method: Literal["GET", "POST"]) -> Callable:
    """Make a view answer like a WeChat API endpoint, faults included.

    The view returns the JSON answer as a dict, or a whole HttpResponse. Any
    other HTTP method than ``method`` gets WeChat's 43001 or 43002, never
    Django's 405.
    """

    def decorate(view: Callable[..., dict[str, Any] | HttpResponse]) -> Callable[..., HttpResponse]:
        @csrf_exempt
        @wraps(view)
        def endpoint(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            record_call(view.__name__, request)
            try:
                # Faults first: a slow or failing WeChat fails a wrong call too.
                apply_faults()
                if request.method != method:
                    raise SandboxError(*WRONG_METHOD[method])
                data = view(request, *args, **kwargs)
            except SandboxError as error:
                data = error_answer(error.errcode, error.errmsg)
            if isinstance(data, HttpResponse):
                # A file, as cgi-bin/media/get answers when it has no error.
                return data
            return json_answer(data, content_type)

        # Marks the API endpoints for stats.api_routes.
        endpoint.wechat_api = True
        return endpoint

    return decorate


@csrf_exempt
def unknown_api(request: HttpRequest, prefix: str) -> HttpResponse:
    """Answer a path under cgi-bin/ or sns/ that the sandbox does not serve."""
    content_type = SNS_CONTENT_TYPE if prefix == "sns" else CGI_CONTENT_TYPE
    return json_answer(error_answer(*UNKNOWN_API), content_type)


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


def json_body(request: HttpRequest) -> Any:
    """Return the request's JSON body; WeChat answers 47001 to anything else."""
    try:
        return json.loads(request.body.decode("utf-8"))
    except ValueError:
        raise SandboxError(47001, "data format error") from None


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
