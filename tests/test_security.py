"""Security headers on every page, limited admin logins, a movable admin."""

import pytest

from django.contrib.auth.models import User
from django.test import RequestFactory

from xgc.security import client_ip

from .conftest import run_manage, sign_in

pytestmark = pytest.mark.django_db

ADMIN_LOGIN = "/admin/login/?next=/admin/"


@pytest.mark.parametrize("path", ["/", "/wechat/login/?scope=bad", "/admin/login/", "/sandbox/"])
def test_pages_carry_the_security_headers(client, make_fan, path):
    sign_in(client, make_fan())
    response = client.get(path)
    assert response.status_code in (200, 400)
    policy = response["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "script-src 'self' https://res.wx.qq.com https://res2.wx.qq.com" in policy
    assert "frame-ancestors 'none'" in policy
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize("path", ["/", "/wechat/login/?next=/"])
def test_redirects_carry_no_policy_and_the_other_headers(client, path):
    """Browsers render no body of a redirect, so xgc spends no CPU on its policy."""
    response = client.get(path, HTTP_USER_AGENT="MicroMessenger/8.0.50")
    assert response.status_code == 302
    assert "Content-Security-Policy" not in response
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"


@pytest.fixture
def admin_user():
    return User.objects.create_superuser("boss", password="the-right-password")


def log_in(client, password, username="boss", address="203.0.113.7"):
    return client.post(
        ADMIN_LOGIN, {"username": username, "password": password}, REMOTE_ADDR=address
    )


def test_five_wrong_passwords_lock_that_user_out_from_that_address(client, admin_user):
    for _ in range(4):
        assert log_in(client, "wrong").status_code == 200  # the form again
    assert log_in(client, "wrong").status_code == 429
    assert log_in(client, "the-right-password").status_code == 429
    # Another address still gets in: one attacker cannot lock the admins out.
    assert log_in(client, "the-right-password", address="198.51.100.9").status_code == 302


def test_a_right_password_before_the_limit_signs_in(client, admin_user):
    for _ in range(4):
        log_in(client, "wrong")
    assert log_in(client, "the-right-password").status_code == 302


@pytest.mark.parametrize(
    ("trusted", "forwarded", "expected"),
    [
        (False, "1.2.3.4", "10.0.0.2"),
        (True, "1.2.3.4", "1.2.3.4"),
        (True, "6.6.6.6, 1.2.3.4", "1.2.3.4"),
        (True, "", "10.0.0.2"),
    ],
)
def test_client_ip_trusts_the_proxy_only_when_told(settings, trusted, forwarded, expected):
    settings.TRUST_X_FORWARDED = trusted
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=forwarded)
    assert client_ip(request) == expected


def test_the_admin_can_live_elsewhere(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("DEBUG=1\nADMIN_URL=backstage-7f3k/\n", encoding="utf-8")
    result = run_manage(
        "shell",
        "--no-imports",
        "-c",
        "from django.urls import resolve, Resolver404\n"
        "print(resolve('/backstage-7f3k/').app_name)\n"
        "try:\n    resolve('/admin/')\nexcept Resolver404:\n    print('gone')",
        env_file=str(env_file),
    )
    assert result.stdout.split() == ["admin", "gone"]


@pytest.mark.parametrize("value", ["/admin/", "admin", "ad min/"])
def test_a_malformed_admin_url_is_reported(settings, value):
    from fans.checks import check_wechat_settings

    settings.ADMIN_URL = value
    assert [message.id for message in check_wechat_settings()] == ["fans.E009"]
