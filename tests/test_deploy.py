"""Production serving: gunicorn's config, check --deploy, the sign-in log, static
files, and deploy/nginx/xgc.conf terminating TLS in front of gunicorn."""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from django.core.management import call_command
from django.test import Client

from fans.models import FansProfile
from xgc.sandbox.process import SANDBOX_APP, free_port

from .bench_servers import GUNICORN_CONF, NGINX_PROXY, base_env, find_nginx, gunicorn, start_nginx
from .conftest import (
    PROJECT,
    answer,
    run_manage,
    service_missing,
    start_login,
    token_answer,
    userinfo_answer,
)

OPENID = "oFAN0000000000000000000001"
PRODUCTION_ENV = {
    "DEBUG": "0",
    "SECRET_KEY": "production-secret-" + "k3y" * 16,
    "ALLOWED_HOSTS": "xgc.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://xgc.example.com",
    "TRUST_X_FORWARDED": "1",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "WECHAT_SANDBOX": "0",
    "APP_ID": "wx" + "a1" * 8,
    "APP_SECRET": "a-real-secret-from-the-console",
    "TOKEN": "serverToken1",
    "REDIRECT_URL": "https://xgc.example.com/wechat/authorize/",
}


# gunicorn


def gunicorn_config(**env: str) -> dict[str, str]:
    """Return the settings gunicorn takes from deploy/gunicorn.conf.py with env."""
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF), "--print-config"],
        cwd="/",
        env=base_env(DEBUG="1") | env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return dict(re.findall(r"^(\w+) += (.*)$", result.stdout, re.MULTILINE))


def test_gunicorn_defaults_suit_xgc():
    """Threaded workers whose timeouts outlast several WeChat calls in a row."""
    config = gunicorn_config()
    assert config["worker_class"] == "gthread"
    assert (config["workers"], config["threads"]) == ("2", "16")
    assert config["bind"] == "['127.0.0.1:8000']"
    assert int(config["timeout"]) == int(config["graceful_timeout"]) == 30
    assert config["wsgi_app"] == "xgc.wsgi:application"
    assert config["chdir"] == str(PROJECT)
    # Several instances as one user would share one control socket.
    assert config["control_socket_disable"] == "True"


def test_gunicorn_takes_its_values_from_the_environment():
    config = gunicorn_config(
        GUNICORN_BIND="127.0.0.1:9001",
        WEB_CONCURRENCY="4",
        GUNICORN_THREADS="3",
        GUNICORN_KEEPALIVE="5",
        WECHAT_HTTP_TIMEOUT="12",
    )
    assert config["bind"] == "['127.0.0.1:9001']"
    assert (config["workers"], config["threads"], config["keepalive"]) == ("4", "3", "5")
    assert int(config["timeout"]) > 3 * 12


def test_gunicorn_refuses_a_malformed_number():
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF), "--print-config"],
        env=base_env(DEBUG="1", GUNICORN_THREADS="eight"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "GUNICORN_THREADS='eight' is not a positive whole number" in result.stderr


# check --deploy


def write_env(path: Path, **overrides: str) -> str:
    values = PRODUCTION_ENV | {"DATABASE_URL": f"sqlite:///{path.parent / 'db.sqlite3'}"}
    path.write_text("".join(f"{key}={value}\n" for key, value in (values | overrides).items()))
    return str(path)


def test_check_deploy_is_clean_with_a_production_env(tmp_path):
    result = run_manage(
        "check", "--deploy", "--fail-level", "WARNING", env_file=write_env(tmp_path / ".env")
    )
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_https_settings_follow_an_https_redirect_url(tmp_path):
    """Secure cookies, the HTTPS redirect and HSTS come from REDIRECT_URL's scheme."""
    http = write_env(tmp_path / ".env", REDIRECT_URL="http://xgc.example.com/wechat/authorize/")
    result = run_manage("check", "--deploy", env_file=http)
    for check_id in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert check_id in result.stderr


# The sign-in log


def sign_in_lines(caplog) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.getMessage().startswith("sign-in ")]


@pytest.mark.django_db
def test_a_sign_in_logs_one_line_with_the_openids_tail_and_no_token(client, wechat_api, caplog):
    FansProfile.create_fan(userinfo_answer(OPENID))
    caplog.set_level(logging.INFO, logger="fans")
    state = start_login(client)["state"]
    answer(wechat_api, "/sns/oauth2/access_token", token_answer(OPENID))
    client.get("/wechat/authorize/", {"code": "CODE1", "state": state})
    [line] = sign_in_lines(caplog)
    assert line.levelno == logging.INFO
    assert re.fullmatch(
        r"sign-in outcome=signed_in scope=snsapi_base fan=…000001 errcode=- ms=\d+",
        line.getMessage(),
    )
    assert OPENID not in caplog.text
    assert "ACCESS_TOKEN_OF_FAN" not in caplog.text and "REFRESH_TOKEN" not in caplog.text


@pytest.mark.django_db
def test_a_new_fan_logs_that_consent_is_needed(client, wechat_api, caplog):
    caplog.set_level(logging.INFO, logger="fans")
    state = start_login(client)["state"]
    answer(wechat_api, "/sns/oauth2/access_token", token_answer(OPENID))
    client.get("/wechat/authorize/", {"code": "CODE1", "state": state})
    [line] = sign_in_lines(caplog)
    assert "outcome=consent_needed" in line.getMessage()


def test_a_failed_sign_in_logs_one_warning_with_the_errcode(client, wechat_api, caplog):
    caplog.set_level(logging.INFO, logger="fans")
    state = start_login(client)["state"]
    answer(
        wechat_api, "/sns/oauth2/access_token", {"errcode": 40125, "errmsg": "invalid appsecret"}
    )
    client.get("/wechat/authorize/", {"code": "CODE1", "state": state})
    assert [record.levelno for record in caplog.records if record.name == "fans.views"] == [
        logging.WARNING
    ]
    message = sign_in_lines(caplog)[0].getMessage()
    assert "outcome=failed scope=snsapi_base fan=- errcode=40125" in message
    assert 'error="WeChat error 40125: invalid appsecret"' in message
    assert "app-secret-never-logged" not in caplog.text


def test_a_state_from_elsewhere_logs_a_warning_after_one_silent_restart(client, caplog):
    caplog.set_level(logging.INFO, logger="fans")
    client.get("/wechat/authorize/", {"code": "C", "state": "notours"})
    client.get("/wechat/authorize/", {"code": "C", "state": "notours", "restarted": "1"})
    outcomes = [re.search(r"outcome=(\w+)", r.getMessage())[1] for r in sign_in_lines(caplog)]
    assert outcomes == ["state_restarted", "state_refused"]
    assert sign_in_lines(caplog)[1].levelno == logging.WARNING


# Static files


def test_whitenoise_serves_collected_static_files_compressed(settings, tmp_path):
    settings.STATIC_ROOT = tmp_path
    call_command("collectstatic", "--no-input", verbosity=0)
    response = Client().get("/static/xgc/xgc.css", HTTP_ACCEPT_ENCODING="gzip")
    assert response.status_code == 200
    assert response["Content-Encoding"] == "gzip"
    assert "max-age" in response["Cache-Control"]


# deploy/nginx/xgc.conf in front of gunicorn


@pytest.fixture
def certificate(tmp_path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1."""
    if shutil.which("openssl") is None:
        service_missing("openssl", "not in PATH (apt-get install openssl)")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
        + ["-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


def site_on_loopback(replacements: dict[str, str]) -> str:
    """Return deploy/nginx/xgc.conf with its addresses and paths replaced."""
    site = (PROJECT / "deploy" / "nginx" / "xgc.conf").read_text()
    for old, new in replacements.items():
        assert old in site, f"deploy/nginx/xgc.conf no longer has {old!r}"
        site = site.replace(old, new)
    return site


def test_site_example_ends_tls_and_xgc_sees_https(site):
    """X-Forwarded-Proto reaches xgc, which sends HSTS on secure requests only."""
    response = requests.get(
        f"{site['https']}/wechat/login/",
        # In WeChat: other browsers get xgc's page with a QR code instead.
        headers={"User-Agent": "Mozilla/5.0 MicroMessenger/8.0.50"},
        verify=site["cert"],
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 302
    assert response.headers["Location"].startswith("https://open.weixin.qq.com/")
    assert (
        response.headers["Strict-Transport-Security"] == "max-age=3600; includeSubDomains; preload"
    )


def test_site_example_sends_fans_on_http_to_https(site):
    response = requests.get(f"{site['http']}/wechat/login/", allow_redirects=False, timeout=10)
    assert response.status_code == 301
    assert response.headers["Location"].startswith("https://")


def test_site_example_lets_wechat_reach_its_urls_over_http(site):
    """WeChat's server pushes and its domain check do not follow redirects."""
    verify = requests.get(f"{site['http']}/MP_verify_abc123.txt", allow_redirects=False, timeout=10)
    push = requests.get(f"{site['http']}/wechat/", allow_redirects=False, timeout=10)
    assert (verify.status_code, verify.text) == (200, "abc123")
    assert push.status_code == 403  # unsigned, so refused by xgc itself


def test_site_example_serves_static_files_itself(site):
    response = requests.get(f"{site['https']}/static/xgc/xgc.css", verify=site["cert"], timeout=10)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "max-age=600"
    assert response.text == (PROJECT / "static" / "xgc" / "xgc.css").read_text()


# Fans' photos through deploy/nginx/xgc.conf: xgc checks, nginx sends the file

SEED_PHOTO = """
import io
from PIL import Image as Pillow
from django.core.signing import get_cookie_signer
from activities.models import Activity, Application
from activities.photo_files import save_photo
from activities.photos import Image, ProcessedPhoto
from fans.auth import FAN_COOKIE, FAN_COOKIE_SALT
from fans.models import FansProfile

def jpeg(size):
    buffer = io.BytesIO()
    Pillow.new("RGB", size, (200, 30, 30)).save(buffer, "JPEG")
    return buffer.getvalue()

fan = FansProfile.objects.create(openid="oFANPHOTO", nickname="n", userinfo={})
activity = Activity.objects.create(title="t", published=True)
application = Application.objects.create(activity=activity, fan=fan, name="n", phone="1")
processed = ProcessedPhoto(
    display=Image(jpeg((64, 48)), 64, 48),
    thumbnail=Image(jpeg((32, 24)), 32, 24),
    content_type="image/jpeg",
    extension="jpg",
    sha256="0" * 64,
    original_bytes=1000,
)
photo = save_photo(application=application, photo=processed, source="upload")
cookie = get_cookie_signer(salt=FAN_COOKIE + FAN_COOKIE_SALT).sign(str(fan.pk))
print(photo.pk, photo.display.name, cookie)
"""


@contextmanager
def serving_site(tmp_path: Path, certificate, *, with_photo: bool) -> Iterator[dict]:
    """Serve the site example on loopback ports, in front of one xgc gunicorn.

    Photos are on disk behind X-Accel-Redirect. with_photo seeds a fan's photo
    and adds it (pk, storage name), the fan's fanid cookie and MEDIA_ROOT.
    """
    if find_nginx() is None:
        service_missing("nginx", "not in PATH or /usr/sbin (apt-get install nginx)")
    http_port, https_port, app_port = free_port(), free_port(), free_port()
    static, media = tmp_path / "static", tmp_path / "media"
    shutil.copytree(PROJECT / "static", static)
    cert, key = certificate
    env = base_env(
        **SANDBOX_APP,
        ALLOWED_HOSTS="127.0.0.1",
        TRUST_X_FORWARDED="1",
        REDIRECT_URL=f"https://127.0.0.1:{https_port}/wechat/authorize/",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        WECHAT_MP_VERIFY="abc123",
        WEB_CONCURRENCY="1",
        MEDIA_ROOT=str(media),
        PHOTO_X_ACCEL_REDIRECT="/protected-media/",
    )
    urls = {
        "http": f"http://127.0.0.1:{http_port}",
        "https": f"https://127.0.0.1:{https_port}",
        "cert": str(cert),
    }
    if with_photo:
        manage = [sys.executable, "manage.py"]
        for command in (
            ["migrate", "--no-input", "-v", "0"],
            ["shell", "-v", "0", "-c", SEED_PHOTO],
        ):
            result = subprocess.run(
                manage + command, cwd=PROJECT, env=env, capture_output=True, text=True, timeout=120
            )
            assert result.returncode == 0, result.stderr
        pk, name, cookie = result.stdout.split()
        urls |= {"photo": (int(pk), name), "cookie": cookie, "media": media}
    servers = []
    try:
        servers.append(gunicorn("xgc", env, tmp_path, port=app_port, ready_path="/wechat/"))
        http = site_on_loopback(
            {
                "    server 127.0.0.1:8000;\n    server 127.0.0.1:8001;\n": f"    server 127.0.0.1:{app_port};\n",
                "    listen 80;\n    listen [::]:80;\n": f"    listen 127.0.0.1:{http_port};\n",
                "    listen 443 ssl http2;\n    listen [::]:443 ssl http2;\n": f"    listen 127.0.0.1:{https_port} ssl http2;\n",
                "/etc/letsencrypt/live/xgc.example.com/fullchain.pem": str(cert),
                "/etc/letsencrypt/live/xgc.example.com/privkey.pem": str(key),
                "/srv/xgc/staticfiles/": f"{static}/",
                "/srv/xgc/media/": f"{media}/",
                "snippets/xgc-proxy.conf": str(NGINX_PROXY),
            }
        )
        servers.append(start_nginx(http, urls["http"], tmp_path))
        yield urls
    finally:
        for server in reversed(servers):
            server.stop()


@pytest.fixture
def site(tmp_path, certificate):
    with serving_site(tmp_path, certificate, with_photo=False) as urls:
        yield urls


@pytest.fixture
def photo_site(tmp_path, certificate):
    with serving_site(tmp_path, certificate, with_photo=True) as urls:
        yield urls


def test_site_example_sends_a_fan_their_photo_from_the_internal_location(photo_site):
    """xgc checks the fan and answers X-Accel-Redirect; nginx sends the file."""
    pk, name = photo_site["photo"]
    url = f"{photo_site['https']}/photos/{pk}/display/"

    response = requests.get(
        url, cookies={"fanid": photo_site["cookie"]}, verify=photo_site["cert"], timeout=10
    )

    assert response.status_code == 200
    assert response.content == (photo_site["media"] / name).read_bytes()
    assert response.headers["Content-Type"] == "image/jpeg"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "private, max-age=300"
    assert response.headers["Vary"] == "Cookie"
    assert "X-Accel-Redirect" not in response.headers


def test_site_example_keeps_photos_from_anyone_else(photo_site):
    pk, name = photo_site["photo"]
    https, cert = photo_site["https"], photo_site["cert"]
    anonymous = requests.get(f"{https}/photos/{pk}/display/", verify=cert, timeout=10)
    # The internal location answers only xgc's X-Accel-Redirect, never a client.
    direct = requests.get(f"{https}/protected-media/{name}", verify=cert, timeout=10)
    assert (anonymous.status_code, direct.status_code) == (404, 404)
    assert direct.content != (photo_site["media"] / name).read_bytes()
