"""The fan pages of activities: list, detail, the form, and the fan's applications."""

from datetime import datetime, timedelta

import pytest

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from activities.models import Application
from activities.services import application_decide

from .conftest import sign_in

pytestmark = pytest.mark.django_db

FORM = {"name": "张三", "phone": "13812345678", "note": "带一本书"}


@pytest.fixture
def fan(make_fan, client):
    """The fan signed in on the test client."""
    fan = make_fan("读书人")
    sign_in(client, fan)
    return fan


@pytest.fixture
def activity(make_activity):
    return make_activity(title="周末读书会", capacity=10, location="图书馆三楼")


def apply_url(activity) -> str:
    return f"/activities/{activity.pk}/apply/"


def apply(client, activity, **fields):
    return client.post(apply_url(activity), FORM | fields)


def page(response) -> str:
    return response.content.decode()


def application_of(fan, activity) -> Application:
    return Application.objects.get(fan=fan, activity=activity)


# Sign-in


@pytest.mark.parametrize(
    "path",
    [
        "/activities/",
        "/activities/1/",
        "/activities/1/apply/",
        "/applications/",
        "/applications/1/",
        "/applications/1/withdraw/",
    ],
)
def test_a_stranger_is_sent_to_sign_in_and_back(client, path):
    """Every page sends a visitor without a fan cookie to /wechat/login/, next=the page."""
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"] == "/wechat/login/?next=" + path.replace("/", "%2F")


def test_a_post_from_a_stranger_stores_nothing(client, activity):
    """Submitting the form without being signed in goes to sign-in, not to the service."""
    response = apply(client, activity)
    assert response.status_code == 302
    assert response["Location"].startswith("/wechat/login/")
    assert not Application.objects.exists()


# /activities/


def test_the_list_shows_open_activities_first(client, fan, make_activity):
    """Closed activities come after open ones, whatever their dates or age."""
    now = timezone.now()
    make_activity(title="上个月的活动", apply_until=now - timedelta(hours=1))
    make_activity(title="下周的活动", starts_at=now + timedelta(days=7))
    make_activity(title="明天的活动", starts_at=now + timedelta(days=1))
    make_activity(title="不设截止的活动", apply_until=None)
    body = page(client.get("/activities/"))
    positions = [
        body.index(title)
        for title in ("明天的活动", "下周的活动", "不设截止的活动", "上个月的活动")
    ]
    assert positions == sorted(positions)
    assert body.count("报名中") == 3 and body.count("已截止") == 1


def test_the_list_hides_unpublished_activities(client, fan, make_activity):
    """Fans see only published activities."""
    make_activity(title="草稿活动", published=False)
    make_activity(title="已发布的活动")
    body = page(client.get("/activities/"))
    assert "已发布的活动" in body
    assert "草稿活动" not in body


def test_the_list_shows_dates_places_left_and_the_fans_status(client, fan, make_fan, make_activity):
    """Places left count pending and approved applications; no capacity reads 不限."""
    starts = timezone.make_aware(datetime(2030, 5, 1, 14, 30))
    until = timezone.make_aware(datetime(2030, 4, 30, 18, 0))
    limited = make_activity(title="有名额", capacity=5, starts_at=starts, apply_until=until)
    make_activity(title="不限名额", capacity=None)
    for status in ("pending", "approved", "rejected", "withdrawn"):
        Application.objects.create(
            activity=limited, fan=make_fan(), name="别人", phone="13900000000", status=status
        )
    Application.objects.create(activity=limited, fan=fan, name="我", phone="13812345678")
    body = page(client.get("/activities/"))
    assert "2030-05-01 14:30" in body and "2030-04-30 18:00" in body
    assert "剩余 2 / 5" in body
    assert "不限" in body
    assert "待审核" in body


def test_the_list_is_never_cached(client, fan):
    """A fan's page carries their status: no shared cache may keep it."""
    response = client.get("/activities/")
    assert response.status_code == 200
    assert "no-cache" in response["Cache-Control"] and "private" in response["Cache-Control"]


@pytest.mark.parametrize("path", ["/activities/", "/applications/"])
def test_lists_take_the_same_queries_for_1_or_20_activities(
    client, fan, make_activity, django_assert_num_queries, path
):
    """One query for the fan, one for the rows, one for the fan's applications at most."""
    expected = {"/activities/": 3, "/applications/": 2}[path]
    Application.objects.create(activity=make_activity(), fan=fan, name="我", phone="13812345678")
    with django_assert_num_queries(expected):
        assert client.get(path).status_code == 200
    for _ in range(19):
        Application.objects.create(
            activity=make_activity(capacity=3), fan=fan, name="我", phone="13812345678"
        )
    with django_assert_num_queries(expected):
        body = page(client.get(path))
    assert body.count("待审核") == 20


# /activities/<id>/


def test_detail_shows_the_activity_with_line_breaks_and_an_apply_button(client, fan, activity):
    """The description keeps its line breaks, its HTML escaped; the button leads to the form."""
    activity.description = "第一行\n第二行 <b>粗</b>"
    activity.save()
    body = page(client.get(f"/activities/{activity.pk}/"))
    assert "第一行<br>第二行 &lt;b&gt;粗&lt;/b&gt;" in body
    assert "图书馆三楼" in body
    assert "剩余 10 / 10" in body
    assert f'href="{apply_url(activity)}"' in body and "申请参加" in body


def test_detail_shows_the_fans_application_instead_of_the_button(client, fan, activity):
    """Once applied, the page shows the status and links to the application."""
    application = Application.objects.create(
        activity=activity, fan=fan, name="我", phone="13812345678", status="approved"
    )
    body = page(client.get(f"/activities/{activity.pk}/"))
    assert "已通过" in body
    assert f'href="/applications/{application.pk}/"' in body
    assert "申请参加" not in body


@pytest.mark.parametrize("published", [False, None])
def test_detail_of_an_unpublished_or_missing_activity_is_not_found(
    client, fan, make_activity, published
):
    """Fans cannot tell a draft from an id that does not exist."""
    pk = make_activity(published=False).pk if published is False else 999
    response = client.get(f"/activities/{pk}/")
    assert response.status_code == 404
    assert "这个活动不存在或已下线" in page(response)


def test_detail_says_when_applications_are_closed(client, fan, make_activity):
    """Past apply_until there is no button, only the reason."""
    closed = make_activity(apply_until=timezone.now() - timedelta(minutes=1))
    body = page(client.get(f"/activities/{closed.pk}/"))
    assert "报名已截止" in body
    assert apply_url(closed) not in body


# /activities/<id>/apply/


def test_the_form_is_csrf_protected_multipart_and_empty_for_a_first_application(
    client, fan, activity
):
    """The form posts multipart with a CSRF token; a fan's first form is empty."""
    body = page(client.get(apply_url(activity)))
    assert 'method="post" enctype="multipart/form-data"' in body
    assert 'name="csrfmiddlewaretoken"' in body
    assert 'name="name"' in body and 'name="phone"' in body and 'name="note"' in body
    assert 'value="' not in body.split('name="name"')[1].split(">")[0]


def test_a_new_application_redirects_to_its_page(client, fan, activity):
    """POST/redirect/GET: the fan lands on their pending application."""
    response = apply(client, activity)
    application = application_of(fan, activity)
    assert response.status_code == 302
    assert response["Location"] == f"/applications/{application.pk}/"
    assert (application.name, application.phone, application.note) == (
        "张三",
        "13812345678",
        "带一本书",
    )
    assert application.status == Application.Status.PENDING
    body = page(client.get(response["Location"]))
    assert "待审核" in body and "张三" in body and "13812345678" in body


@pytest.mark.parametrize(
    "typed",
    ["+86 138 1234 5678", "0086-138-1234-5678", "138-1234-5678", "＋８６ １３８１２３４５６７８"],
)
def test_the_phone_is_stored_as_11_digits(client, fan, activity, typed):
    """Spaces, hyphens, +86/0086 and full-width digits are accepted and normalised."""
    assert apply(client, activity, phone=typed).status_code == 302
    assert application_of(fan, activity).phone == "13812345678"


@pytest.mark.parametrize(
    "typed", ["1381234567", "138123456789", "23812345678", "86 13812345678", "138-1234-567a"]
)
def test_a_wrong_phone_is_refused_and_the_form_keeps_what_was_typed(client, fan, activity, typed):
    """The form comes back with the error under the phone and the name and note kept."""
    response = apply(client, activity, phone=typed, note="我会准时到\n谢谢")
    body = page(response)
    assert response.status_code == 200
    assert "请填写 11 位手机号" in body
    assert 'value="张三"' in body
    assert f'value="{typed}"' in body
    assert "我会准时到\n谢谢</textarea>" in body
    assert not Application.objects.exists()


def test_a_name_of_51_characters_is_refused(client, fan, activity):
    """Names are at most 50 characters, counted after stripping spaces."""
    assert apply(client, activity, name="  " + "名" * 50 + "  ").status_code == 302
    response = apply(client, activity, name="名" * 51)
    assert "姓名最多 50 个字（现在 51 个）" in page(response)
    assert application_of(fan, activity).name == "名" * 50


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"name": "   "}, "请填写姓名"),
        ({"phone": ""}, "请填写手机号"),
        ({"note": "字" * 501}, "备注最多 500 个字"),
    ],
)
def test_form_errors_are_in_chinese(client, fan, activity, fields, error):
    """Each rule a fan can break has its own message, and nothing is stored."""
    response = apply(client, activity, **fields)
    assert response.status_code == 200
    assert error in page(response)
    assert not Application.objects.exists()


def test_a_note_counts_line_breaks_as_the_browser_does(client, fan, activity):
    """A 500-character note with CRLF line breaks fits, as the textarea let it."""
    note = "字" * 249 + "\r\n" + "字" * 250
    assert apply(client, activity, note=note).status_code == 302
    assert application_of(fan, activity).note == "字" * 249 + "\n" + "字" * 250


def test_the_form_is_prefilled_from_the_fans_last_application(client, fan, make_activity):
    """Name and phone come from the latest application anywhere; the note does not."""
    older, newer, target = make_activity(), make_activity(), make_activity()
    for place, name in ((older, "旧名字"), (newer, "新名字")):
        Application.objects.create(
            activity=place, fan=fan, name=name, phone="13900001111", note="上次的备注"
        )
    body = page(client.get(apply_url(target)))
    assert 'value="新名字"' in body and 'value="13900001111"' in body
    assert "上次的备注" not in body


def test_a_pending_application_can_be_edited(client, fan, activity):
    """The form shows the pending application, and a POST updates the same row."""
    apply(client, activity)
    body = page(client.get(apply_url(activity)))
    assert "修改申请" in body and 'value="张三"' in body and "带一本书</textarea>" in body
    response = apply(client, activity, name="李四", note="")
    application = application_of(fan, activity)
    assert response["Location"] == f"/applications/{application.pk}/"
    assert (application.name, application.note) == ("李四", "")
    assert Application.objects.count() == 1


@pytest.mark.parametrize("decision", ["approved", "rejected"])
def test_a_decided_application_cannot_be_changed(client, fan, activity, decision):
    """After the organiser decided, the form is refused (409) with a link to the application."""
    apply(client, activity)
    application = application_of(fan, activity)
    application_decide(application_id=application.pk, decision=decision, review_note="人满了")
    for response in (client.get(apply_url(activity)), apply(client, activity, name="李四")):
        assert response.status_code == 409
        assert "申请已审核" in page(response)
        assert f'href="/applications/{application.pk}/"' in page(response)
    application.refresh_from_db()
    assert (application.name, application.status) == ("张三", decision)


def test_applying_after_the_deadline_is_refused(client, fan, make_activity):
    """Past apply_until: 403 with its page, nothing stored."""
    closed = make_activity(apply_until=timezone.now() - timedelta(seconds=1))
    for response in (client.get(apply_url(closed)), apply(client, closed)):
        assert response.status_code == 403
        assert "报名已截止" in page(response)
    assert not Application.objects.exists()


def test_applying_to_an_unpublished_activity_is_not_found(client, fan, make_activity):
    """A draft cannot be applied to: 404 with its page, nothing stored."""
    draft = make_activity(published=False)
    for response in (client.get(apply_url(draft)), apply(client, draft)):
        assert response.status_code == 404
        assert "活动不存在" in page(response)
    assert not Application.objects.exists()


def test_applying_to_a_full_activity_is_refused(client, fan, make_fan, make_activity):
    """When pending and approved applications fill the places: 409, nothing stored."""
    full = make_activity(capacity=1)
    Application.objects.create(activity=full, fan=make_fan(), name="先到", phone="13900000000")
    for response in (client.get(apply_url(full)), apply(client, full)):
        assert response.status_code == 409
        assert "名额已满" in page(response)
    assert Application.objects.filter(fan=fan).count() == 0


def test_without_review_an_application_is_approved_at_once(client, fan, make_activity):
    """review_required=False: the application is approved on submit."""
    instant = make_activity(review_required=False)
    response = apply(client, instant)
    application = application_of(fan, instant)
    assert application.status == Application.Status.APPROVED
    assert "已通过" in page(client.get(response["Location"]))


def test_a_resent_post_leaves_one_application(client, fan, make_activity):
    """A refresh that resends the form, or a double tap, lands on the same application."""
    for review_required in (True, False):
        activity = make_activity(review_required=review_required)
        first, second = apply(client, activity), apply(client, activity)
        assert first.status_code == second.status_code == 302
        assert first["Location"] == second["Location"]
        assert Application.objects.filter(activity=activity).count() == 1


def test_a_post_without_the_csrf_token_is_refused(make_fan, activity):
    """The form is CSRF-protected: a forged cross-site POST gets 403 and stores nothing."""
    browser = Client(enforce_csrf_checks=True)
    sign_in(browser, make_fan())
    assert browser.post(apply_url(activity), FORM).status_code == 403
    assert not Application.objects.exists()


def test_the_form_posts_with_its_csrf_token(make_fan, activity):
    """The token the form carries is accepted."""
    browser = Client(enforce_csrf_checks=True)
    sign_in(browser, make_fan())
    token = browser.get(apply_url(activity)).context["csrf_token"]
    response = browser.post(apply_url(activity), FORM | {"csrfmiddlewaretoken": str(token)})
    assert response.status_code == 302


# /applications/ and /applications/<id>/


def test_my_applications_newest_first_with_status(client, fan, make_fan, make_activity):
    """The list shows only this fan's applications, newest first."""
    for title in ("第一个", "第二个"):
        apply(client, make_activity(title=title))
    Application.objects.create(
        activity=make_activity(title="别人的活动"), fan=make_fan(), name="别人", phone="13900000000"
    )
    body = page(client.get("/applications/"))
    assert "别人的活动" not in body
    assert body.index("第二个") < body.index("第一个")
    assert body.count("待审核") == 2


def test_the_application_page_explains_a_rejection(client, fan, activity):
    """A rejected application shows 未通过 and the organiser's note, and no edit link."""
    apply(client, activity)
    application = application_of(fan, activity)
    application_decide(application_id=application.pk, decision="rejected", review_note="年龄不符")
    body = page(client.get(f"/applications/{application.pk}/"))
    assert "未通过" in body and "年龄不符" in body
    assert apply_url(activity) not in body
    assert f"/applications/{application.pk}/withdraw/" not in body


def test_the_application_page_offers_edit_and_withdraw_while_pending(client, fan, activity):
    """While pending and open: an edit link and a withdraw link."""
    apply(client, activity)
    application = application_of(fan, activity)
    body = page(client.get(f"/applications/{application.pk}/"))
    assert f'href="{apply_url(activity)}"' in body
    assert f'href="/applications/{application.pk}/withdraw/"' in body


def test_another_fans_application_is_not_found(client, fan, make_fan, activity):
    """Another fan's application, its withdraw page and a missing id all answer 404."""
    stranger = make_fan("别人")
    theirs = Application.objects.create(
        activity=activity, fan=stranger, name="别人", phone="13900000000"
    )
    for path in (
        f"/applications/{theirs.pk}/",
        f"/applications/{theirs.pk}/withdraw/",
        "/applications/999/",
    ):
        response = client.get(path)
        assert response.status_code == 404
        assert "别人" not in page(response)
    assert client.post(f"/applications/{theirs.pk}/withdraw/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == Application.Status.PENDING


# /applications/<id>/withdraw/


def test_withdrawing_asks_first_then_frees_the_place(client, fan, make_fan, make_activity):
    """GET asks to confirm; POST withdraws; another fan can then take the only place."""
    single = make_activity(capacity=1)
    apply(client, single)
    application = application_of(fan, single)
    second = Client()
    sign_in(second, make_fan("第二位"))
    assert apply(second, single).status_code == 409

    confirm = client.get(f"/applications/{application.pk}/withdraw/")
    assert "确认撤回？" in page(confirm) and 'method="post"' in page(confirm)
    assert application_of(fan, single).status == Application.Status.PENDING
    response = client.post(f"/applications/{application.pk}/withdraw/")
    assert response["Location"] == f"/applications/{application.pk}/"
    assert "已撤回" in page(client.get(response["Location"]))

    assert apply(second, single).status_code == 302
    assert single.places_taken() == 1


def test_a_withdrawn_application_can_be_submitted_again(client, fan, activity):
    """After withdrawing, the fan may apply again while the activity is open."""
    apply(client, activity)
    application = application_of(fan, activity)
    client.post(f"/applications/{application.pk}/withdraw/")
    assert "重新申请" in page(client.get(f"/applications/{application.pk}/"))
    assert apply(client, activity).status_code == 302
    assert application_of(fan, activity).status == Application.Status.PENDING


# The fan's home


def test_home_shows_the_latest_applications_and_the_links(client, fan, make_activity):
    """Home lists up to three applications with status, and links to both lists."""
    for number in range(4):
        apply(client, make_activity(title=f"活动{number}"))
    body = page(client.get("/"))
    assert "你好，读书人" in body
    assert "活动3" in body and "活动1" in body and "活动0" not in body
    assert body.count("待审核") == 3
    assert 'href="/activities/"' in body and "查看活动" in body
    assert 'href="/applications/"' in body and "我的申请" in body


def test_home_reads_only_what_it_shows(client, fan, make_activity):
    """Two queries, no ORDER BY on the one-row fan lookup, no applicant's name or phone read."""
    for number in range(3):
        apply(client, make_activity(title=f"活动{number}"))
    with CaptureQueriesContext(connection) as captured:
        body = page(client.get("/"))
    assert "活动2" in body and body.count("待审核") == 3
    fan_sql, applications_sql = (query["sql"] for query in captured)
    assert "fans_fansprofile" in fan_sql and "ORDER BY" not in fan_sql
    assert "activities_application" in applications_sql
    assert '"phone"' not in applications_sql and '"name"' not in applications_sql


def test_home_without_applications_still_leads_to_activities(client, fan):
    """A fan with no application sees the way to the activities."""
    body = page(client.get("/"))
    assert "还没有申请" in body
    assert 'href="/activities/"' in body
