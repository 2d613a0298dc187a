"""``python manage.py doctor [--online]``: check a deployment the way WeChat will."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

import requests

from django.conf import settings
from django.core import checks
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, connection
from django.db.models import Q
from django.http.request import validate_host
from django.utils import timezone

from fans.auth import public_url
from xgc import wechat

OK, WARN, FAIL = "ok", "warn", "FAIL"
# A task due this long ago and still not taken means no worker is running.
QUEUE_OVERDUE = timedelta(minutes=5)
# What each errcode of the token fetch usually means for the operator.
TOKEN_HINTS = {
    40013: "APP_ID is not an official account's AppID",
    40125: "APP_SECRET is wrong (mp.weixin.qq.com → 设置与开发 → 基本配置)",
    40164: "this server's IP is not on the account's IP whitelist (基本配置 → IP白名单)",
    40243: "the AppSecret is frozen",
}


@dataclass
class Finding:
    level: str
    subject: str
    message: str


class Command(BaseCommand):
    help = "Check settings, database, cache and (with --online) WeChat and the public host."

    def add_arguments(self, parser):
        parser.add_argument(
            "--online",
            action="store_true",
            help="also ask WeChat to accept APP_ID/APP_SECRET and fetch REDIRECT_URL",
        )

    def handle(self, *args, online: bool = False, **options):
        findings = [*settings_findings(), database_finding(), cache_finding(), queue_finding()]
        if online:
            findings += [token_finding(), *public_host_findings()]
        style = {OK: self.style.SUCCESS, WARN: self.style.WARNING, FAIL: self.style.ERROR}
        for finding in findings:
            self.stdout.write(
                style[finding.level](f"{finding.level:4}  {finding.subject}: {finding.message}")
            )
        failed = sum(finding.level == FAIL for finding in findings)
        if failed:
            raise CommandError(f"{failed} problem(s) to fix before WeChat can reach xgc.")


def settings_findings() -> Iterator[Finding]:
    messages = [
        message
        for message in checks.run_checks()
        if message.id and message.id.startswith(("fans.", "activities."))
    ]
    for message in messages:
        level = FAIL if message.is_serious() else WARN
        yield Finding(level, message.id, f"{message.msg} {message.hint or ''}".strip())
    if not any(message.is_serious() for message in messages):
        yield Finding(OK, "settings", "APP_ID, APP_SECRET and REDIRECT_URL are set and well-formed")
    parts = urlsplit(settings.REDIRECT_URL)
    if parts.port:
        yield Finding(
            WARN,
            "REDIRECT_URL",
            f"has port {parts.port}: test accounts accept it, real accounts answer 10003",
        )
    if parts.hostname and not validate_host(parts.hostname, settings.ALLOWED_HOSTS):
        yield Finding(FAIL, "ALLOWED_HOSTS", f"add {parts.hostname} (REDIRECT_URL's host) in .env")
    if settings.WECHAT_SANDBOX:
        yield Finding(
            WARN,
            "WECHAT_SANDBOX",
            "on: the built-in sandbox stands in for WeChat and sends fans back to "
            f"{settings.REDIRECT_URL} (REDIRECT_URL): serve xgc there",
        )
    if not settings.TOKEN:
        yield Finding(WARN, "TOKEN", "empty: WeChat's server configuration check cannot pass")
    if not settings.WECHAT_TEMPLATE_APPLICATION_RESULT:
        yield Finding(
            WARN,
            "WECHAT_TEMPLATE_APPLICATION_RESULT",
            "empty: fans get no template message when their application is decided",
        )


def database_finding() -> Finding:
    try:
        connection.ensure_connection()
        if connection.vendor == "mysql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT @@character_set_database")
                charset = cursor.fetchone()[0]
            if charset != "utf8mb4":
                return Finding(
                    FAIL, "database", f"charset is {charset}: emoji nicknames need utf8mb4"
                )
    except DatabaseError as exc:
        return Finding(FAIL, "database", f"not reachable ({str(exc).strip()}); check DATABASE_URL")
    return Finding(OK, "database", f"{connection.vendor} reachable")


def cache_finding() -> Finding:
    if not settings.REDIS_URL:
        return Finding(
            WARN, "cache", "REDIS_URL empty: the memory cache is per process; use Redis for more"
        )
    from django_redis import get_redis_connection
    from redis import RedisError

    try:
        get_redis_connection("default").ping()
    except RedisError as exc:
        return Finding(FAIL, "cache", f"Redis not reachable ({exc}); check REDIS_URL")
    return Finding(OK, "cache", "Redis reachable")


def queue_finding() -> Finding:
    """Tell whether a worker is taking the tasks (template messages) from the queue."""
    from django_tasks_db.models import DBTaskResult, get_date_max

    overdue = timezone.now() - QUEUE_OVERDUE
    # run_after is the far future's maximum for a task due at once.
    due_long_ago = Q(run_after__lt=overdue) | Q(run_after=get_date_max(), enqueued_at__lt=overdue)
    try:
        waiting = DBTaskResult.objects.ready().filter(due_long_ago).count()
    except DatabaseError:
        return Finding(FAIL, "task queue", "its table is missing: run python manage.py migrate")
    if waiting:
        return Finding(
            WARN,
            "task queue",
            f"{waiting} task(s) waiting for over {QUEUE_OVERDUE.seconds // 60} minutes: "
            "is python manage.py worker running?",
        )
    return Finding(OK, "task queue", "no task is overdue")


def token_finding() -> Finding:
    try:
        wechat.fetch_stable_token()
    except wechat.WeChatError as error:
        hint = TOKEN_HINTS.get(error.errcode, "see WeChat's error code list")
        return Finding(FAIL, "WeChat", f"{error}: {hint}")
    return Finding(
        OK, "WeChat", f"accepted APP_ID and APP_SECRET at {settings.WECHAT_API_BASE_URL}"
    )


def public_host_findings() -> Iterator[Finding]:
    """Fetch REDIRECT_URL as WeChat will send fans there: it must be this app."""
    session = requests.Session()
    timeout = settings.WECHAT_HTTP_TIMEOUT
    origin = public_url("")
    try:
        # Without a state the callback starts a fresh authorization for
        # this app, so the redirect names our AppID.
        answer = session.get(settings.REDIRECT_URL, allow_redirects=False, timeout=timeout)
        if f"appid={settings.APP_ID}&" in answer.headers.get("Location", ""):
            yield Finding(OK, "public host", f"{settings.REDIRECT_URL} answers with this app")
        else:
            yield Finding(
                FAIL,
                "public host",
                f"{settings.REDIRECT_URL} answered HTTP {answer.status_code}, not xgc's callback",
            )
        if settings.WECHAT_MP_VERIFY:
            name = f"MP_verify_{settings.WECHAT_MP_VERIFY}.txt"
            verify = session.get(f"{origin}/{name}", allow_redirects=False, timeout=timeout)
            if verify.status_code == 200 and verify.text == settings.WECHAT_MP_VERIFY:
                yield Finding(OK, "MP_verify", f"{origin}/{name} is served")
            else:
                yield Finding(
                    FAIL, "MP_verify", f"{origin}/{name} answered HTTP {verify.status_code}"
                )
    except requests.RequestException as exc:
        yield Finding(FAIL, "public host", f"{origin} not reachable ({type(exc).__name__})")
