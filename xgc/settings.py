"""Settings for xgc, read from the environment in this one place.

Values come from ``.env`` (python-dotenv) with real environment variables
winning; ``.env.example`` lists every key. Values that cannot be parsed fall
back to their default and are collected in ``XGC_INVALID_SETTINGS`` so that
the ``fans`` system checks can name them (``python manage.py check``).
"""

import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from dotenv import load_dotenv

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

# XGC_DOTENV names another env file; an empty value reads none (the tests).
_dotenv = os.environ.get("XGC_DOTENV", str(BASE_DIR / ".env"))
if _dotenv:
    load_dotenv(_dotenv, override=False)

XGC_INVALID_SETTINGS: dict[str, str] = {}

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _env(key: str, default: str = "") -> str:
    # An empty value means the default, as an unset one does.
    return os.environ.get(key, "").strip() or default


def _env_bool(key: str, default: bool) -> bool:
    value = _env(key, "1" if default else "0").lower()
    if value in _TRUE | _FALSE:
        return value in _TRUE
    XGC_INVALID_SETTINGS[key] = f"{value!r} is not a boolean (use 1 or 0)"
    return default


def _env_number(key: str, default: float, kind: type = int, *, zero: bool = False) -> float:
    raw = _env(key, str(default))
    try:
        value = kind(raw)
    except ValueError:
        value = None
    if value is None or value < 0 or (value == 0 and not zero):
        allowed = "0 or a positive" if zero else "a positive"
        XGC_INVALID_SETTINGS[key] = f"{raw!r} is not {allowed} {kind.__name__}"
        return default
    return value


def _env_list(key: str, default: str = "") -> list[str]:
    return [item.strip() for item in _env(key, default).split(",") if item.strip()]


# GENERAL
DEBUG = _env_bool("DEBUG", False)

# A fixed key is tolerable while developing; in production the key signs the
# fanid cookie, so a known key would let anyone sign in as any fan.
DEVELOPMENT_SECRET_KEY = "django-insecure-xgc-development-key-never-use-in-production"  # noqa: S105
SECRET_KEY = _env("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is empty and DEBUG is off. Set SECRET_KEY in .env to a long "
            'random string, e.g. the output of: python -c "import secrets; '
            'print(secrets.token_urlsafe(50))"'
        )
    SECRET_KEY = DEVELOPMENT_SECRET_KEY

ALLOWED_HOSTS = _env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = _env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",
    "csp",
    "django_tasks",
    "django_tasks_db",
    "fans",
    "activities",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # django-csp's, skipped on redirects (xgc/security.py says why).
    "xgc.security.CSPMiddleware",
    # Serves /static/ from STATIC_ROOT (after collectstatic), so gunicorn
    # needs no web server for it: http://whitenoise.readthedocs.io/
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "fans.auth.FanMiddleware",
    # Last, as django-axes asks: it answers locked-out admin logins.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "xgc.urls"
# xgc is served at the root of its OAuth domain. Pinning the script name also
# stops Django from taking the REDIRECT_URL setting for Apache's variable of
# that name: runserver copies the process environment into each request, and
# Django would build every URL under it.
FORCE_SCRIPT_NAME = "/"
WSGI_APPLICATION = "xgc.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# DATABASES
# https://github.com/jazzband/dj-database-url#url-schema
DATABASE_URL = _env("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
try:
    # Each gunicorn thread keeps its connection for a minute instead of
    # opening one per request, and pings it before reuse, so that a restarted
    # database costs a ping, not a failed request. Not under DEBUG: runserver
    # starts a thread per request, which would only pile connections up.
    # https://docs.djangoproject.com/en/5.2/ref/databases/#persistent-connections
    DATABASES = {
        "default": dj_database_url.parse(
            DATABASE_URL, conn_max_age=0 if DEBUG else 60, conn_health_checks=True
        )
    }
except ValueError as exc:
    # Falling back to SQLite here would quietly write fans to the wrong place.
    raise ImproperlyConfigured(
        f"DATABASE_URL in .env cannot be parsed ({exc}); "
        "use e.g. postgres://user:password@host:5432/name or sqlite:///path/db.sqlite3"
    ) from None
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Threads write at once (runserver, gunicorn threads, the sandbox): take
    # the write lock when a transaction starts, and wait for it rather than
    # fail with "database is locked". WAL lets readers go on while one
    # writes, and synchronous=NORMAL syncs the WAL at checkpoints instead of
    # at every commit: a power cut (not a crash of xgc) may lose the last
    # commits, never the database. README, "SQLite", has the measurements.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
        **DATABASES["default"].get("OPTIONS", {}),
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


# CACHES: where OAuth tokens live. Redis when REDIS_URL is set, else memory.
def redis_cache(url: str) -> dict:
    return {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": url,
        "OPTIONS": {
            # A Redis outage must not stop fans signing in: cache calls then
            # miss (and are logged), and short timeouts keep requests moving.
            "IGNORE_EXCEPTIONS": True,
            "SOCKET_CONNECT_TIMEOUT": 1,
            "SOCKET_TIMEOUT": 1,
            # More threads than connections wait for one instead of failing
            # ("Too many connections" past redis-py's default of 100).
            "CONNECTION_POOL_CLASS": "redis.BlockingConnectionPool",
            "CONNECTION_POOL_KWARGS": {"max_connections": 100, "timeout": 2},
        },
    }


REDIS_URL = _env("REDIS_URL")
if REDIS_URL:
    CACHES = {"default": redis_cache(REDIS_URL)}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Keeps apart the keys of several xgc deployments (or a benchmark) on one Redis.
CACHES["default"]["KEY_PREFIX"] = _env("CACHE_KEY_PREFIX")
DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True

# TASKS: work that must not keep a request waiting (the template messages of
# activities/notifications.py), queued in the database itself, so that a
# decision and the task that announces it commit together, on SQLite as on
# PostgreSQL. `python manage.py worker` runs them.
# https://github.com/RealOrangeOne/django-tasks-db
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

# SECURITY
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
# Behind frp, ngrok or nginx, the proxy says which scheme and host the fan
# used. Off by default: without such a proxy in front, any client could send
# these headers and pass for HTTPS or for another host.
TRUST_X_FORWARDED = _env_bool("TRUST_X_FORWARDED", False)
if TRUST_X_FORWARDED:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    USE_X_FORWARDED_HOST = True
# An HTTPS REDIRECT_URL in production means fans reach xgc over HTTPS only:
# cookies are Secure, plain HTTP is redirected, and browsers are told (HSTS)
# to stay on HTTPS. https://docs.djangoproject.com/en/5.2/ref/middleware/#http-strict-transport-security
HTTPS_ONLY = not DEBUG and urlsplit(_env("REDIRECT_URL")).scheme == "https"
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = SECURE_SSL_REDIRECT = HTTPS_ONLY
# WeChat's server pushes (the console accepts an http:// server URL) and its
# domain check for MP_verify do not follow redirects.
SECURE_REDIRECT_EXEMPT = [r"^wechat/?$", r"^MP_verify_[A-Za-z0-9]+\.txt$"]
SECURE_HSTS_SECONDS = _env_number("SECURE_HSTS_SECONDS", 3600, int) if HTTPS_ONLY else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = _env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = _env_bool("SECURE_HSTS_PRELOAD", True)

# ADMIN: at ADMIN_URL, and five wrong passwords for one user from one
# address lock that pair out for 15 minutes (django-axes).
ADMIN_URL = _env("ADMIN_URL", "admin/")
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = 5
AXES_COOLOFF_TIME = timedelta(minutes=15)
# Per user and address: behind a proxy many admins share an address, and
# locking a user everywhere would let anyone lock the admins out.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "xgc.security.client_ip"

# CONTENT SECURITY POLICY (django-csp): the pages load only their own files,
# WeChat's JS-SDK, and avatars from WeChat's image hosts (any https host:
# WeChat does not document which it uses).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'", "https://res.wx.qq.com", "https://res2.wx.qq.com"],
        # data: for photo previews; wxlocalresource: and weixin: for the
        # localIds Android WeChat's JS-SDK hands out, shown as previews.
        "img-src": ["'self'", "data:", "https:", "wxlocalresource:", "weixin:"],
        "style-src": ["'self'"],
        "connect-src": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'none'"],
        "object-src": ["'none'"],
    }
}
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CONTENT_TYPE_NOSNIFF = True

# INTERNATIONALIZATION
LANGUAGE_CODE = "zh-hans"
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

# STATIC FILES
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
# PHOTOS: fans' photos are personal data. They are kept under MEDIA_ROOT, which
# no URL serves: activities/photo_views.py checks who asks, then hands the file
# to nginx (PHOTO_X_ACCEL_REDIRECT) or streams it. With S3_BUCKET set they are
# kept in an S3-compatible object store instead, private, and fetched through
# short-lived presigned URLs, so that every instance sees every photo.
MEDIA_ROOT = Path(_env("MEDIA_ROOT", str(BASE_DIR / "media")))
PHOTO_MAX_BYTES = _env_number("PHOTO_MAX_BYTES", 10 * 1024 * 1024, int)
PHOTO_MAX_PIXELS = _env_number("PHOTO_MAX_PIXELS", 40_000_000, int)
PHOTO_DISPLAY_SIZE = _env_number("PHOTO_DISPLAY_SIZE", 2048, int)
PHOTO_THUMBNAIL_SIZE = _env_number("PHOTO_THUMBNAIL_SIZE", 320, int)
# Photos are decoded and encoded in processes of their own (activities/
# photo_pool.py), so that their CPU work never holds the GIL of the threads
# serving sign-ins: PHOTO_PROCESSES per gunicorn worker, 0 for the request
# thread itself. One per worker keeps each worker's photos to one core.
PHOTO_PROCESSES = _env_number("PHOTO_PROCESSES", 1, int, zero=True)
# Seconds a photo may take in the photo processes, waiting included; past it
# the fan is asked to send it again.
PHOTO_TIMEOUT = _env_number("PHOTO_TIMEOUT", 15.0, float)
# How much lower the photo processes' CPU priority is (nice, 0-19): with every
# core busy, web requests come first.
PHOTO_NICE = _env_number("PHOTO_NICE", 10, int, zero=True)
# The path of nginx's internal location that serves MEDIA_ROOT, e.g.
# /protected-media/; empty: Django sends the file itself.
PHOTO_X_ACCEL_REDIRECT = _env("PHOTO_X_ACCEL_REDIRECT")
S3_BUCKET = _env("S3_BUCKET")
# Seconds a presigned photo URL works.
S3_URL_SECONDS = _env_number("S3_URL_SECONDS", 300, int)
_s3_storage = {
    "BACKEND": "storages.backends.s3.S3Storage",
    "OPTIONS": {
        "bucket_name": S3_BUCKET,
        "endpoint_url": _env("S3_ENDPOINT_URL") or None,
        "region_name": _env("S3_REGION") or None,
        "access_key": _env("S3_ACCESS_KEY_ID") or None,
        "secret_key": _env("S3_SECRET_ACCESS_KEY") or None,
        # Private objects, reached only through presigned URLs; a name is
        # never reused, so nothing is overwritten.
        "default_acl": None,
        "querystring_auth": True,
        "querystring_expire": S3_URL_SECONDS,
        "file_overwrite": False,
        "signature_version": "s3v4",
    },
}
STORAGES = {
    "default": (
        _s3_storage if S3_BUCKET else {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    ),
    # Compressed copies for whitenoise. Not the manifest variant: it refuses
    # to render a page before collectstatic has run, which tests never do.
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# LOGGING: to stdout, so that runserver, gunicorn and systemd all show it.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "plain",
        }
    },
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "fans": {"level": "INFO"},
        "activities": {"level": "INFO"},
        "xgc": {"level": "INFO"},
    },
}

# WECHAT (https://developers.weixin.qq.com/doc/service/guide/h5/auth.html)
APP_ID = _env("APP_ID")
APP_SECRET = _env("APP_SECRET")
# The built-in WeChat stand-in (xgc/sandbox), for developing without an
# account. It serves both WeChat hosts under /sandbox/ on REDIRECT_URL's host.
WECHAT_SANDBOX = _env_bool("WECHAT_SANDBOX", False)
# Lets a benchmark run the sandbox with DEBUG off; never set it for real fans.
WECHAT_SANDBOX_FORCE = _env_bool("WECHAT_SANDBOX_FORCE", False)
# Whether xgc/urls.py mounts the sandbox (sandbox.E001 explains when not).
_sandbox_runs = WECHAT_SANDBOX and (DEBUG or WECHAT_SANDBOX_FORCE)
# Server-configuration token (服务器配置 → Token), for the /wechat/ endpoint.
# Empty, /wechat/ refuses every request. While the sandbox runs, an empty one
# means a fixed development token, so that the sandbox's signed pushes, and a
# server check signed by hand, pass out of the box (fans.W104 flags it).
DEVELOPMENT_TOKEN = "sandboxdevtoken"  # noqa: S105 (published, sandbox only)
TOKEN = _env("TOKEN", DEVELOPMENT_TOKEN if _sandbox_runs else "")
# The address `make run` serves (runserver's [host:]port); empty otherwise.
XGC_RUN_ADDR = _env("XGC_RUN_ADDR")
# runserver takes a bare port for 127.0.0.1, and a wildcard listens on every
# interface but is no address to send a browser to: loopback stands for it.
_LOOPBACK = {"": "127.0.0.1", "0": "127.0.0.1", "0.0.0.0": "127.0.0.1", "[::]": "[::1]"}  # noqa: S104


def browser_address(addrport: str) -> str:
    """Return the host:port a browser opens to reach runserver's [host:]port."""
    host, _, port = addrport.rpartition(":")
    return f"{_LOOPBACK.get(host, host)}:{port}"


# The absolute callback URL; its host must be the account's 网页授权域名.
# While the sandbox runs it may stay empty: it then follows the address
# `make run` serves, so that sign-in comes back to this very server.
REDIRECT_URL = _env("REDIRECT_URL")
if not REDIRECT_URL and _sandbox_runs:
    _served = browser_address(XGC_RUN_ADDR or "127.0.0.1:8000")
    REDIRECT_URL = f"http://{_served}/wechat/authorize/"
    _served_host = _served.rpartition(":")[0]
    if not {_served_host, "*"} & set(ALLOWED_HOSTS):
        ALLOWED_HOSTS.append(_served_host)
_callback = urlsplit(REDIRECT_URL or "http://127.0.0.1:8000/")
# The 网页授权域名 the sandbox accepts in redirect_uri, like WeChat's console.
WECHAT_SANDBOX_OAUTH_DOMAIN = _env("WECHAT_SANDBOX_OAUTH_DOMAIN", _callback.netloc)
_sandbox_url = f"{_callback.scheme}://{_callback.netloc}/sandbox"
WECHAT_OPEN_BASE_URL = _env(
    "WECHAT_OPEN_BASE_URL", _sandbox_url if WECHAT_SANDBOX else "https://open.weixin.qq.com"
)
WECHAT_API_BASE_URL = _env(
    "WECHAT_API_BASE_URL", _sandbox_url if WECHAT_SANDBOX else "https://api.weixin.qq.com"
)
if WECHAT_SANDBOX:
    INSTALLED_APPS.append("xgc.sandbox")
WECHAT_HTTP_TIMEOUT = _env_number("WECHAT_HTTP_TIMEOUT", 5.0, float)
# Outside WeChat (no MicroMessenger in the user agent, sandbox off), the menu
# link shows xgc's own page with a QR code of itself to scan with WeChat,
# instead of WeChat's authorize page, which only says to use WeChat. 0: the
# old behaviour.
WECHAT_BROWSER_PAGE = _env_bool("WECHAT_BROWSER_PAGE", True)
# How the platform token is fetched: "stable_token" (shares one token with
# anything else using the account) or "token" (cgi-bin/token, which retires
# the previous token whenever it is called).
WECHAT_TOKEN_ENDPOINT = _env("WECHAT_TOKEN_ENDPOINT", "stable_token")
# The <code> of the MP_verify_<code>.txt file WeChat asks for at the domain root.
WECHAT_MP_VERIFY = _env("WECHAT_MP_VERIFY")
FAN_COOKIE_MAX_AGE = _env_number("FAN_COOKIE_MAX_AGE", 3600, int)
# The operator's template message (模板消息) for an application's result, and
# which of its keywords carry the activity, the result and the time. Without a
# template id no message is sent.
WECHAT_TEMPLATE_APPLICATION_RESULT = _env("WECHAT_TEMPLATE_APPLICATION_RESULT")
WECHAT_TEMPLATE_KEY_ACTIVITY = _env("WECHAT_TEMPLATE_KEY_ACTIVITY", "thing1")
WECHAT_TEMPLATE_KEY_RESULT = _env("WECHAT_TEMPLATE_KEY_RESULT", "phrase2")
WECHAT_TEMPLATE_KEY_TIME = _env("WECHAT_TEMPLATE_KEY_TIME", "time3")
