"""Applications as a spreadsheet: rows of text in, the bytes of a file out.

No request and no queries here: the admin selects the applications (with
their fan, activity and notifications) and sends the bytes.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from itertools import chain
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.utils import get_column_letter

from .models import Application, Notification

HEADERS = [
    "活动",
    "姓名",
    "手机号",
    "备注",
    "状态",
    "审核说明",
    "提交时间",
    "审核时间",
    "微信昵称",
    "OpenID",
    "通知状态",
]
# Column widths in characters, in the order of HEADERS (a CJK character
# takes about two).
WIDTHS = [24, 12, 14, 30, 8, 30, 17, 17, 16, 32, 30]
# Organisers are in China, whatever TIME_ZONE the server runs in.
ORGANISER_TIME_ZONE = ZoneInfo("Asia/Shanghai")
# A spreadsheet reads a cell starting with one of these as a formula (OWASP
# "CSV Injection"): a fan's name must never run as one on an organiser's PC.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

CSV_CONTENT_TYPE = "text/csv; charset=utf-8"
XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def notification_text(notification: Notification | None) -> str:
    """Return what became of a template message, as an organiser reads it."""
    if notification is None:
        return "—"
    state = notification.get_state_display()
    match notification.state:
        case Notification.State.SENT:
            return f"{state} msgid {notification.msgid}"
        case Notification.State.FAILED:
            return f"{state}：{notification.error}"
        case Notification.State.QUEUED if notification.error:
            # Queued again after a failed attempt: say why it waits.
            return f"{state}（{notification.error}）"
    return state


def latest_notification(application: Application) -> Notification | None:
    """Return the application's newest notification (prefetch ``notifications``)."""
    notifications = application.notifications.all()
    return max(notifications, key=lambda n: (n.created_at, n.pk), default=None)


def local_time(moment: datetime | None) -> str:
    """Return ``YYYY-MM-DD HH:MM`` in Shanghai time, or "" for no time."""
    if moment is None:
        return ""
    return moment.astimezone(ORGANISER_TIME_ZONE).strftime("%Y-%m-%d %H:%M")


def application_rows(applications: Iterable[Application]) -> Iterator[list[str]]:
    """Yield one row of text per application, in the order of HEADERS."""
    for application in applications:
        fan = application.fan
        yield [
            application.activity.title,
            application.name,
            application.phone,
            application.note,
            application.get_status_display(),
            application.review_note,
            local_time(application.created_at),
            local_time(application.reviewed_at),
            fan.nickname,
            fan.openid,
            notification_text(latest_notification(application)),
        ]


def csv_bytes(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> bytes:
    """Return UTF-8 CSV with a BOM, so that Excel opens Chinese text as such."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in chain([headers], rows):
        writer.writerow([_defused(value) for value in row])
    return buffer.getvalue().encode("utf-8-sig")


def _defused(value: str) -> str:
    # The apostrophe makes Excel and LibreOffice show the text as it is.
    return f"'{value}" if value.startswith(FORMULA_STARTS) else value


def xlsx_bytes(headers: Sequence[str], rows: Iterable[Sequence[str]], title: str = "申请") -> bytes:
    """Return an .xlsx workbook whose every cell is text.

    Text cells keep phone numbers as typed (no 1.38E+10) and make a value
    starting with "=" a string, never a formula. The write-only workbook
    streams rows instead of holding a cell object for each.
    """
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title)
    for index, width in enumerate(WIDTHS[: len(headers)], start=1):
        sheet.column_dimensions[get_column_letter(index)].width = width
    sheet.freeze_panes = "A2"
    for row in chain([headers], rows):
        sheet.append([_text_cell(sheet, value) for value in row])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _text_cell(sheet, value: str) -> WriteOnlyCell:
    # openpyxl refuses control characters that XML cannot carry; a pasted
    # note may hold one.
    cell = WriteOnlyCell(sheet, ILLEGAL_CHARACTERS_RE.sub("", value))
    # Set after the value: openpyxl infers "f" (formula) for "=..." and "e"
    # for "#N/A".
    cell.data_type = "s"
    return cell
