"""The sandbox's web authorization: WeChat's authorize page and /sns/* API.

It plays both the fan's phone (who is signed in to WeChat on it) and WeChat's
servers, and follows the rules in shared/wechat-protocol.md sections 1-3.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from django.conf import settings
from django.core import signing
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.html import escape
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from xgc.wechat import SCOPE_USERINFO, SCOPES

from .api import SNS_CONTENT_TYPE, SandboxError, check_app, require, wechat_api
from .credentials import (
    Grant,
    WeChatUser,
    find_grant,
    issue_code,
    redeem_code,
    refresh_grant,
)
from .models import TOKEN_LIFETIME, SandboxFan

AUTHORIZE_PARAMS = ["appid", "redirect_uri", "response_type", "scope", "state"]
STATE_PATTERN = re.compile(r"[A-Za-z0-9]{1,128}")
# The phone's WeChat user, remembered per browser like WeChat's own login:
# the signed cookie carries who they are, so authorizing needs no query.
PHONE_COOKIE = "sandbox_phone"
PHONE_COOKIE_SALT = "xgc.sandbox.phone"
# The phone chooser lists a phone screen's worth of fans, the seeded test
# fans first.
CHOOSER_FANS = 8


def authorize_problem(request: HttpRequest) -> tuple[str, str] | None:
    """Return WeChat's (error code, message) for a bad authorize URL, or None."""
    params = request.GET
    if not params.get("appid"):
        return "10012", "appid 不能为空"
    if params["appid"] != settings.APP_ID:
        return "10016", "appid 无效：不是本公众号的 AppID"
    if not params.get("redirect_uri"):
        return "10011", "redirect_uri 不能为空"
    if not params.get("scope"):
        return "10010", "scope 不能为空"
    if params["scope"] not in SCOPES:
        return "10005", "此公众号并没有这些 scope 的权限"
    if not params.get("state"):
        return "10013", "state 不能为空"
    # WeChat matches the link against its documented form; order counts.
    keys = [key for key, _ in parse_qsl(request.META.get("QUERY_STRING", ""))]
    if keys[: len(AUTHORIZE_PARAMS)] != AUTHORIZE_PARAMS or params["response_type"] != "code":
        return "—", "链接参数不正确：须依次为 appid、redirect_uri、response_type=code、scope、state"
    if not STATE_PATTERN.fullmatch(params["state"]):
        return "—", "state 只能是字母和数字，最多 128 个字符"
    if urlsplit(params["redirect_uri"]).netloc != settings.WECHAT_SANDBOX_OAUTH_DOMAIN:
        return "10003", "redirect_uri 域名与后台配置不一致"
    return None


def phone_holder(request: HttpRequest) -> WeChatUser | None:
    try:
        holder = signing.loads(request.COOKIES.get(PHONE_COOKIE, ""), salt=PHONE_COOKIE_SALT)
        return WeChatUser(**holder)
    except (signing.BadSignature, TypeError):
        # TypeError: a cookie of an older sandbox, which held the openid only
        return None


@require_http_methods(["GET", "POST"])
def authorize(request: HttpRequest) -> HttpResponse:
    """Stand in for open.weixin.qq.com/connect/oauth2/authorize on the phone."""
    problem = authorize_problem(request)
    if problem:
        context = {"code": problem[0], "message": problem[1]}
        return render(request, "sandbox/error.html", context)
    user = phone_holder(request)
    if user is None:
        chooser = reverse("sandbox-phone") + "?" + urlencode({"next": request.get_full_path()})
        return HttpResponseRedirect(chooser)
    scope = request.GET["scope"]
    if request.method == "POST":
        if request.POST.get("decision") != "allow":
            # What the old docs describe for a refusal: back with state only.
            return redirect_back(request, {})
        return redirect_back(request, {"code": issue_code(user, scope)})
    if scope == SCOPE_USERINFO:
        return render(
            request, "sandbox/consent.html", {"fan": user, "switch_url": switch_url(request)}
        )
    return redirect_back(request, {"code": issue_code(user, scope)})


def redirect_back(request: HttpRequest, params: dict[str, str]) -> HttpResponse:
    redirect_uri = request.GET["redirect_uri"]
    query = urlencode(params | {"state": request.GET["state"]})
    return HttpResponseRedirect(f"{redirect_uri}{'&' if '?' in redirect_uri else '?'}{query}")


def switch_url(request: HttpRequest) -> str:
    return reverse("sandbox-phone") + "?" + urlencode({"next": request.get_full_path()})


@require_http_methods(["GET", "POST"])
def phone(request: HttpRequest) -> HttpResponse:
    """Ask which test fan holds the phone, and remember the answer."""
    next_url = request.GET.get("next", "")
    if not (next_url.startswith("/") and url_has_allowed_host_and_scheme(next_url, set())):
        next_url = reverse("sandbox-index")
    if request.method == "POST":
        chosen = request.POST.get("openid", "")
        fan = (
            SandboxFan.create_new()
            if chosen == "new"
            else SandboxFan.objects.filter(openid=chosen).first()
        )
        if fan is not None:
            response = HttpResponseRedirect(next_url)
            user = WeChatUser(fan.openid, fan.unionid, fan.nickname)
            response.set_cookie(
                PHONE_COOKIE,
                signing.dumps(asdict(user), salt=PHONE_COOKIE_SALT),
                max_age=365 * 24 * 3600,
                httponly=True,
                samesite="Lax",
            )
            return response
    # Benchmarks add thousands of new fans, and a page listing them all would
    # cost each new one more than the rest of its sign-in.
    fans = SandboxFan.objects.all()[:CHOOSER_FANS]
    context = {"fans": fans, "holder": phone_holder(request)}
    return render(request, "sandbox/phone.html", context)


def grant_answer(grant: Grant) -> dict[str, Any]:
    answer = {
        "access_token": grant.access_token,
        "expires_in": int(TOKEN_LIFETIME.total_seconds()),
        "refresh_token": grant.refresh_token,
        "openid": grant.user.openid,
        "scope": grant.scope,
    }
    if grant.scope == SCOPE_USERINFO and grant.user.unionid:
        answer["unionid"] = grant.user.unionid
    return answer


# Every /sns/* API is a GET (protocol notes section 2); that WeChat answers a
# POST there with 43001, as it does for cgi-bin's GET APIs, is UNCONFIRMED.
@wechat_api(SNS_CONTENT_TYPE, method="GET")
def access_token(request: HttpRequest) -> dict[str, Any]:
    """Exchange a code, which works once and for five minutes."""
    check_app(request.GET)
    if request.GET.get("grant_type") != "authorization_code":
        raise SandboxError(40002, "invalid grant_type")
    return grant_answer(redeem_code(require(request.GET, "code", 41008)))


@wechat_api(SNS_CONTENT_TYPE, method="GET")
def refresh_token(request: HttpRequest) -> dict[str, Any]:
    check_app(request.GET, with_secret=False)
    if request.GET.get("grant_type") != "refresh_token":
        raise SandboxError(40002, "invalid grant_type")
    grant = refresh_grant(require(request.GET, "refresh_token", 41003))
    if grant is None:
        raise SandboxError(40030, "invalid refresh_token")
    return grant_answer(grant)


def valid_grant(request: HttpRequest) -> Grant:
    """Return the grant of a live access_token issued to the openid asked about."""
    token = require(request.GET, "access_token", 41001)
    openid = require(request.GET, "openid", 41009)
    grant = find_grant(token)
    if grant is None:
        raise SandboxError(40001, "invalid credential, access_token is invalid or not latest")
    if grant.expires_at <= time.time():
        raise SandboxError(42001, "access_token expired")
    if grant.user.openid != openid:
        raise SandboxError(40003, "invalid openid")
    return grant


@wechat_api(SNS_CONTENT_TYPE, method="GET")
def auth(request: HttpRequest) -> dict[str, Any]:
    valid_grant(request)
    return {"errcode": 0, "errmsg": "ok"}


@wechat_api(SNS_CONTENT_TYPE, method="GET")
def userinfo(request: HttpRequest) -> dict[str, Any]:
    grant = valid_grant(request)
    if grant.scope != SCOPE_USERINFO:
        raise SandboxError(48001, "api unauthorized")
    user = grant.user
    info = {
        "openid": user.openid,
        "nickname": user.nickname,
        # Blank since 2021-10, as WeChat sends them.
        "sex": 0,
        "province": "",
        "city": "",
        "country": "",
        "headimgurl": request.build_absolute_uri(reverse("sandbox-avatar", args=[user.openid])),
        "privilege": [],
    }
    if user.unionid:
        info["unionid"] = user.unionid
    return info


def avatar(request: HttpRequest, openid: str) -> HttpResponse:
    """Draw a test fan's avatar, so that no image comes from outside."""
    fan = SandboxFan.objects.filter(openid=openid).first()
    letter, colour = (fan.nickname[:1], fan.colour) if fan else ("?", "#888888")
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 132 132">'
        f'<rect width="132" height="132" fill="{escape(colour)}"/>'
        '<text x="66" y="88" font-size="64" text-anchor="middle" fill="#fff">'
        f"{escape(letter)}</text></svg>"
    )
    response = HttpResponse(svg, content_type="image/svg+xml")
    response["Cache-Control"] = "max-age=3600"
    return response
