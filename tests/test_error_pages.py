"""Fans see xgc's own pages in Chinese for errors, never Django's English ones or a trace."""

import pytest

from django.test import Client
from django.urls import path

from .conftest import sign_in


def fails(request):
    raise RuntimeError("a bug")


urlpatterns = [path("fails/", fails)]


def test_an_unknown_page_is_a_chinese_404(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert "页面不存在" in response.content.decode()


@pytest.mark.urls("tests.test_error_pages")
def test_a_bug_is_a_chinese_500_without_a_trace():
    client = Client(raise_request_exception=False)
    response = client.get("/fails/")
    assert response.status_code == 500
    body = response.content.decode()
    assert "出错了" in body and "RuntimeError" not in body and "a bug" not in body


def test_a_form_posted_without_its_csrf_token_gets_a_chinese_403(make_fan, make_activity):
    client = Client(enforce_csrf_checks=True)
    sign_in(client, make_fan())
    activity = make_activity()
    response = client.post(f"/activities/{activity.pk}/apply/", {"name": "张三"})
    assert response.status_code == 403
    assert "页面已过期" in response.content.decode()
