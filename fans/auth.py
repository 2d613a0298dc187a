"""Fan sign-in: the signed ``fanid`` cookie, ``request.fan`` and ``fan_required``.

Fans are not Django users; admins are. A fan is whoever the ``fanid`` cookie
names, and the cookie is signed with SECRET_KEY so that it cannot be forged.
"""

from __future__ import annotations

import re
from functools import wraps
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.core import signing
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.functional import SimpleLazyObject

from .models import FansProfile

FAN_COOKIE = "fanid"
FAN_COOKIE_SALT = "fans.fanid"
RAW_USERINFO_FIELDS = ("userinfo", "privilege")
# WeChat's browser on phones and desktops (and WeCom's) says MicroMessenger;
# WeChat DevTools says wechatdevtools (protocol notes, section 9).
WECHAT_USER_AGENT = re.compile(r"micromessenger|wechatdevtools", re.IGNORECASE)


def sign_in(request: HttpRequest, response: HttpResponse, fan: FansProfile) -> None:
    response.set_signed_cookie(
        FAN_COOKIE,
        str(fan.pk),
        salt=FAN_COOKIE_SALT,
        max_age=settings.FAN_COOKIE_MAX_AGE,
        secure=request.is_secure(),
        httponly=True,
        # Lax, not Strict: fans arrive by top-level navigation from WeChat.
        samesite="Lax",
    )


def fan_from_cookie(request: HttpRequest) -> FansProfile | None:
    try:
        fan_id = request.get_signed_cookie(
            FAN_COOKIE, salt=FAN_COOKIE_SALT, max_age=settings.FAN_COOKIE_MAX_AGE
        )
    except (KeyError, signing.BadSignature):
        return None
    if not fan_id.isdigit():
        return None
    # Every fan page loads the fan; none shows WeChat's raw answer (JSON to decode).
    # get() leaves out the model's ORDER BY, which first() would compile for nothing.
    try:
        return FansProfile.objects.defer(*RAW_USERINFO_FIELDS).get(pk=fan_id)
    except FansProfile.DoesNotExist:
        return None


class FanMiddleware:
    """Set ``request.fan``: the signed-in fan, or a falsy value if none."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.fan = SimpleLazyObject(lambda: fan_from_cookie(request))
        return self.get_response(request)


def is_wechat_browser(request: HttpRequest) -> bool:
    """Tell whether the request comes from WeChat's browser or its DevTools."""
    return bool(WECHAT_USER_AGENT.search(request.headers.get("User-Agent", "")))


def public_url(path: str) -> str:
    """Return path as an absolute URL on REDIRECT_URL's scheme and host.

    That is the address fans and WeChat know, whichever host a request came
    in on behind a proxy or a tunnel.
    """
    callback = urlsplit(settings.REDIRECT_URL)
    return f"{callback.scheme}://{callback.netloc}{path}"


def login_url(next_url: str, scope: str | None = None) -> str:
    """Return the /wechat/login/ link that signs a fan in and goes to next_url."""
    query = {"next": next_url} | ({"scope": scope} if scope else {})
    return f"{reverse('wechat-login')}?{urlencode(query)}"


def fan_required(view):
    """Send a visitor who is not signed in through WeChat authorization first."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.fan:
            return HttpResponseRedirect(login_url(request.get_full_path()))
        return view(request, *args, **kwargs)

    return wrapper
