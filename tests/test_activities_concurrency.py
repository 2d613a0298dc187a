"""Applications that arrive at the same moment, on PostgreSQL's row locks."""

import threading

import pytest

from django.db import connection
from django.test import Client

from activities.models import Application

from .conftest import sign_in

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

FORM = {"name": "张三", "phone": "13812345678", "note": ""}
# Bounds every wait, so that a deadlock fails the test instead of hanging it.
TIMEOUT = 60


def post_together(browsers: list[Client], path: str) -> list:
    """POST the form from every browser at once; return the responses."""
    barrier = threading.Barrier(len(browsers), timeout=TIMEOUT)
    responses = [None] * len(browsers)

    def submit(number: int) -> None:
        try:
            barrier.wait()
            responses[number] = browsers[number].post(path, FORM)
        finally:
            connection.close()

    threads = [threading.Thread(target=submit, args=(n,)) for n in range(len(browsers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=TIMEOUT)
    assert not any(thread.is_alive() for thread in threads), "a request did not finish"
    return responses


def test_fifty_fans_at_once_take_exactly_the_ten_places(make_fan, make_activity):
    """Ten applications hold the ten places; the forty others get the 名额已满 page (409)."""
    activity = make_activity(capacity=10)
    browsers = []
    for _ in range(50):
        browser = Client(raise_request_exception=False)
        sign_in(browser, make_fan())
        browsers.append(browser)
    responses = post_together(browsers, f"/activities/{activity.pk}/apply/")
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [302] * 10 + [409] * 40
    refusals = [r for r in responses if r.status_code == 409]
    assert all("名额已满" in r.content.decode() for r in refusals)
    held = Application.objects.filter(activity=activity, status__in=Application.HOLDS_PLACE)
    assert held.count() == 10
    assert Application.objects.filter(activity=activity).count() == 10


def test_one_fan_submitting_eight_times_at_once_leaves_one_application(make_fan, make_activity):
    """Eight simultaneous submits of one fan (taps, tabs) all land on one application."""
    activity = make_activity(capacity=10)
    fan = make_fan()
    browsers = []
    for _ in range(8):
        browser = Client(raise_request_exception=False)
        sign_in(browser, fan)
        browsers.append(browser)
    responses = post_together(browsers, f"/activities/{activity.pk}/apply/")
    application = Application.objects.get(activity=activity, fan=fan)
    assert [response.status_code for response in responses] == [302] * 8
    assert {response["Location"] for response in responses} == {f"/applications/{application.pk}/"}
    assert application.status == Application.Status.PENDING
