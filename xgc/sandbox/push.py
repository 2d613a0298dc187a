"""Pushing events to xgc's server URL, as WeChat's 消息与事件推送 does.

Rules from shared/wechat-protocol.md section 6: a signed POST of XML to the
server URL, which must answer ``success`` (or nothing) within 5 s.
"""

from __future__ import annotations

import logging
import time

import requests

from django.conf import settings
from django.urls import reverse
from django.utils.crypto import get_random_string

from fans.auth import public_url
from fans.server import signature

logger = logging.getLogger(__name__)

# The account's original id (原始ID), which WeChat puts in ToUserName.
ACCOUNT_ORIGINAL_ID = "gh_sandbox00000"
# WeChat gives up on a push after 5 s.
PUSH_TIMEOUT = 5
NOT_PUSHED = "未推送：TOKEN 为空"


def server_url() -> str:
    """Return xgc's server URL (服务器配置 → URL) on REDIRECT_URL's host."""
    return public_url(reverse("wechat-server"))


def event_xml(openid: str, event: str, extra: dict[str, str | int]) -> str:
    """Return an event's XML: text in CDATA as WeChat writes it, numbers bare."""
    fields: dict[str, str | int] = {
        "ToUserName": ACCOUNT_ORIGINAL_ID,
        "FromUserName": openid,
        "CreateTime": int(time.time()),
        "MsgType": "event",
        "Event": event,
    } | extra
    parts = []
    for name, value in fields.items():
        if isinstance(value, str):
            value = "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"
        parts.append(f"<{name}>{value}</{name}>")
    return "<xml>" + "".join(parts) + "</xml>"


def push_event(openid: str, event: str, **extra: str | int) -> str:
    """Push an event from the fan to xgc; return how it went, in words.

    A failure is logged and reported, never raised: WeChat's own pushes fail
    without the API call that caused them failing.
    """
    if not settings.TOKEN:
        # Without the token xgc would refuse the push as unsigned anyway.
        return NOT_PUSHED
    timestamp, nonce = str(int(time.time())), get_random_string(10, "0123456789")
    query = {
        "signature": signature(settings.TOKEN, timestamp, nonce),
        "timestamp": timestamp,
        "nonce": nonce,
    }
    body = event_xml(openid, event, extra).encode()
    try:
        response = requests.post(
            server_url(),
            params=query,
            data=body,
            headers={"Content-Type": "text/xml"},
            timeout=PUSH_TIMEOUT,
        )
    except requests.RequestException as error:
        logger.warning("Sandbox push of %s failed: %s", event, type(error).__name__)
        return f"推送失败：{type(error).__name__}"
    answer = response.content[:40].decode("utf-8", "replace")
    if response.status_code != 200 or answer not in ("success", ""):
        logger.warning("Sandbox push of %s answered HTTP %s", event, response.status_code)
        return f"推送失败：HTTP {response.status_code} {answer}".strip()
    return f"已推送，xgc 答 {answer or '空'}"
