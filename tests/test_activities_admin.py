"""Django admin for organisers: activities, applications, decisions and reviewers."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Group, Permission
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from activities.models import Activity, Application, Notification

pytestmark = pytest.mark.django_db

ACTIVITIES = "/admin/activities/activity/"
APPLICATIONS = "/admin/activities/application/"
Status = Application.Status
AVATAR = "https://thirdwx.qlogo.cn/mmopen/vi_32/avatar/132"


@pytest.fixture
def apply(make_fan):
    """Return apply(activity, name, status=..., **fields): a fan's application."""

    def make(activity: Activity, name: str = "张三", status: str = Status.PENDING, **fields):
        fan = fields.pop("fan", None) or make_fan(f"{name}的微信")
        fields.setdefault("phone", "13812345678")
        return Application.objects.create(
            activity=activity, fan=fan, name=name, status=status, **fields
        )

    return make


@pytest.fixture
def template(settings):
    """Configure the result template, so that a decision queues a Notification."""
    settings.WECHAT_TEMPLATE_APPLICATION_RESULT = "tmpl-id"


@pytest.fixture
def reviewer(client, django_user_model):
    """Return a client signed in as a staff user whose only group is 活动审核员."""
    user = django_user_model.objects.create_user("reviewer", password="x", is_staff=True)
    user.groups.add(Group.objects.get(name="活动审核员"))
    client.force_login(user)
    return client


def row(body: str, text: str) -> str:
    """Return the changelist row (<tr>...</tr>) that contains text."""
    rows = [r for r in re.findall(r"<tr[^>]*>.*?</tr>", body, re.S) if text in r]
    assert len(rows) == 1, f"{len(rows)} rows contain {text!r}"
    return rows[0]


def cell(row_html: str, field: str) -> str:
    match = re.search(rf'<t[dh] class="field-{field}[^"]*">(.*?)</t[dh]>', row_html, re.S)
    assert match, f"no {field} column"
    return re.sub(r"<[^>]+>", "", match.group(1)).strip()


def action(client, url: str, name: str, applications, **data):
    """Run an admin action on the given objects, as the changelist's form posts it."""
    selected = [str(obj.pk) for obj in applications]
    return client.post(url, {"action": name, "_selected_action": selected, **data}, follow=True)


def message(response) -> str:
    return " ".join(str(m) for m in get_messages(response.wsgi_request))


def change_data(application: Application, **changes) -> dict[str, str]:
    """Return the change form's POST data: its fields and the notifications inline."""
    data = {
        "name": application.name,
        "phone": application.phone,
        "note": application.note,
        "status": application.status,
        "review_note": application.review_note,
        "notifications-TOTAL_FORMS": "0",
        "notifications-INITIAL_FORMS": "0",
        "notifications-MIN_NUM_FORMS": "0",
        "notifications-MAX_NUM_FORMS": "1000",
    }
    return data | changes


def query_count(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


# Activities


def test_activity_list_counts_applications_per_status_and_places_left(
    admin_client, make_activity, apply
):
    workshop = make_activity(title="木工工作坊", capacity=5)
    for name, status in [
        ("甲", Status.PENDING),
        ("乙", Status.PENDING),
        ("丙", Status.APPROVED),
        ("丁", Status.REJECTED),
        ("戊", Status.WITHDRAWN),
    ]:
        apply(workshop, name, status)
    make_activity(title="城市徒步")

    body = admin_client.get(ACTIVITIES).content.decode()

    workshop_row = row(body, "木工工作坊")
    counts = {
        column: cell(workshop_row, column)
        for column in ["pending_count", "approved_count", "rejected_count", "withdrawn_count"]
    }
    assert counts == {
        "pending_count": "2",
        "approved_count": "1",
        "rejected_count": "1",
        "withdrawn_count": "1",
    }
    assert cell(workshop_row, "capacity_display") == "5"
    assert cell(workshop_row, "places_left") == "2"
    walk_row = row(body, "城市徒步")
    assert cell(walk_row, "capacity_display") == "不限"
    assert cell(walk_row, "places_left") == "不限"
    assert cell(walk_row, "pending_count") == "0"
    for header in ["待审核", "已通过", "未通过", "已撤回", "剩余名额"]:
        assert header in body


def test_activity_list_queries_do_not_grow_with_activities(
    admin_client, make_activity, apply, django_assert_max_num_queries
):
    """The counts come from annotations: one query for the page, whatever its length."""
    for index in range(3):
        apply(make_activity(title=f"活动{index}", capacity=10), f"报名{index}")
    admin_client.get(ACTIVITIES)
    baseline = query_count(admin_client, ACTIVITIES)
    for index in range(3, 30):
        apply(make_activity(title=f"活动{index}", capacity=10), f"报名{index}")
    with django_assert_max_num_queries(baseline):
        response = admin_client.get(ACTIVITIES)
    assert len(response.context["cl"].result_list) == 30


@pytest.mark.parametrize("term", ["木工", "后山", "刨子"])
def test_search_activities_by_title_location_or_description(admin_client, make_activity, term):
    make_activity(title="木工工作坊", location="后山木屋", description="学会用刨子。")
    make_activity(title="城市徒步", location="江边", description="走十公里。")
    body = admin_client.get(ACTIVITIES, {"q": term}).content.decode()
    assert "木工工作坊" in body
    assert "城市徒步" not in body


def test_filter_activities_by_published_and_by_open(admin_client, make_activity):
    now = timezone.now()
    make_activity(title="长期开放")
    make_activity(title="下周截止", apply_until=now + timedelta(days=7))
    make_activity(title="昨天截止", apply_until=now - timedelta(days=1))
    make_activity(title="草稿", published=False)

    def titles(**query) -> set[str]:
        result = admin_client.get(ACTIVITIES, query).context["cl"].result_list
        return {activity.title for activity in result}

    assert titles(open="yes") == {"长期开放", "下周截止"}
    assert titles(open="no") == {"昨天截止"}
    assert titles(published__exact="0") == {"草稿"}
    body = admin_client.get(ACTIVITIES).content.decode()
    assert "接受报名中" in body and "已截止" in body


def test_activity_page_lists_its_applications_read_only_with_links(
    admin_client, make_activity, apply
):
    workshop = make_activity(title="木工工作坊")
    first = apply(workshop, "张三", phone="13812345678")
    second = apply(workshop, "李四", Status.APPROVED, phone="13900001111")
    apply(make_activity(title="别的活动"), "王五")

    body = admin_client.get(f"{ACTIVITIES}{workshop.pk}/change/").content.decode()

    assert "张三" in body and "13812345678" in body and "待审核" in body
    assert "李四" in body and "13900001111" in body and "已通过" in body
    assert "王五" not in body
    assert f'href="{APPLICATIONS}{first.pk}/change/"' in body
    assert f'href="{APPLICATIONS}{second.pk}/change/"' in body
    assert 'name="applications-0-name"' not in body  # read-only
    assert "applications-0-DELETE" not in body
    assert "添加另一个" not in body


def test_an_activity_with_applications_can_still_be_edited(admin_client, make_activity, apply):
    workshop = make_activity(title="木工工作坊", capacity=5)
    apply(workshop, "张三")
    data = {
        "title": "木工工作坊（第二期）",
        "description": workshop.description,
        "location": "后山木屋",
        "starts_at_0": "2026-06-01",
        "starts_at_1": "09:30:00",
        "apply_until_0": "",
        "apply_until_1": "",
        "capacity": "8",
        "review_required": "on",
        "published": "on",
        "applications-TOTAL_FORMS": "1",
        "applications-INITIAL_FORMS": "1",
        "applications-MIN_NUM_FORMS": "0",
        "applications-MAX_NUM_FORMS": "0",
    }

    response = admin_client.post(f"{ACTIVITIES}{workshop.pk}/change/", data)

    assert response.status_code == 302
    workshop.refresh_from_db()
    assert (workshop.title, workshop.capacity) == ("木工工作坊（第二期）", 8)
    assert timezone.localtime(workshop.starts_at).strftime("%Y-%m-%d %H:%M") == "2026-06-01 09:30"
    assert workshop.applications.get().name == "张三"


def test_deleting_an_activity_with_applications_is_refused_not_a_500(
    admin_client, make_activity, apply
):
    workshop = make_activity(title="木工工作坊")
    apply(workshop, "张三")
    url = f"{ACTIVITIES}{workshop.pk}/delete/"

    page = admin_client.get(url)
    posted = admin_client.post(url, {"post": "yes"})
    selected = action(admin_client, ACTIVITIES, "delete_selected", [workshop], post="yes")

    for response in (page, posted, selected):
        assert response.status_code == 200
        body = response.content.decode()
        assert "受保护" in body  # "...需要删除以下受保护的相关对象"
        assert "张三 · 木工工作坊" in body
    assert Activity.objects.filter(pk=workshop.pk).exists()


def test_an_activity_without_applications_can_be_deleted(admin_client, make_activity):
    draft = make_activity(title="草稿", published=False)
    response = admin_client.post(f"{ACTIVITIES}{draft.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Activity.objects.filter(pk=draft.pk).exists()


# Applications: the list


def test_application_list_shows_fan_application_and_notification(
    admin_client, make_activity, make_fan, apply
):
    fan = make_fan("小鸡炖蘑菇🍄", headimgurl=AVATAR)
    application = apply(make_activity(title="木工工作坊"), "张三", fan=fan, phone="13812345678")

    body = admin_client.get(APPLICATIONS).content.decode()

    line = row(body, "13812345678")
    assert f'<img src="{AVATAR}"' in line and 'referrerpolicy="no-referrer"' in line
    assert cell(line, "nickname") == "小鸡炖蘑菇🍄"
    assert cell(line, "name") == "张三"
    assert cell(line, "activity") == "木工工作坊"
    assert cell(line, "status") == "待审核"
    assert cell(line, "reviewed_at") == "-"
    assert cell(line, "notification") == "—"
    assert f'href="{APPLICATIONS}{application.pk}/change/' in line


@pytest.mark.parametrize(
    ("fields", "shown"),
    [
        ({"state": Notification.State.QUEUED}, "排队中"),
        ({"state": Notification.State.SENT, "msgid": "3147483937"}, "已发送 msgid 3147483937"),
        ({"state": Notification.State.DELIVERED, "msgid": "3147483937"}, "已送达"),
        (
            {"state": Notification.State.FAILED, "error": "43004 require subscribe"},
            "失败：43004 require subscribe",
        ),
    ],
)
def test_notification_column_shows_the_latest_message_state(
    admin_client, make_activity, apply, fields, shown
):
    application = apply(make_activity(), "张三", Status.APPROVED)
    older = Notification.objects.create(
        application=application, decision=Status.REJECTED, state=Notification.State.DELIVERED
    )
    Notification.objects.filter(pk=older.pk).update(created_at=timezone.now() - timedelta(days=1))
    Notification.objects.create(application=application, decision=Status.APPROVED, **fields)

    body = admin_client.get(APPLICATIONS).content.decode()

    assert cell(row(body, "张三"), "notification") == shown


@pytest.mark.parametrize("term", ["张三", "13812345678", "蘑菇"])
def test_search_applications_by_name_phone_or_nickname(
    admin_client, make_activity, make_fan, apply, term
):
    activity = make_activity()
    apply(activity, "张三", fan=make_fan("小鸡炖蘑菇"), phone="13812345678")
    apply(activity, "李四", fan=make_fan("大白菜"), phone="13900001111")
    names = {a.name for a in admin_client.get(APPLICATIONS, {"q": term}).context["cl"].result_list}
    assert names == {"张三"}


def test_filter_applications_by_activity_and_status(admin_client, make_activity, apply):
    workshop, walk = make_activity(title="木工工作坊"), make_activity(title="城市徒步")
    apply(workshop, "张三")
    apply(workshop, "李四", Status.APPROVED)
    apply(walk, "王五", Status.APPROVED)

    def names(**query) -> set[str]:
        result = admin_client.get(APPLICATIONS, query).context["cl"].result_list
        return {application.name for application in result}

    assert names(activity__id__exact=workshop.pk) == {"张三", "李四"}
    assert names(status__exact="approved") == {"李四", "王五"}
    assert names(activity__id__exact=workshop.pk, status__exact="approved") == {"李四"}


def test_application_list_queries_do_not_grow_with_applications(
    admin_client, make_activity, make_fan, apply, django_assert_max_num_queries
):
    """Fans, activities and latest notifications load in a fixed number of queries."""
    activity = make_activity()

    def add(count: int, start: int) -> None:
        for index in range(start, start + count):
            application = apply(activity, f"报名{index}", fan=make_fan(headimgurl=AVATAR))
            Notification.objects.create(
                application=application, decision=Status.APPROVED, msgid=str(index)
            )

    add(5, 0)
    admin_client.get(APPLICATIONS)
    baseline = query_count(admin_client, APPLICATIONS)
    add(45, 5)
    with django_assert_max_num_queries(baseline):
        response = admin_client.get(APPLICATIONS)
    assert len(response.context["cl"].result_list) == 50


def test_applications_cannot_be_added_in_admin(admin_client):
    assert admin_client.get(f"{APPLICATIONS}add/").status_code == 403


# Applications: the change page


def test_change_page_shows_wechat_data_and_activity_read_only(
    admin_client, make_activity, make_fan, apply
):
    fan = make_fan("小鸡炖蘑菇🍄", headimgurl=AVATAR, openid="oFANXYZ")
    application = apply(make_activity(title="木工工作坊"), "张三", fan=fan)

    body = admin_client.get(f"{APPLICATIONS}{application.pk}/change/").content.decode()

    assert "小鸡炖蘑菇🍄" in body and "oFANXYZ" in body and f'src="{AVATAR}"' in body
    assert "木工工作坊" in body
    for readonly in ["nickname", "openid", "activity", "fan", "created_at", "reviewed_at"]:
        assert f'name="{readonly}"' not in body
    for editable in ["name", "phone", "note", "status", "review_note"]:
        assert f'name="{editable}"' in body


@pytest.mark.parametrize(
    ("status", "offered"),
    [
        (Status.PENDING, ["pending", "approved", "rejected"]),
        (Status.APPROVED, ["approved", "rejected"]),
        (Status.REJECTED, ["approved", "rejected"]),
    ],
)
def test_status_offers_the_current_status_and_the_decisions(
    admin_client, make_activity, apply, status, offered
):
    application = apply(make_activity(), status=status)
    response = admin_client.get(f"{APPLICATIONS}{application.pk}/change/")
    choices = response.context["adminform"].form.fields["status"].choices
    assert [value for value, _ in choices] == offered


def test_withdrawn_application_cannot_be_decided_on_its_page(admin_client, make_activity, apply):
    application = apply(make_activity(), status=Status.WITHDRAWN)
    url = f"{APPLICATIONS}{application.pk}/change/"
    assert 'name="status"' not in admin_client.get(url).content.decode()
    admin_client.post(url, change_data(application, status=Status.APPROVED))
    application.refresh_from_db()
    assert application.status == Status.WITHDRAWN


def test_changing_the_status_decides_and_queues_one_notification(
    admin_client, make_activity, apply, template
):
    application = apply(make_activity(), "张三")
    url = f"{APPLICATIONS}{application.pk}/change/"

    response = admin_client.post(
        url, change_data(application, status=Status.REJECTED, review_note="名额留给本地居民")
    )

    assert response.status_code == 302
    application.refresh_from_db()
    assert application.status == Status.REJECTED
    assert application.review_note == "名额留给本地居民"
    assert application.reviewed_at is not None
    notification = Notification.objects.get(application=application)
    assert notification.decision == Status.REJECTED
    assert notification.state == Notification.State.QUEUED
    # Saving again with the same status sends nothing more.
    admin_client.post(url, change_data(application, note="改了备注"))
    application.refresh_from_db()
    assert application.note == "改了备注"
    assert application.notifications.count() == 1


def test_editing_contact_details_keeps_the_status_and_sends_nothing(
    admin_client, make_activity, apply, template
):
    application = apply(make_activity(), "张三", Status.APPROVED, phone="13812345678")
    response = admin_client.post(
        f"{APPLICATIONS}{application.pk}/change/",
        change_data(application, name="张三丰", phone="13900001111"),
    )
    assert response.status_code == 302
    application.refresh_from_db()
    assert (application.name, application.phone) == ("张三丰", "13900001111")
    assert application.status == Status.APPROVED
    assert not Notification.objects.exists()


def test_approving_on_the_change_page_when_full_is_a_form_error(
    admin_client, make_activity, apply, template
):
    activity = make_activity(capacity=1)
    apply(activity, "先到的", Status.APPROVED)
    application = apply(activity, "后到的", Status.REJECTED)

    response = admin_client.post(
        f"{APPLICATIONS}{application.pk}/change/", change_data(application, status=Status.APPROVED)
    )

    assert response.status_code == 200
    assert "活动名额已满（共 1 个），不能通过这份申请。" in response.content.decode()
    application.refresh_from_db()
    assert application.status == Status.REJECTED
    assert not Notification.objects.exists()


def test_change_page_lists_the_notifications_read_only(admin_client, make_activity, apply):
    application = apply(make_activity(), "张三", Status.REJECTED)
    Notification.objects.create(
        application=application,
        decision=Status.REJECTED,
        state=Notification.State.FAILED,
        msgid="",
        attempts=1,
        error="43004 require subscribe：粉丝未关注公众号，收不到模板消息",
    )
    Notification.objects.create(
        application=application,
        decision=Status.APPROVED,
        state=Notification.State.SENT,
        msgid="3147483937",
        attempts=1,
    )

    body = admin_client.get(f"{APPLICATIONS}{application.pk}/change/").content.decode()

    assert "模板消息通知" in body
    assert "粉丝未关注公众号，收不到模板消息" in body
    assert "3147483937" in body
    assert "已发送" in body and "失败" in body
    assert 'name="notifications-0-state"' not in body
    assert "notifications-0-DELETE" not in body


# Actions


def test_approve_action_approves_and_queues_one_notification_each(
    admin_client, make_activity, apply, template
):
    activity = make_activity()
    selected = [apply(activity, "张三"), apply(activity, "李四", Status.REJECTED)]
    untouched = apply(activity, "王五")

    response = action(admin_client, APPLICATIONS, "approve", selected)

    assert message(response) == "2 份申请改为已通过。"
    for application in selected:
        application.refresh_from_db()
        assert application.status == Status.APPROVED
        assert application.reviewed_at is not None
        assert [n.decision for n in application.notifications.all()] == [Status.APPROVED]
    untouched.refresh_from_db()
    assert untouched.status == Status.PENDING

    history = LogEntry.objects.filter(object_id=str(selected[0].pk)).get()
    assert (history.user.username, history.change_message) == ("admin", "批量操作：已通过")

    again = action(admin_client, APPLICATIONS, "approve", selected)

    assert message(again) == "0 份申请改为已通过；2 份本来就是已通过。"
    assert Notification.objects.count() == 2


def test_approve_action_when_full_says_so_and_skips_withdrawn(
    admin_client, make_activity, apply, template
):
    activity = make_activity(capacity=1)
    apply(activity, "先到的", Status.APPROVED)
    rejected = apply(activity, "后到的", Status.REJECTED)
    withdrawn = apply(activity, "撤回的", Status.WITHDRAWN)

    response = action(admin_client, APPLICATIONS, "approve", [rejected, withdrawn])

    assert message(response) == (
        "0 份申请改为已通过；1 份因活动名额已满未能通过；1 份已被粉丝撤回，未处理。"
    )
    rejected.refresh_from_db()
    withdrawn.refresh_from_db()
    assert rejected.status == Status.REJECTED
    assert withdrawn.status == Status.WITHDRAWN
    assert not Notification.objects.exists()


def test_approve_action_gives_the_last_places_to_the_earliest(
    admin_client, make_activity, apply, template
):
    activity = make_activity(capacity=2)
    early = apply(activity, "早", Status.REJECTED)
    late = apply(activity, "晚", Status.REJECTED)
    apply(activity, "已在等", Status.PENDING)

    response = action(admin_client, APPLICATIONS, "approve", [late, early])

    assert message(response) == "1 份申请改为已通过；1 份因活动名额已满未能通过。"
    early.refresh_from_db()
    late.refresh_from_db()
    assert (early.status, late.status) == (Status.APPROVED, Status.REJECTED)


def test_reject_action_asks_for_a_note_then_rejects(admin_client, make_activity, apply, template):
    activity = make_activity(title="木工工作坊")
    selected = [apply(activity, "张三"), apply(activity, "李四", Status.APPROVED)]

    page = action(admin_client, APPLICATIONS, "reject", selected)

    body = page.content.decode()
    assert page.status_code == 200
    assert '<textarea name="review_note"' in body
    assert "张三 · 木工工作坊" in body and "李四 · 木工工作坊" in body
    assert not Application.objects.filter(status=Status.REJECTED).exists()

    done = action(
        admin_client,
        APPLICATIONS,
        "reject",
        selected,
        post="yes",
        review_note="名额已满，下次早点来",
    )

    assert message(done) == "2 份申请改为未通过。"
    for application in selected:
        application.refresh_from_db()
        assert application.status == Status.REJECTED
        assert application.review_note == "名额已满，下次早点来"
        assert application.reviewed_at is not None
        assert application.notifications.get().decision == Status.REJECTED


def test_reject_action_refuses_a_note_over_200_characters(
    admin_client, make_activity, apply, template
):
    application = apply(make_activity(), "张三")

    response = action(
        admin_client, APPLICATIONS, "reject", [application], post="yes", review_note="长" * 201
    )

    assert response.status_code == 200
    assert "200" in response.context["form"].errors["review_note"][0]
    assert '<textarea name="review_note"' in response.content.decode()
    application.refresh_from_db()
    assert application.status == Status.PENDING
    assert not Notification.objects.exists()


def test_reject_action_without_a_note_and_skipping_withdrawn(
    admin_client, make_activity, apply, template
):
    activity = make_activity()
    pending, withdrawn = apply(activity, "张三"), apply(activity, "李四", Status.WITHDRAWN)

    response = action(admin_client, APPLICATIONS, "reject", [pending, withdrawn], post="yes")

    assert message(response) == "1 份申请改为未通过；1 份已被粉丝撤回，未处理。"
    pending.refresh_from_db()
    withdrawn.refresh_from_db()
    assert (pending.status, pending.review_note) == (Status.REJECTED, "")
    assert withdrawn.status == Status.WITHDRAWN


# Who may do what


def test_the_reviewer_group_has_exactly_the_reviewing_permissions():
    codenames = set(
        Group.objects.get(name="活动审核员").permissions.values_list("codename", flat=True)
    )
    assert codenames == {
        "view_activity",
        "view_application",
        "change_application",
        "review_application",
        "export_application",
        "view_photo",
    }


def test_a_reviewer_can_review_and_export_applications(reviewer, make_activity, apply, template):
    activity = make_activity(title="木工工作坊")
    approved, rejected = apply(activity, "张三"), apply(activity, "李四")

    assert reviewer.get(APPLICATIONS).status_code == 200
    assert reviewer.get(ACTIVITIES).status_code == 200
    assert reviewer.get(f"{ACTIVITIES}{activity.pk}/change/").status_code == 200  # view only
    body = reviewer.get(f"{APPLICATIONS}{approved.pk}/change/").content.decode()
    assert 'name="status"' in body and "模板消息通知" in body
    assert "通过所选申请" in reviewer.get(APPLICATIONS).content.decode()

    action(reviewer, APPLICATIONS, "approve", [approved])
    action(reviewer, APPLICATIONS, "reject", [rejected], post="yes", review_note="不符合条件")
    exported = reviewer.post(
        ACTIVITIES, {"action": "export_xlsx", "_selected_action": [str(activity.pk)]}
    )
    exported_csv = reviewer.post(
        APPLICATIONS, {"action": "export_csv", "_selected_action": [str(approved.pk)]}
    )

    approved.refresh_from_db()
    rejected.refresh_from_db()
    assert approved.status == Status.APPROVED
    assert (rejected.status, rejected.review_note) == (Status.REJECTED, "不符合条件")
    assert Notification.objects.count() == 2
    assert exported["Content-Type"].startswith("application/vnd.openxmlformats")
    assert exported_csv["Content-Type"] == "text/csv; charset=utf-8"


def test_a_reviewer_cannot_change_activities_fans_or_users(reviewer, make_activity, make_fan):
    activity = make_activity(title="木工工作坊")
    fan = make_fan()

    changed = reviewer.post(f"{ACTIVITIES}{activity.pk}/change/", {"title": "改过的"})
    assert changed.status_code == 403
    assert reviewer.get(f"{ACTIVITIES}add/").status_code == 403
    assert reviewer.get(f"{ACTIVITIES}{activity.pk}/delete/").status_code == 403
    assert reviewer.get("/admin/fans/fansprofile/").status_code == 403
    assert reviewer.get(f"/admin/fans/fansprofile/{fan.pk}/change/").status_code == 403
    assert reviewer.get("/admin/auth/user/").status_code == 403
    assert reviewer.get("/admin/auth/group/").status_code == 403
    activity.refresh_from_db()
    assert activity.title == "木工工作坊"


def test_staff_without_the_permissions_cannot_run_the_actions(
    client, django_user_model, make_activity, apply, template
):
    user = django_user_model.objects.create_user("clerk", password="x", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="activities",
            codename__in=["view_activity", "view_application", "change_application"],
        )
    )
    client.force_login(user)
    activity = make_activity()
    application = apply(activity, "张三")

    listing = client.get(APPLICATIONS).content.decode()
    assert "通过所选申请" not in listing and "导出所选申请" not in listing
    approve = action(client, APPLICATIONS, "approve", [application])
    reject = action(client, APPLICATIONS, "reject", [application], post="yes")
    export = client.post(
        APPLICATIONS, {"action": "export_csv", "_selected_action": [application.pk]}
    )
    export_activity = client.post(
        ACTIVITIES, {"action": "export_xlsx", "_selected_action": [activity.pk]}
    )

    # The user has no action at all: the posts show the list again, changing nothing.
    for response in (approve, reject):
        assert response.status_code == 200
        assert "改为" not in message(response)
    for response in (export, export_activity):
        assert "Content-Disposition" not in response
    application.refresh_from_db()
    assert application.status == Status.PENDING
    assert not Notification.objects.exists()
    # Without the review permission the status is not editable on the page either.
    body = client.get(f"{APPLICATIONS}{application.pk}/change/").content.decode()
    assert 'name="status"' not in body and 'name="review_note"' not in body
    assert 'name="phone"' in body
