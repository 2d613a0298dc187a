"""Settings from .env and the system checks that explain bad ones."""

import pytest

from fans.checks import check_deployment, check_wechat_settings

from .conftest import PROJECT, run_manage


def ids(messages):
    return sorted(message.id for message in messages)


def test_test_settings_pass_every_check():
    assert check_wechat_settings() == []


@pytest.mark.parametrize(
    ("setting", "value", "expected"),
    [
        ("APP_ID", "", "fans.E001"),
        ("APP_ID", "gh_0123456789ab", "fans.W001"),
        ("APP_SECRET", "", "fans.E002"),
        ("REDIRECT_URL", "", "fans.E003"),
        ("REDIRECT_URL", "xgc.example.com/wechat/authorize/", "fans.E003"),
        ("REDIRECT_URL", "https://xgc.example.com/wechat/callback/", "fans.E004"),
        ("WECHAT_API_BASE_URL", "api.weixin.qq.com", "fans.E005"),
        ("TOKEN", "no spaces allowed", "fans.E006"),
        ("TOKEN", "ab", "fans.E006"),
        ("WECHAT_TOKEN_ENDPOINT", "client_credential", "fans.E008"),
        (
            "XGC_INVALID_SETTINGS",
            {"WECHAT_HTTP_TIMEOUT": "'soon' is not a positive float"},
            "fans.E007",
        ),
    ],
)
def test_each_bad_setting_is_reported_with_a_hint_naming_its_key(
    settings, setting, value, expected
):
    setattr(settings, setting, value)
    messages = check_wechat_settings()
    key = next(iter(value)) if isinstance(value, dict) else setting
    assert ids(messages) == [expected]
    assert f"Set {key} in .env" in messages[0].hint


def test_deploy_checks_flag_development_values(settings):
    settings.SECRET_KEY = settings.DEVELOPMENT_SECRET_KEY
    settings.REDIRECT_URL = "http://xgc.example.com/wechat/authorize/"
    settings.APP_ID = "wx0123456789abcdef"
    settings.TOKEN = settings.DEVELOPMENT_TOKEN
    assert ids(check_deployment()) == ["fans.W101", "fans.W102", "fans.W103", "fans.W104"]


def test_deploy_checks_pass_a_production_configuration():
    assert check_deployment() == []


@pytest.fixture
def env_file(tmp_path):
    path = tmp_path / ".env"
    path.write_text(
        "DEBUG=1\n"
        "APP_ID=wxaaaaaaaaaaaaaaaa\n"
        "APP_SECRET=from-the-env-file\n"
        "REDIRECT_URL=https://xgc.example.com/wechat/authorize/\n"
        "WECHAT_HTTP_TIMEOUT=soon\n"
        f"DATABASE_URL=sqlite:///{tmp_path / 'db.sqlite3'}\n",
        encoding="utf-8",
    )
    return str(path)


def test_env_file_is_read_and_bad_values_are_named(env_file):
    result = run_manage("check", env_file=env_file)
    assert result.returncode == 1
    assert "fans.E007" in result.stderr
    assert "WECHAT_HTTP_TIMEOUT: 'soon' is not a positive float" in result.stderr
    assert "Set WECHAT_HTTP_TIMEOUT in .env" in result.stderr


def test_real_environment_wins_over_the_env_file(env_file):
    result = run_manage(
        "shell",
        "--no-imports",
        "-c",
        "from django.conf import settings; print(settings.APP_SECRET, settings.WECHAT_HTTP_TIMEOUT)",
        env_file=env_file,
        APP_SECRET="from-the-environment",
        WECHAT_HTTP_TIMEOUT="2.5",
    )
    assert result.stdout.split() == ["from-the-environment", "2.5"]


def test_missing_secret_key_with_debug_off_refuses_to_start(tmp_path):
    (tmp_path / ".env").write_text("DEBUG=0\n", encoding="utf-8")
    result = run_manage("check", env_file=str(tmp_path / ".env"))
    assert result.returncode == 1
    assert "SECRET_KEY is empty and DEBUG is off" in result.stderr


def test_unparsable_database_url_refuses_to_start(tmp_path):
    (tmp_path / ".env").write_text("DEBUG=1\nDATABASE_URL=postgress://x\n", encoding="utf-8")
    result = run_manage("check", env_file=str(tmp_path / ".env"))
    assert result.returncode == 1
    assert "DATABASE_URL in .env cannot be parsed" in result.stderr


SHOW_SQLITE_MODES = """
from django.db import connection
with connection.cursor() as cursor:
    modes = [cursor.execute(f"PRAGMA {name}").fetchone()[0] for name in ("journal_mode", "synchronous")]
print("modes", *modes)
"""


def test_sqlite_runs_in_wal_mode_syncing_at_checkpoints(tmp_path):
    """Readers go on while one thread writes; synchronous=NORMAL is 1 (README, Benchmark)."""
    (tmp_path / ".env").write_text(
        f"DEBUG=1\nDATABASE_URL=sqlite:///{tmp_path / 'db.sqlite3'}\n", encoding="utf-8"
    )
    result = run_manage(
        "shell", "--no-imports", "-c", SHOW_SQLITE_MODES, env_file=str(tmp_path / ".env")
    )
    assert result.returncode == 0, result.stderr
    assert "modes wal 1" in result.stdout.splitlines()


def test_redis_url_selects_django_redis_that_ignores_outages(env_file):
    result = run_manage(
        "shell",
        "--no-imports",
        "-c",
        "from django.conf import settings; c = settings.CACHES['default']; print(c['BACKEND'], c['OPTIONS']['IGNORE_EXCEPTIONS'])",
        env_file=env_file,
        REDIS_URL="redis://127.0.0.1:6379/3",
    )
    assert result.stdout.split() == ["django_redis.cache.RedisCache", "True"]


def test_check_deploy_flags_a_development_env_file(tmp_path):
    """DEBUG on, the built-in SECRET_KEY and TOKEN and an http REDIRECT_URL are all reported."""
    env = tmp_path / ".env"
    env.write_text((PROJECT / ".env.example").read_text(encoding="utf-8"), encoding="utf-8")
    result = run_manage("check", "--deploy", env_file=str(env))
    for check_id in ("security.W018", "fans.W101", "fans.W102", "fans.W103", "fans.W104"):
        assert check_id in result.stderr


@pytest.mark.parametrize(
    ("value", "expected"), [("0", "None False"), ("1", "('HTTP_X_FORWARDED_PROTO', 'https') True")]
)
def test_trust_x_forwarded_turns_on_both_proxy_settings(env_file, value, expected):
    result = run_manage(
        "shell",
        "--no-imports",
        "-c",
        "from django.conf import settings; print(settings.SECURE_PROXY_SSL_HEADER, settings.USE_X_FORWARDED_HOST)",
        env_file=env_file,
        TRUST_X_FORWARDED=value,
    )
    assert result.stdout.strip() == expected


def test_sqlite_waits_for_the_write_lock_instead_of_failing(env_file):
    """Concurrent writers (threads, the sandbox) must not get 'database is locked'."""
    result = run_manage(
        "shell",
        "--no-imports",
        "-c",
        "from django.conf import settings; o = settings.DATABASES['default']['OPTIONS']; "
        "print(o['transaction_mode'], o['timeout'])",
        env_file=env_file,
    )
    assert result.stdout.split() == ["IMMEDIATE", "20"]


# A fresh .env with the sandbox: REDIRECT_URL follows the address `make run` serves.

SHOW_CALLBACK = (
    "from django.conf import settings as s; "
    "print(s.REDIRECT_URL, s.WECHAT_SANDBOX_OAUTH_DOMAIN, s.WECHAT_OPEN_BASE_URL, s.ALLOWED_HOSTS)"
)


@pytest.mark.parametrize(
    ("run_addr", "served"),
    [
        ("127.0.0.1:8765", "127.0.0.1:8765"),
        # Every interface: a browser is sent to loopback instead.
        ("0.0.0.0:8000", "127.0.0.1:8000"),  # noqa: S104
        ("[::]:8000", "[::1]:8000"),
        # runserver's bare port.
        ("8765", "127.0.0.1:8765"),
        (None, "127.0.0.1:8000"),
    ],
)
def test_a_fresh_env_file_sends_sign_in_back_to_the_address_served(fresh_env, run_addr, served):
    env = {"XGC_RUN_ADDR": run_addr} if run_addr else {}
    result = run_manage("shell", "--no-imports", "-c", SHOW_CALLBACK, env_file=fresh_env, **env)
    callback, domain, open_base, allowed = result.stdout.split(" ", 3)
    assert callback == f"http://{served}/wechat/authorize/"
    assert domain == served
    assert open_base == f"http://{served}/sandbox"
    assert served.rpartition(":")[0] in allowed
    check = run_manage("check", env_file=fresh_env, **env)
    assert check.returncode == 0, check.stderr
    assert "fans.W002" not in check.stderr


def test_a_derived_host_is_added_to_allowed_hosts(fresh_env):
    result = run_manage(
        "shell",
        "--no-imports",
        "-c",
        SHOW_CALLBACK,
        env_file=fresh_env,
        XGC_RUN_ADDR="192.168.1.5:8000",
    )
    assert result.stdout.split(" ", 3)[0] == "http://192.168.1.5:8000/wechat/authorize/"
    assert "'192.168.1.5'" in result.stdout


def test_a_hand_edited_redirect_url_elsewhere_is_one_line_naming_both(fresh_env):
    result = run_manage(
        "check",
        env_file=fresh_env,
        XGC_RUN_ADDR="127.0.0.1:8765",
        REDIRECT_URL="http://127.0.0.1:8000/wechat/authorize/",
    )
    assert result.returncode == 0
    [line] = [line for line in result.stderr.splitlines() if "fans.W002" in line]
    assert (
        "REDIRECT_URL is http://127.0.0.1:8000/wechat/authorize/ but make run serves 127.0.0.1:8765"
        in line
    )


def test_outside_the_sandbox_redirect_url_stays_required(fresh_env):
    result = run_manage(
        "check", env_file=fresh_env, WECHAT_SANDBOX="0", XGC_RUN_ADDR="127.0.0.1:8765"
    )
    assert result.returncode == 1
    assert "fans.E003" in result.stderr


@pytest.mark.parametrize(
    ("sandbox", "run_addr", "redirect_url", "warned"),
    [
        (True, "127.0.0.1:8765", "http://127.0.0.1:8000/wechat/authorize/", True),
        (True, "127.0.0.1:8000", "http://localhost:8000/wechat/authorize/", True),
        (True, "127.0.0.1:80", "http://127.0.0.1/wechat/authorize/", False),
        (True, "[::1]:8000", "http://[::1]:8000/wechat/authorize/", False),
        (True, "8000", "http://127.0.0.1:8000/wechat/authorize/", False),
        # Every interface answers, a phone on the LAN included: only the port counts.
        (True, "0.0.0.0:8000", "http://192.168.1.5:8000/wechat/authorize/", False),  # noqa: S104
        (True, "0.0.0.0:8000", "http://192.168.1.5:8765/wechat/authorize/", True),  # noqa: S104
        # A real account through a tunnel: the public host is rightly elsewhere.
        (False, "127.0.0.1:8000", "https://abc.ngrok.example/wechat/authorize/", False),
        (True, "", "http://127.0.0.1:8000/wechat/authorize/", False),
    ],
)
def test_the_run_address_check_compares_host_and_port(
    settings, sandbox, run_addr, redirect_url, warned
):
    settings.WECHAT_SANDBOX = sandbox
    settings.XGC_RUN_ADDR = run_addr
    settings.REDIRECT_URL = redirect_url
    assert ids(check_wechat_settings()) == (["fans.W002"] if warned else [])
