"""gunicorn settings for xgc: ``gunicorn -c deploy/gunicorn.conf.py``.

Threaded workers (gthread): every callback waits on WeChat's API, and a thread
that waits lets the other threads of its process run. Each value can be set
in the environment or in .env; the defaults suit a 2-core machine.
https://docs.gunicorn.org/en/stable/settings.html
"""

import os
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "xgc.settings")

# Reading xgc's settings here loads .env, as the workers will, and tells
# the timeouts below how long a WeChat call may take.
from django.conf import settings  # noqa: E402


def _positive_int(key: str, default: int) -> int:
    value = os.environ.get(key, "").strip()
    if not value:
        return default
    if not value.isdigit() or int(value) == 0:
        raise SystemExit(f"{key}={value!r} is not a positive whole number")
    return int(value)


wsgi_app = "xgc.wsgi:application"
chdir = str(PROJECT)
bind = os.environ.get("GUNICORN_BIND", "").strip() or "127.0.0.1:8000"
workers = _positive_int("WEB_CONCURRENCY", 2)
worker_class = "gthread"
threads = _positive_int("GUNICORN_THREADS", 16)
# A callback may wait on a few WeChat calls in a row, each allowed
# WECHAT_HTTP_TIMEOUT: a worker restart lets them finish first.
timeout = _positive_int("GUNICORN_TIMEOUT", int(4 * settings.WECHAT_HTTP_TIMEOUT) + 10)
graceful_timeout = timeout
# Longer than nginx keeps idle connections to its upstreams (60 s), so that
# gunicorn never closes one that nginx is about to reuse.
keepalive = _positive_int("GUNICORN_KEEPALIVE", 75)
# gunicornc's socket is one path per user ($HOME/.gunicorn/gunicorn.ctl), so
# several instances would take it from each other.
control_socket_disable = True
