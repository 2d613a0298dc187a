"""The sandbox's cgi-bin API: platform token, custom menu and jsapi_ticket.

Rules from shared/wechat-protocol.md sections 4 and 5.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from xgc.wechat import menu_problems

from .api import CGI_CONTENT_TYPE, SandboxError, check_app, json_body, require, wechat_api
from .models import TOKEN_LIFETIME, JsapiTicket, Menu, PlatformToken

# stable_token hands out a new token this long before the old one expires.
STABLE_RENEWAL = timedelta(minutes=5)


def token_answer(token: PlatformToken) -> dict[str, Any]:
    remaining = token.usable_until() - timezone.now()
    return {"access_token": token.access_token, "expires_in": int(remaining.total_seconds())}


def new_token(kind: str) -> PlatformToken:
    """Issue a token; the previous one of its kind works for the overlap only."""
    now = timezone.now()
    PlatformToken.objects.filter(kind=kind, superseded_at=None).update(superseded_at=now)
    return PlatformToken.objects.create(kind=kind, expires_at=now + TOKEN_LIFETIME)


@wechat_api(CGI_CONTENT_TYPE, method="GET")
def token(request: HttpRequest) -> dict[str, Any]:
    """cgi-bin/token: every call makes a new token and retires the last."""
    if request.GET.get("grant_type") != "client_credential":
        raise SandboxError(40002, "invalid grant_type")
    check_app(request.GET)
    return token_answer(new_token(PlatformToken.Kind.TOKEN))


@wechat_api(CGI_CONTENT_TYPE, method="POST")
def stable_token(request: HttpRequest) -> dict[str, Any]:
    """cgi-bin/stable_token: the same token until near its end, unless forced."""
    body = json_body(request)
    if not isinstance(body, dict) or body.get("grant_type") != "client_credential":
        raise SandboxError(40002, "invalid grant_type")
    check_app(body)
    with transaction.atomic():
        current = (
            PlatformToken.objects.select_for_update()
            .filter(kind=PlatformToken.Kind.STABLE, superseded_at=None)
            .first()
        )
        fresh = current and current.expires_at - timezone.now() > STABLE_RENEWAL
        if body.get("force_refresh") is True or not fresh:
            current = new_token(PlatformToken.Kind.STABLE)
    return token_answer(current)


def valid_platform_token(request: HttpRequest) -> PlatformToken:
    value = require(request.GET, "access_token", 41001)
    found = PlatformToken.objects.filter(access_token=value).first()
    if found is None:
        raise SandboxError(40014, "invalid access_token")
    if found.usable_until() <= timezone.now():
        if found.superseded_at is not None:
            raise SandboxError(40001, "invalid credential, access_token is invalid or not latest")
        raise SandboxError(42001, "access_token expired")
    return found


@wechat_api(CGI_CONTENT_TYPE, method="GET")
def getticket(request: HttpRequest) -> dict[str, Any]:
    valid_platform_token(request)
    if request.GET.get("type") != "jsapi":
        raise SandboxError(40097, "invalid args")
    ticket = JsapiTicket.objects.create(expires_at=timezone.now() + TOKEN_LIFETIME)
    expires_in = int(TOKEN_LIFETIME.total_seconds())
    return {"errcode": 0, "errmsg": "ok", "ticket": ticket.ticket, "expires_in": expires_in}


@wechat_api(CGI_CONTENT_TYPE, method="POST")
def menu_create(request: HttpRequest) -> dict[str, Any]:
    valid_platform_token(request)
    if b"\\u" in request.body:
        # Escaped Chinese (json.dumps' default ensure_ascii) is refused.
        raise SandboxError(40033, "invalid charset. please check your request, \\uxxxx")
    try:
        buttons = json_body(request)["button"]
    except (KeyError, TypeError):
        raise SandboxError(47001, "data format error") from None
    problems = menu_problems(buttons)
    if problems:
        errcode, reason = problems[0]
        raise SandboxError(errcode, f"invalid menu: {reason}")
    Menu.objects.all().delete()
    Menu.objects.create(button=buttons)
    return {"errcode": 0, "errmsg": "ok"}


@wechat_api(CGI_CONTENT_TYPE, method="GET")
def menu_get(request: HttpRequest) -> dict[str, Any]:
    valid_platform_token(request)
    menu = Menu.objects.first()
    if menu is None:
        raise SandboxError(46003, "menu no exist")
    return {"menu": {"button": [shown_button(button) for button in menu.button]}}


def shown_button(button: dict[str, Any]) -> dict[str, Any]:
    """Return a stored button as menu/get shows it, with a sub_button list.

    WeChat adds "sub_button": [] to every button without sub-buttons,
    sub-buttons included (wechatpy tests/fixtures/menu_get.json; the old
    doc's menu/get example).
    """
    subs = button.get("sub_button") or []
    return {**button, "sub_button": [shown_button(sub) for sub in subs]}


@wechat_api(CGI_CONTENT_TYPE, method="GET")
def menu_delete(request: HttpRequest) -> dict[str, Any]:
    valid_platform_token(request)
    Menu.objects.all().delete()
    return {"errcode": 0, "errmsg": "ok"}
