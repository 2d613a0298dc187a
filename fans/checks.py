"""System checks for the settings xgc reads from ``.env``.

They run with ``runserver``, ``migrate`` and ``check``; a WSGI server does not
run them, so deployments run ``python manage.py check --deploy`` first.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core import checks
from django.urls import Resolver404, resolve

ENV_HINT = "Set {key} in .env (see .env.example for every key)."
# Official-account AppIDs are "wx" and 16 hex digits.
APP_ID_PATTERN = re.compile(r"wx[0-9a-f]{16}")
# The console's rule for the server token: 3-32 letters or digits.
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9]{3,32}")
EXAMPLE_APP_ID = "wx0123456789abcdef"
EXAMPLE_APP_SECRET = "0123456789abcdef0123456789abcdef"  # noqa: S105 (published sample)
DEFAULT_PORTS = {"http": 80, "https": 443}


def _is_http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


@checks.register()
def check_wechat_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Report WeChat settings that would break the login flow."""
    errors: list[checks.CheckMessage] = [
        checks.Error(
            f"{key} is empty: {consequence}.",
            hint=ENV_HINT.format(key=key) + " It is on mp.weixin.qq.com → 设置与开发 → 基本配置.",
            id=check_id,
        )
        for key, consequence, check_id in (
            ("APP_ID", "WeChat cannot tell which official account fans sign in to", "fans.E001"),
            ("APP_SECRET", "authorization codes cannot be exchanged", "fans.E002"),
        )
        if not getattr(settings, key)
    ]
    if settings.APP_ID and not APP_ID_PATTERN.fullmatch(settings.APP_ID):
        errors.append(
            checks.Warning(
                f"APP_ID {settings.APP_ID!r} does not look like an official-account AppID (wx + 16 hex digits).",
                hint=ENV_HINT.format(key="APP_ID"),
                id="fans.W001",
            )
        )
    errors += _check_redirect_url()
    errors += _check_run_address()
    for key in ("WECHAT_OPEN_BASE_URL", "WECHAT_API_BASE_URL"):
        if not _is_http_url(getattr(settings, key)):
            errors.append(
                checks.Error(
                    f"{key} {getattr(settings, key)!r} is not an absolute http(s) URL.",
                    hint=ENV_HINT.format(key=key) + " Leave it unset to talk to WeChat itself.",
                    id="fans.E005",
                )
            )
    if settings.TOKEN and not TOKEN_PATTERN.fullmatch(settings.TOKEN):
        errors.append(
            checks.Error(
                "TOKEN must be 3 to 32 letters or digits, as WeChat's console requires.",
                hint=ENV_HINT.format(key="TOKEN"),
                id="fans.E006",
            )
        )
    if settings.WECHAT_TOKEN_ENDPOINT not in ("stable_token", "token"):
        errors.append(
            checks.Error(
                f"WECHAT_TOKEN_ENDPOINT {settings.WECHAT_TOKEN_ENDPOINT!r} is neither stable_token nor token.",
                hint=ENV_HINT.format(key="WECHAT_TOKEN_ENDPOINT"),
                id="fans.E008",
            )
        )
    if not re.fullmatch(r"([A-Za-z0-9_-]+/)+", settings.ADMIN_URL):
        errors.append(
            checks.Error(
                f"ADMIN_URL {settings.ADMIN_URL!r} is not a path like backstage/.",
                hint=ENV_HINT.format(key="ADMIN_URL") + " No leading slash, one trailing slash.",
                id="fans.E009",
            )
        )
    for key, problem in settings.XGC_INVALID_SETTINGS.items():
        errors.append(
            checks.Error(
                f"{key}: {problem}; the default is used instead.",
                hint=ENV_HINT.format(key=key),
                id="fans.E007",
            )
        )
    return errors


def _check_redirect_url() -> list[checks.CheckMessage]:
    url = settings.REDIRECT_URL
    if not _is_http_url(url):
        return [
            checks.Error(
                f"REDIRECT_URL {url!r} is not an absolute http(s) URL.",
                hint=ENV_HINT.format(key="REDIRECT_URL")
                + " Use the public callback, e.g. https://xgc.example.com/wechat/authorize/.",
                id="fans.E003",
            )
        ]
    try:
        view_name = resolve(urlsplit(url).path).view_name
    except Resolver404:
        view_name = None
    if view_name != "wechat-authorize":
        return [
            checks.Error(
                f"REDIRECT_URL's path {urlsplit(url).path!r} is not xgc's callback.",
                hint=ENV_HINT.format(key="REDIRECT_URL") + " Its path must be /wechat/authorize/.",
                id="fans.E004",
            )
        ]
    return []


def _check_run_address() -> list[checks.CheckMessage]:
    """Warn when the sandbox would send fans back where `make run` does not serve.

    Outside the sandbox REDIRECT_URL is a tunnel's or a proxy's public host,
    which is rightly not the local address.
    """
    served = getattr(settings, "XGC_RUN_ADDR", "")
    callback = urlsplit(settings.REDIRECT_URL)
    if not (served and settings.WECHAT_SANDBOX and _is_http_url(settings.REDIRECT_URL)):
        return []
    host, _, port = served.rpartition(":")
    # runserver's bare port means 127.0.0.1; a wildcard answers on any host.
    host = host.strip("[]").lower() or "127.0.0.1"
    try:
        callback_port = callback.port or DEFAULT_PORTS[callback.scheme]
    except ValueError:
        callback_port = None
    if str(callback_port) == port and host in (callback.hostname, "0", "0.0.0.0", "::"):  # noqa: S104
        return []
    return [
        checks.Warning(
            f"REDIRECT_URL is {settings.REDIRECT_URL} but make run serves {served}: the sandbox "
            f"would send signing-in fans to {callback.netloc}, not to this server.",
            hint="Leave REDIRECT_URL empty in .env to follow ADDR, or make its host and port "
            "those of ADDR. Ignore this only when a tunnel or proxy forwards it here.",
            id="fans.W002",
        )
    ]


@checks.register(checks.Tags.security, deploy=True)
def check_deployment(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Report development values that must not reach production."""
    warnings: list[checks.CheckMessage] = []
    if settings.SECRET_KEY == settings.DEVELOPMENT_SECRET_KEY:
        warnings.append(
            checks.Warning(
                "SECRET_KEY is the built-in development key: anyone could forge a fan's sign-in cookie.",
                hint=ENV_HINT.format(key="SECRET_KEY"),
                id="fans.W101",
            )
        )
    if urlsplit(settings.REDIRECT_URL).scheme != "https":
        warnings.append(
            checks.Warning(
                "REDIRECT_URL is not HTTPS: WeChat's docs ask for HTTPS, and fans' cookies would travel in clear.",
                hint=ENV_HINT.format(key="REDIRECT_URL"),
                id="fans.W102",
            )
        )
    if settings.TOKEN == settings.DEVELOPMENT_TOKEN:
        warnings.append(
            checks.Warning(
                "TOKEN is the sandbox's published development token: anyone could sign pushes to /wechat/.",
                hint=ENV_HINT.format(key="TOKEN") + " Use the token set in WeChat's 服务器配置.",
                id="fans.W104",
            )
        )
    if settings.APP_ID == EXAMPLE_APP_ID or settings.APP_SECRET == EXAMPLE_APP_SECRET:
        warnings.append(
            checks.Warning(
                "APP_ID or APP_SECRET is still the sample value from .env.example.",
                hint="Copy the real values from mp.weixin.qq.com → 设置与开发 → 基本配置 into .env.",
                id="fans.W103",
            )
        )
    return warnings
