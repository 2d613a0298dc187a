"""Pages that stay cheap however many applications there are: a constant number of queries."""

from __future__ import annotations

import pytest

from django.db import connection
from django.test.utils import CaptureQueriesContext

from activities.models import Activity, Application
from fans.models import FansProfile

from .conftest import sign_in


def add_fans(count: int, prefix: str) -> list[FansProfile]:
    FansProfile.objects.bulk_create(
        FansProfile(openid=f"o{prefix}{n:020d}", nickname=f"粉丝{n}", userinfo={"n": n})
        for n in range(count)
    )
    return list(FansProfile.objects.filter(openid__startswith=f"o{prefix}"))


def add_applications(activities: list[Activity], fans: list[FansProfile]) -> None:
    Application.objects.bulk_create(
        (
            Application(activity=activity, fan=fan, name="张三", phone="13812345678")
            for activity in activities
            for fan in fans
        ),
        batch_size=5000,
    )


def queries(client, path: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(path).status_code == 200
    return len(captured)


def test_activity_pages_take_the_same_queries_with_10000_applications(client, make_fan):
    fan = make_fan()
    sign_in(client, fan)
    quiet = Activity.objects.create(title="人少的活动", published=True, capacity=20000)
    busy = Activity.objects.create(title="人多的活动", published=True, capacity=20000)
    add_applications([quiet], add_fans(1, "QUIET"))
    before = {path: queries(client, path) for path in ("/activities/", f"/activities/{busy.pk}/")}

    add_applications([busy], add_fans(10_000, "BUSY"))
    after = {path: queries(client, path) for path in ("/activities/", f"/activities/{busy.pk}/")}
    assert after == before
    assert "剩余 10000 / 20000" in client.get(f"/activities/{busy.pk}/").content.decode()


@pytest.mark.parametrize("path", ["/admin/activities/application/", "/admin/activities/activity/"])
def test_admin_lists_page_many_applications_with_the_same_queries(admin_client, path):
    """No count over the whole table besides the paginator's own (show_full_result_count)."""
    activities = Activity.objects.bulk_create(
        Activity(title=f"活动{n}", published=True) for n in range(20)
    )
    fans = add_fans(10, "FEW")
    add_applications(activities[:1], fans)
    few = queries(admin_client, path)

    add_applications(activities[1:], add_fans(500, "MANY"))
    assert Application.objects.count() == 9_510
    with CaptureQueriesContext(connection) as captured:
        assert admin_client.get(path).status_code == 200
    assert len(captured) == few
    counts = [query["sql"] for query in captured if "COUNT(*)" in query["sql"].upper()]
    assert len(counts) <= 1, counts
