"""The fan-facing pages: WeChat login, its callback, and the fan's home."""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

import segno

from django.conf import settings
from django.core import signing
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponsePermanentRedirect,
    HttpResponseRedirect,
)
from django.shortcuts import render
from django.templatetags.static import static
from django.urls import reverse
from django.utils.crypto import constant_time_compare, get_random_string
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import SafeString, mark_safe
from django.views import View
from django.views.decorators.cache import cache_control, never_cache
from django.views.decorators.http import require_GET, require_safe
from django.views.decorators.vary import vary_on_headers

from xgc import wechat

from .auth import fan_required, is_wechat_browser, login_url, public_url, sign_in
from .jssdk import jssdk_script_url
from .models import FansProfile
from .services import fan_for_token

logger = logging.getLogger(__name__)

# The state of one authorization, bound to the browser that started it.
FLOW_COOKIE = "wechat_flow"
FLOW_COOKIE_SALT = "fans.flow"
FLOW_COOKIE_PATH = "/wechat/"
# Codes expire after five minutes; the rest is time to read the consent page.
FLOW_MAX_AGE = 600
# Marks the redirect_uri of an automatic restart, so that a second failure
# shows a page instead of looping. It survives lost cookies: WeChat keeps the
# redirect_uri's query.
RESTARTED_PARAM = "restarted"
# A new fan's created_at and last_login_at are two clock readings of one
# INSERT; any later sign-in is at least a trip through WeChat away.
FIRST_VISIT_MARGIN = timedelta(seconds=1)


def safe_next(value: str | None) -> str:
    """Return value if it is a page on this site, else "/"."""
    if (
        value
        and value.startswith("/")
        and url_has_allowed_host_and_scheme(value, allowed_hosts=set())
        # Landing on the login views again would go round WeChat forever.
        and not value.startswith((reverse("wechat-login"), reverse("wechat-authorize")))
    ):
        return value
    return "/"


def start_authorization(
    request: HttpRequest, next_url: str, scope: str, *, restarted: bool = False
) -> HttpResponse:
    """Redirect to WeChat's authorize page with a fresh state bound to this browser."""
    # get_random_string uses [A-Za-z0-9], which is what WeChat allows.
    state = get_random_string(32)
    redirect_uri = settings.REDIRECT_URL
    if restarted:
        parts = urlsplit(redirect_uri)
        query = "&".join(filter(None, [parts.query, f"{RESTARTED_PARAM}=1"]))
        redirect_uri = urlunsplit(parts._replace(query=query))
    response = HttpResponseRedirect(
        wechat.authorize_url(redirect_uri=redirect_uri, scope=scope, state=state)
    )
    response.set_cookie(
        FLOW_COOKIE,
        signing.dumps({"state": state, "next": next_url, "scope": scope}, salt=FLOW_COOKIE_SALT),
        max_age=FLOW_MAX_AGE,
        path=FLOW_COOKIE_PATH,
        secure=request.is_secure(),
        httponly=True,
        samesite="Lax",
    )
    return response


def message(
    request: HttpRequest,
    *,
    title: str,
    text: str,
    status: int = 200,
    retry_url: str | None = None,
    icon: str = "warn",
) -> HttpResponse:
    """Render the one page fans see when something stops the flow."""
    context = {"title": title, "text": text, "retry_url": retry_url, "icon": icon}
    return render(request, "fans/message.html", context, status=status)


def qr_svg(link: str) -> SafeString:
    """Return link's QR code as inline SVG markup, sized by CSS.

    Raise segno.DataOverflowError when link is too long for a QR code.
    """
    # Level M leaves room for a glaring or smudged screen.
    code = segno.make(link, error="m", micro=False)
    # segno writes only its own markup (paths, no styles): the CSP allows it,
    # and no part of link appears in it as text.
    return mark_safe(  # noqa: S308
        code.svg_inline(
            omitsize=True,
            light="#fff",
            svgclass="open-in-wechat__code",
            lineclass=None,
            title="本页链接的二维码",
        )
    )


def open_in_wechat(request: HttpRequest) -> HttpResponse:
    """Show a browser outside WeChat this very link as a QR code and as text."""
    link = public_url(request.get_full_path())
    try:
        qr = qr_svg(link)
    except segno.DataOverflowError:
        # Only a broken or hostile link is this long: offer the plain one.
        link = public_url(reverse("wechat-login"))
        qr = qr_svg(link)
    return render(request, "fans/open_in_wechat.html", {"link": link, "qr": qr})


@never_cache
@vary_on_headers("User-Agent")
@require_GET
def login(request: HttpRequest) -> HttpResponse:
    """Start web authorization; this is the link for the account's menu."""
    scope = request.GET.get("scope") or wechat.SCOPE_BASE
    if scope not in wechat.SCOPES:
        return message(
            request,
            title="链接无效",
            text="这个登录链接的参数不正确，请从公众号菜单重新进入。",
            status=400,
        )
    if (
        settings.WECHAT_BROWSER_PAGE
        and not settings.WECHAT_SANDBOX
        and not is_wechat_browser(request)
    ):
        # WeChat's authorize page would only say to use WeChat: show how.
        return open_in_wechat(request)
    return start_authorization(request, safe_next(request.GET.get("next")), scope)


@method_decorator(never_cache, name="dispatch")
class WebAuthorizationView(View):
    """WeChat's callback: check state, exchange the code, sign the fan in."""

    http_method_names = ["get"]
    # Outcomes that need an operator's look; the others are a fan's normal path.
    FAILED_OUTCOMES = frozenset({"state_refused", "failed"})

    def dispatch(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        started = time.monotonic()
        self.outcome, self.scope, self.openid, self.error = "", "-", "", None
        response = super().dispatch(request, *args, **kwargs)
        if self.outcome:
            self.log_outcome(round((time.monotonic() - started) * 1000))
        return response

    def log_outcome(self, duration_ms: int) -> None:
        """Log one key=value line per callback; only the openid's tail, never a token."""
        logger.log(
            logging.WARNING if self.outcome in self.FAILED_OUTCOMES else logging.INFO,
            "sign-in outcome=%s scope=%s fan=%s errcode=%s ms=%d%s",
            self.outcome,
            self.scope,
            f"…{self.openid[-6:]}" if self.openid else "-",
            "-" if self.error is None or self.error.errcode is None else self.error.errcode,
            duration_ms,
            f' error="{self.error}"' if self.error else "",
        )

    def get(self, request: HttpRequest) -> HttpResponse:
        flow = self.bound_flow(request)
        next_url = safe_next(flow.get("next"))
        restarted = request.GET.get(RESTARTED_PARAM) == "1"
        state = request.GET.get("state", "")
        if not flow or not constant_time_compare(state, flow.get("state", "")):
            return self.finish(self.unbound_state(request, next_url, restarted))
        code = request.GET.get("code")
        self.scope = flow.get("scope", wechat.SCOPE_BASE)
        if not code:
            self.outcome = "cancelled"
            return self.finish(
                message(
                    request,
                    title="你已取消授权",
                    text="授权后即可使用全部功能。",
                    retry_url=login_url(next_url, wechat.SCOPE_USERINFO),
                    icon="info",
                )
            )
        return self.finish(self.authorized(request, code, self.scope, next_url, restarted))

    def unbound_state(self, request: HttpRequest, next_url: str, restarted: bool) -> HttpResponse:
        if not restarted:
            # WeChat's browser sometimes drops cookies: one silent retry.
            self.outcome = "state_restarted"
            return start_authorization(request, next_url, wechat.SCOPE_BASE, restarted=True)
        # The state does not match this browser's: nobody is signed in.
        self.outcome = "state_refused"
        return message(
            request,
            title="登录未完成",
            text="无法确认这次授权来自你的微信，请重新进入。",
            status=400,
            retry_url=login_url(next_url),
        )

    def authorized(
        self, request: HttpRequest, code: str, scope: str, next_url: str, restarted: bool
    ) -> HttpResponse:
        try:
            token = wechat.fetch_access_token(code, requested_scope=scope)
            self.openid = token.openid
            if token.is_snapshot_user:
                self.outcome = "snapshot"
                return message(
                    request,
                    title="请使用完整服务",
                    text="当前是快照页，无法登录。请点击屏幕下方的「使用完整服务」后继续。",
                    icon="info",
                )
            fan = fan_for_token(token)
        except wechat.WeChatError as error:
            self.error = error
            if error.code_rejected and not restarted:
                # A refresh or a back button replays a used code.
                self.outcome = "code_restarted"
                return start_authorization(request, next_url, wechat.SCOPE_BASE, restarted=True)
            self.outcome = "failed"
            return message(
                request,
                title="登录失败",
                text="授权已失效，请重新进入。"
                if error.code_rejected
                else "暂时无法完成登录，请稍后重试。",
                status=400 if error.code_rejected else 502,
                retry_url=login_url(next_url),
            )
        if fan is None:
            self.outcome = "consent_needed"
            register_url = login_url(next_url, wechat.SCOPE_USERINFO)
            return render(request, "register.html", {"register_url": register_url})
        response = HttpResponseRedirect(next_url)
        sign_in(request, response, fan)
        self.outcome = "signed_in"
        return response

    @staticmethod
    def bound_flow(request: HttpRequest) -> dict:
        try:
            flow = signing.loads(
                request.COOKIES.get(FLOW_COOKIE, ""), salt=FLOW_COOKIE_SALT, max_age=FLOW_MAX_AGE
            )
        except signing.BadSignature:
            return {}
        return flow if isinstance(flow, dict) else {}

    @staticmethod
    def finish(response: HttpResponse) -> HttpResponse:
        """Forget the state, each good for one callback, unless a restart set a new one."""
        if FLOW_COOKIE not in response.cookies:
            response.delete_cookie(FLOW_COOKIE, path=FLOW_COOKIE_PATH, samesite="Lax")
        return response


web_authorization = WebAuthorizationView.as_view()


def is_first_visit(fan: FansProfile) -> bool:
    """Tell whether the fan's latest sign-in was their first one."""
    return (
        fan.last_login_at is not None
        and abs(fan.last_login_at - fan.created_at) < FIRST_VISIT_MARGIN
    )


@require_GET
@fan_required
def home(request: HttpRequest) -> HttpResponse:
    """Greet the signed-in fan."""
    context = {
        "fan": request.fan,
        "first_visit": is_first_visit(request.fan),
        "jssdk_script": jssdk_script_url(),
    }
    return render(request, "fans/home.html", context)


# What browsers ask for on pages without an icon link: the admin's.
ICON = "xgc/icon.svg"


@require_safe
@cache_control(max_age=24 * 60 * 60, public=True)
def favicon(request: HttpRequest) -> HttpResponse:
    """Send a browser asking for /favicon.ico to xgc's icon."""
    return HttpResponsePermanentRedirect(static(ICON))
