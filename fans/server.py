"""WeChat's server endpoint (消息与事件推送) and the domain verification file."""

from __future__ import annotations

import hashlib
import logging
import time
from xml.etree.ElementTree import Element

from defusedxml import ElementTree

from django.conf import settings
from django.core.cache import cache
from django.dispatch import Signal
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseForbidden,
    QueryDict,
)
from django.utils.crypto import constant_time_compare
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_safe

from .models import FansProfile

logger = logging.getLogger(__name__)

# The signature covers the timestamp, so a captured request (proxy logs keep
# query strings) can only be replayed within this many seconds either way.
SIGNATURE_MAX_AGE = 300
# Event pushes are well under 1 KiB; nothing WeChat sends comes near this.
MAX_BODY_SIZE = 64 * 1024
SUBSCRIPTION_EVENTS = {"subscribe": True, "unsubscribe": False}
OPENID_MAX_LENGTH = FansProfile._meta.get_field("openid").max_length

# Sent with ``message`` (the parsed XML Element) for every pushed message, so
# that apps above fans/ act on the events they own without fans/ knowing them.
wechat_message_received = Signal()


def signature(token: str, timestamp: str, nonce: str) -> str:
    """Return WeChat's signature of a server request: sha1 of the sorted strings."""
    joined = "".join(sorted([token, timestamp, nonce]))
    # SHA-1 is what WeChat's protocol fixes.
    return hashlib.sha1(joined.encode()).hexdigest()  # noqa: S324


def is_signed(query: QueryDict) -> bool:
    """Return whether the query string carries a fresh signature made with TOKEN."""
    if not settings.TOKEN:
        logger.warning("TOKEN is not set: refusing WeChat server requests")
        return False
    sent, timestamp, nonce = (query.get(key, "") for key in ("signature", "timestamp", "nonce"))
    if not (sent and timestamp and nonce):
        return False
    try:
        skew = abs(time.time() - int(timestamp))
    except ValueError:
        return False
    if skew > SIGNATURE_MAX_AGE:
        logger.warning("WeChat server request refused: timestamp is %d s off", skew)
        return False
    if not constant_time_compare(sent, signature(settings.TOKEN, timestamp, nonce)):
        logger.warning("WeChat server request refused: signature does not match TOKEN")
        return False
    return True


def is_first_use(query: QueryDict) -> bool:
    """Return whether this signature is new, remembering it for the time window."""
    key = "wechat:server-signature:{}:{}:{}".format(
        *(query.get(name, "") for name in ("signature", "timestamp", "nonce"))
    )
    # Anything older is refused by its timestamp anyway. cache.add answers None
    # when Redis is down: then requests are let through rather than all refused.
    return cache.add(key, True, 2 * SIGNATURE_MAX_AGE) is not False


def record_subscription(message: Element) -> None:
    """Store the follow state a subscribe or unsubscribe event reports."""
    if message.findtext("MsgType") != "event":
        return
    subscribed = SUBSCRIPTION_EVENTS.get(message.findtext("Event", ""))
    openid = message.findtext("FromUserName", "").strip()
    if subscribed is None or not openid or len(openid) > OPENID_MAX_LENGTH:
        return
    fan = FansProfile.record_subscription(openid, subscribed)
    # Openids of one account share their first characters; the end tells fans apart.
    logger.info(
        "Fan %s (openid …%s) %s", fan.pk, openid[-6:], "followed" if subscribed else "unfollowed"
    )


@csrf_exempt
@require_http_methods(["GET", "POST"])
def wechat_server(request: HttpRequest) -> HttpResponse:
    """Answer WeChat's server URL check (GET) and its pushed messages (POST).

    https://developers.weixin.qq.com/doc/service/guide/dev/push
    """
    if not is_signed(request.GET):
        return HttpResponseForbidden()
    first_use = is_first_use(request.GET)
    if request.method == "GET":
        if "echostr" not in request.GET or not first_use:
            return HttpResponseBadRequest() if first_use else HttpResponseForbidden()
        return HttpResponse(request.GET["echostr"], content_type="text/plain")
    if not first_use:
        # WeChat resends a push it thinks was lost; an attacker replays one.
        # Either way it is acknowledged and not acted on twice.
        logger.info("WeChat server request replayed: acknowledged, not processed")
        return HttpResponse("success", content_type="text/plain")
    body = request.read(MAX_BODY_SIZE + 1)
    if len(body) > MAX_BODY_SIZE:
        return HttpResponse(status=413)
    try:
        # No DTDs at all: WeChat sends none, and they carry entity attacks.
        message = ElementTree.fromstring(body, forbid_dtd=True)
    except (ElementTree.ParseError, ValueError, LookupError):
        # ValueError covers defusedxml's refusals and multi-byte encodings;
        # LookupError an unknown encoding in the XML declaration.
        return HttpResponseBadRequest()
    record_subscription(message)
    for handler, error in wechat_message_received.send_robust(sender=None, message=message):
        if isinstance(error, Exception):
            # WeChat must still read "success", or it retries and warns the fan.
            logger.error("WeChat push handler %s failed: %r", handler.__qualname__, error)
    # WeChat retries, then shows the fan an error, unless it reads "success".
    return HttpResponse("success", content_type="text/plain")


@require_safe
def mp_verify(request: HttpRequest, code: str) -> HttpResponse:
    """Serve MP_verify_<code>.txt, which WeChat fetches to verify the OAuth domain."""
    # The route only passes non-empty codes, so an empty setting serves nothing.
    if code != settings.WECHAT_MP_VERIFY:
        raise Http404
    return HttpResponse(code, content_type="text/plain")
