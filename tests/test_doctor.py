"""``manage.py doctor`` says what to fix, one line each, and fails when it must."""

from io import StringIO
from urllib.parse import urlsplit

import pytest

from django.core.management import CommandError, call_command
from django.db import OperationalError, connection

from xgc.settings import redis_cache

from .conftest import API, PROJECT, run_manage

pytestmark = pytest.mark.django_db


def doctor(*args: str) -> tuple[str, bool]:
    """Run doctor; return its output and whether it passed."""
    out = StringIO()
    try:
        call_command("doctor", *args, stdout=out)
    except CommandError:
        return out.getvalue(), False
    return out.getvalue(), True


def test_a_good_configuration_passes_with_warnings_for_one_process():
    output, passed = doctor()
    assert passed
    assert "ok    settings: APP_ID, APP_SECRET and REDIRECT_URL are set" in output
    assert f"ok    database: {connection.vendor} reachable" in output
    assert "warn  cache: REDIS_URL empty" in output
    assert "warn  WECHAT_SANDBOX: on" in output


def test_the_sandbox_line_names_where_sign_in_comes_back():
    output, _ = doctor()
    assert (
        "warn  WECHAT_SANDBOX: on: the built-in sandbox stands in for WeChat and sends fans back "
        "to https://xgc.example.com/wechat/authorize/ (REDIRECT_URL)"
    ) in output


def test_redirect_url_elsewhere_than_the_run_address_is_one_warning_line(settings):
    settings.XGC_RUN_ADDR = "127.0.0.1:8765"
    output, passed = doctor()
    assert passed
    [line] = [line for line in output.splitlines() if "fans.W002" in line]
    assert line.startswith(
        "warn  fans.W002: REDIRECT_URL is https://xgc.example.com/wechat/authorize/ "
        "but make run serves 127.0.0.1:8765"
    )


def test_a_hand_edited_env_file_gets_the_warning_from_doctor(tmp_path):
    """A .env from .env.example whose REDIRECT_URL still names port 8000, served on 8765."""
    env = tmp_path / ".env"
    example = (PROJECT / ".env.example").read_text(encoding="utf-8")
    env.write_text(
        example.replace(
            "\nREDIRECT_URL=\n", "\nREDIRECT_URL=http://127.0.0.1:8000/wechat/authorize/\n"
        ),
        encoding="utf-8",
    )
    result = run_manage(
        "doctor",
        env_file=str(env),
        XGC_RUN_ADDR="127.0.0.1:8765",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
    )
    assert (
        "warn  fans.W002: REDIRECT_URL is http://127.0.0.1:8000/wechat/authorize/ "
        "but make run serves 127.0.0.1:8765"
    ) in result.stdout


@pytest.mark.parametrize(
    ("setting", "value", "line"),
    [
        ("APP_SECRET", "", "FAIL  fans.E002: APP_SECRET is empty"),
        ("TOKEN", "a b", "FAIL  fans.E006: TOKEN must be 3 to 32 letters or digits"),
        ("REDIRECT_URL", "wechat/authorize/", "FAIL  fans.E003"),
        ("REDIRECT_URL", "https://xgc.example.com/other/", "FAIL  fans.E004"),
        ("ALLOWED_HOSTS", ["other.example"], "FAIL  ALLOWED_HOSTS: add xgc.example.com"),
    ],
)
def test_each_problem_fails_with_one_line_that_says_what_to_fix(settings, setting, value, line):
    setattr(settings, setting, value)
    output, passed = doctor()
    assert not passed
    assert line in output


def test_a_port_in_redirect_url_is_only_a_warning(settings):
    settings.REDIRECT_URL = "https://xgc.example.com:8443/wechat/authorize/"
    output, passed = doctor()
    assert passed
    assert "warn  REDIRECT_URL: has port 8443" in output


def test_an_unreachable_database_fails(monkeypatch):
    def refuse():
        raise OperationalError("connection refused")

    monkeypatch.setattr(connection, "ensure_connection", refuse)
    output, passed = doctor()
    assert not passed
    assert "FAIL  database: not reachable (connection refused)" in output


def test_an_unreachable_redis_fails(settings, unreachable_redis):
    settings.REDIS_URL = f"redis://127.0.0.1:{unreachable_redis}/0"
    output, passed = doctor()
    assert not passed
    assert "FAIL  cache: Redis not reachable" in output


@pytest.mark.redis
def test_a_reachable_redis_passes(settings, redis_url):
    settings.REDIS_URL = redis_url
    settings.CACHES = {"default": redis_cache(redis_url)}
    output, _ = doctor()
    assert "ok    cache: Redis reachable" in output


@pytest.fixture
def deployed(live_server, settings):
    """xgc with the sandbox as WeChat, served on loopback as if public."""
    host = urlsplit(live_server.url)
    settings.ALLOWED_HOSTS = [host.hostname]
    settings.REDIRECT_URL = f"{live_server.url}/wechat/authorize/"
    settings.WECHAT_OPEN_BASE_URL = settings.WECHAT_API_BASE_URL = f"{live_server.url}/sandbox"
    settings.WECHAT_SANDBOX_OAUTH_DOMAIN = host.netloc
    return live_server


@pytest.mark.django_db(transaction=True)
def test_online_checks_pass_against_the_sandbox(deployed):
    output, passed = doctor("--online")
    assert passed, output
    assert "ok    WeChat: accepted APP_ID and APP_SECRET" in output
    assert f"ok    public host: {deployed.url}/wechat/authorize/ answers with this app" in output


@pytest.mark.parametrize(
    ("errcode", "hint"),
    [
        (40125, "APP_SECRET is wrong"),
        (40164, "this server's IP is not on the account's IP whitelist"),
    ],
)
def test_online_checks_explain_a_refused_token(wechat_api, errcode, hint):
    wechat_api.post(API + "/cgi-bin/stable_token", json={"errcode": errcode, "errmsg": "no"})
    wechat_api.get("https://xgc.example.com/wechat/authorize/", status=404)
    output, passed = doctor("--online")
    assert not passed
    assert f"FAIL  WeChat: WeChat error {errcode}: no: {hint}" in output
    assert "app-secret-never-logged" not in output


@pytest.mark.django_db(transaction=True)
def test_online_checks_notice_another_app_on_the_public_host(deployed, settings):
    settings.REDIRECT_URL = f"{deployed.url}/sandbox/"
    output, passed = doctor("--online")
    assert not passed
    assert "answered HTTP 200, not xgc's callback" in output


@pytest.mark.django_db(transaction=True)
def test_online_checks_fetch_the_mp_verify_file(deployed, settings):
    settings.WECHAT_MP_VERIFY = "AbC123"
    output, passed = doctor("--online")
    assert passed, output
    assert "ok    MP_verify:" in output


def test_an_empty_template_id_is_a_warning_that_says_what_fans_miss(settings):
    settings.WECHAT_TEMPLATE_APPLICATION_RESULT = ""
    output, passed = doctor()
    assert passed
    assert "warn  WECHAT_TEMPLATE_APPLICATION_RESULT: empty: fans get no template message" in output
    settings.WECHAT_TEMPLATE_APPLICATION_RESULT = "tmplApplicationResult"
    assert "WECHAT_TEMPLATE_APPLICATION_RESULT" not in doctor()[0]


def test_a_malformed_template_keyword_fails(settings):
    settings.WECHAT_TEMPLATE_KEY_TIME = "{{time3.DATA}}"
    output, passed = doctor()
    assert not passed
    assert "FAIL  activities.E001: WECHAT_TEMPLATE_KEY_TIME" in output


def test_tasks_nobody_takes_say_the_worker_is_not_running(make_fan, make_activity, settings):
    from datetime import timedelta

    from django_tasks_db.models import DBTaskResult

    from activities.models import Application
    from activities.services import application_decide, application_submit

    assert "ok    task queue: no task is overdue" in doctor()[0]
    settings.WECHAT_TEMPLATE_APPLICATION_RESULT = "tmplApplicationResult"
    application = application_submit(
        activity_id=make_activity().pk, fan=make_fan(), name="张三", phone="13812345678", note=""
    )
    application_decide(application_id=application.pk, decision=Application.Status.APPROVED)
    assert "ok    task queue" in doctor()[0]  # just queued: a worker has not had time yet
    DBTaskResult.objects.update(
        enqueued_at=DBTaskResult.objects.get().enqueued_at - timedelta(minutes=6)
    )
    output, passed = doctor()
    assert passed
    assert (
        "warn  task queue: 1 task(s) waiting for over 5 minutes: is python manage.py worker running?"
        in output
    )
