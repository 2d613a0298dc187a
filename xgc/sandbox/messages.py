"""Template messages (模板消息): the send API and the fan's 服务通知 on the phone.

Rules from shared/wechat-protocol.md section 12.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any
from urllib.parse import urlencode, urlsplit

from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from .api import CGI_CONTENT_TYPE, SandboxError, json_body, wechat_api
from .models import SandboxFan, SandboxMessage
from .oauth import phone_holder
from .platform import valid_platform_token
from .process import APPLICATION_RESULT_TEMPLATE_ID
from .push import push_event


@dataclass(frozen=True)
class Template:
    """A template the operator added in the console (模板消息 → 我的模板)."""

    template_id: str
    title: str
    # keyword → label, in the order the card shows them
    keywords: dict[str, str]


TEMPLATE_CATALOGUE = {
    template.template_id: template
    for template in [
        Template(
            APPLICATION_RESULT_TEMPLATE_ID,
            "申请结果通知",
            {"thing1": "活动名称", "phrase2": "审核结果", "time3": "审核时间"},
        ),
    ]
}
# WeChat sends one message per openid + client_msg_id within this window.
CLIENT_MSG_ID_WINDOW = timedelta(minutes=10)
# Keys WeChat has dropped silently since 2023-05-04 instead of refusing.
DROPPED_KEYS = {"first", "remark"}
# The 服务通知 page shows this many of the newest messages.
INBOX_SIZE = 50

CHINESE = r"\u3400-\u4dbf\u4e00-\u9fff"
DATE = r"(?:([0-9]{4})年([0-9]{1,2})月([0-9]{1,2})日|([0-9]{4})-([0-9]{1,2})-([0-9]{1,2}))"
CLOCK = r"([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}))?"
POINT = re.compile(rf"(?:{DATE})?\s*(?:{CLOCK})?")
# Year, month, day, hour, minute, second where a point leaves them out.
DEFAULT_POINT = (2000, 1, 1, 0, 0, 0)


def is_time(value: str, *, needs: str) -> bool:
    """Accept 2026年12月2日 14:05, 2026-12-02 14:05, 14:05 or a range a~b.

    ``needs`` is "clock" for time keywords, "date" for date keywords.
    """
    for point in value.split("~"):
        found = POINT.fullmatch(point.strip())
        if found is None:
            return False
        groups = found.groups()
        date, clock = (groups[0:3] if groups[0] else groups[3:6]), groups[6:9]
        if {"clock": clock, "date": date}[needs][0] is None:
            return False
        numbers = [
            int(n or default) for n, default in zip(date + clock, DEFAULT_POINT, strict=True)
        ]
        try:
            datetime(*numbers)  # a real day and time of day, or ValueError
        except ValueError:
            return False
    return True


# The category-template (类目模板) rule of each keyword type, by the
# keyword's prefix: (check, what WeChat's 47003 message says is wrong).
VALUE_RULES = {
    "thing": (lambda v: len(v) <= 20, "exceeds 20 characters"),
    "phrase": (lambda v: re.fullmatch(rf"[{CHINESE}]{{1,5}}", v), "must be 1-5 Chinese characters"),
    "time": (partial(is_time, needs="clock"), "is not a time"),
    "date": (partial(is_time, needs="date"), "is not a date"),
    "character_string": (
        lambda v: len(v) <= 32 and not re.search(rf"[{CHINESE}]", v),
        "must be at most 32 characters without Chinese",
    ),
    # The category table also allows a decimal point.
    "number": (lambda v: len(v) <= 32 and re.fullmatch(r"[0-9]+(\.[0-9]+)?", v), "must be digits"),
    "name": (
        lambda v: re.fullmatch(rf"[{CHINESE}·]{{1,10}}|[A-Za-z ]{{1,20}}", v),
        "must be at most 10 Chinese characters or 20 letters",
    ),
}


def value_problem(keyword: str, item: Any) -> str | None:
    """Return why ``data[keyword]`` breaks its type's rule, or None."""
    if not isinstance(item, dict) or not isinstance(item.get("value"), str):
        return "must be a string"
    value = item["value"]
    if not value.strip():
        return "is empty"
    if "\n" in value or "\r" in value:
        return "has a line break"
    check, reason = VALUE_RULES[keyword.rstrip("0123456789")]
    return None if check(value) else reason


def checked_data(template: Template, data: Any) -> dict[str, dict[str, str]]:
    """Return the keywords' values, or raise 47003 for the first bad one."""
    if not isinstance(data, dict):
        raise SandboxError(47003, "argument invalid! data is not an object")
    # WeChat's handling of a missing or an extra keyword is UNCONFIRMED. The
    # sandbox refuses both on purpose, so that a wrong WECHAT_TEMPLATE_KEY_*
    # setting shows in development rather than as an empty line on a phone.
    extra = sorted(data.keys() - template.keywords.keys() - DROPPED_KEYS)
    if extra:
        raise SandboxError(
            47003, f"argument invalid! data.{extra[0]}.value is not a keyword of the template"
        )
    for keyword in template.keywords:
        if keyword not in data:
            raise SandboxError(47003, f"argument invalid! data.{keyword}.value is missing")
        problem = value_problem(keyword, data[keyword])
        if problem:
            raise SandboxError(47003, f"argument invalid! data.{keyword}.value {problem}")
    # Colours go the way of first and remark: only the values are kept.
    return {keyword: {"value": data[keyword]["value"]} for keyword in template.keywords}


def new_msgid() -> int:
    """Return a random 19-digit msgid that fits a signed 64-bit number."""
    return 10**18 + secrets.randbelow(2**63 - 10**18)


def text_field(body: dict[str, Any], name: str) -> str:
    value = body.get(name, "")
    if not isinstance(value, str):
        raise SandboxError(47001, "data format error")
    return value


@wechat_api(CGI_CONTENT_TYPE, method="POST")
def template_send(request: HttpRequest) -> dict[str, Any]:
    """cgi-bin/message/template/send: check, record, then push the delivery event."""
    valid_platform_token(request)
    body = json_body(request)
    if not isinstance(body, dict):
        raise SandboxError(47001, "data format error")
    openid, template_id = text_field(body, "touser"), text_field(body, "template_id")
    url, client_msg_id = text_field(body, "url"), text_field(body, "client_msg_id")
    with transaction.atomic():
        # The lock makes two sends with one client_msg_id take turns
        # (PostgreSQL; SQLite ignores it and runs one write at a time).
        fan = SandboxFan.objects.select_for_update().filter(openid=openid).first()
        if fan is None:
            raise SandboxError(40003, "invalid openid")
        if not fan.follows:
            raise SandboxError(43004, "require subscribe")
        template = TEMPLATE_CATALOGUE.get(template_id)
        if template is None:
            raise SandboxError(40037, "invalid template_id")
        data = checked_data(template, body.get("data"))
        if client_msg_id:
            earlier = fan.messages.filter(
                client_msg_id=client_msg_id,
                created_at__gt=timezone.now() - CLIENT_MSG_ID_WINDOW,
            ).first()
            if earlier is not None:
                return {"errcode": 0, "errmsg": "ok", "msgid": earlier.msgid}
        message = SandboxMessage.objects.create(
            fan=fan,
            template_id=template_id,
            data=data,
            url=url,
            msgid=new_msgid(),
            client_msg_id=client_msg_id,
        )
    # Before answering, as WeChat's event often comes first (xgc copes), and
    # after the commit: the message stands whatever the push does, and the
    # fan's row is not locked for the push's up to 5 s.
    message.push_result = push_event(
        openid, "TEMPLATESENDJOBFINISH", MsgID=message.msgid, Status="success"
    )
    message.save(update_fields=["push_result"])
    return {"errcode": 0, "errmsg": "ok", "msgid": message.msgid}


def card(message: SandboxMessage) -> dict[str, Any]:
    """Return what the phone shows of a message: title, rows and link."""
    template = TEMPLATE_CATALOGUE.get(message.template_id)
    labels = template.keywords if template else {key: key for key in message.data}
    rows = [(label, message.data.get(key, {}).get("value", "")) for key, label in labels.items()]
    # Only web links become 详情: a javascript: URL must not run on the page.
    link = message.url if urlsplit(message.url).scheme in ("http", "https") else ""
    return {
        "title": template.title if template else message.template_id,
        "message": message,
        "rows": rows,
        "link": link,
    }


@require_http_methods(["GET", "POST"])
def inbox(request: HttpRequest) -> HttpResponse:
    """Show the phone holder's 服务通知; a POST follows or unfollows the account."""
    holder = phone_holder(request)
    fan = SandboxFan.objects.filter(openid=holder.openid).first() if holder else None
    if fan is None:
        chooser = reverse("sandbox-phone") + "?" + urlencode({"next": request.get_full_path()})
        return HttpResponseRedirect(chooser)
    if request.method == "POST":
        follows = request.POST.get("follows") == "1"
        if fan.follows != follows:
            fan.follows = follows
            fan.save(update_fields=["follows"])
            result = push_event(fan.openid, "subscribe" if follows else "unsubscribe")
            messages.info(request, f"{'已关注' if follows else '已取消关注'}公众号 · {result}")
        return HttpResponseRedirect(reverse("sandbox-messages"))
    # A phone screen's worth: the newest first.
    cards = [card(message) for message in fan.messages.all()[:INBOX_SIZE]]
    return render(request, "sandbox/messages.html", {"fan": fan, "cards": cards})
