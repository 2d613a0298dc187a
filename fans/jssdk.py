"""JS-SDK: the signed configuration wx.config needs on a fan's page."""

from __future__ import annotations

import logging
import time
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.http.request import validate_host
from django.urls import NoReverseMatch, reverse
from django.utils.crypto import get_random_string
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from xgc import tokens, wechat

logger = logging.getLogger(__name__)

# WeChat serves its JS-SDK only from its own CDN (protocol notes section 8).
JSSDK_SCRIPT = "https://res.wx.qq.com/open/js/jweixin-1.6.0.js"


def jssdk_script_url() -> str:
    """Return the JS-SDK script for a page: the sandbox's stand-in, or WeChat's.

    The stand-in (xgc/sandbox/jssdk.py) answers wx.config and the photo APIs
    the way WeChat does, in any browser; it is used only where the sandbox is
    mounted, so real fans always get WeChat's script.
    """
    if settings.WECHAT_SANDBOX:
        try:
            return reverse("sandbox-jweixin")
        except NoReverseMatch:
            pass
    return JSSDK_SCRIPT


@never_cache
@require_GET
def config(request: HttpRequest) -> JsonResponse:
    """Sign ``?url=`` (the page's location.href) for wx.config.

    Only pages on this site's hosts are signed; WeChat checks the signature
    against the page's URL without its #fragment.
    """
    parts = urlsplit(request.GET.get("url", ""))
    if parts.scheme not in ("http", "https") or not validate_host(
        parts.hostname or "", settings.ALLOWED_HOSTS
    ):
        return JsonResponse({"error": "url must be a page of this site"}, status=400)
    url = urlunsplit(parts._replace(fragment=""))
    noncestr, timestamp = get_random_string(16), int(time.time())
    try:
        ticket = tokens.jsapi_ticket.get()
    except wechat.WeChatError as error:
        logger.warning("No jsapi_ticket for the JS-SDK: %s", error)
        return JsonResponse({"error": "WeChat is not answering"}, status=502)
    signature = wechat.jsapi_signature(
        ticket=ticket, noncestr=noncestr, timestamp=timestamp, url=url
    )
    return JsonResponse(
        {
            "appId": settings.APP_ID,
            "timestamp": timestamp,
            "nonceStr": noncestr,
            "signature": signature,
        }
    )
