"""xgc.settings with fixed values, so the tests never read a developer's .env.

The PostgreSQL pass of ``make test`` sets XGC_TEST_DATABASE_URL.
"""

import os

import dj_database_url

os.environ["XGC_DOTENV"] = ""
os.environ.setdefault("SECRET_KEY", "tests-only-secret-key")

from xgc.settings import *  # noqa: E402, F403

DEBUG = False
SECRET_KEY = "tests-only-secret-key-" + "x" * 40
ALLOWED_HOSTS = ["testserver", "xgc.example.com"]
DATABASES = {
    "default": dj_database_url.parse(os.environ.get("XGC_TEST_DATABASE_URL", "sqlite://:memory:"))
}
REDIS_URL = ""
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

APP_ID = "wx1234567890abcdef"
APP_SECRET = "app-secret-never-logged"
TOKEN = "xgctoken"
REDIRECT_URL = "https://xgc.example.com/wechat/authorize/"
WECHAT_OPEN_BASE_URL = "https://open.weixin.qq.com"
WECHAT_API_BASE_URL = "https://api.weixin.qq.com"
WECHAT_HTTP_TIMEOUT = 5.0
WECHAT_TOKEN_ENDPOINT = "stable_token"
FAN_COOKIE_MAX_AGE = 3600
# The address `make run` serves, if a developer's shell exported it.
XGC_RUN_ADDR = ""
XGC_INVALID_SETTINGS = {}

# The sandbox is installed and mounted so that its tests can reach it; the
# tests above still talk to WeChat's real host names, mocked by responses.
WECHAT_SANDBOX = True
WECHAT_SANDBOX_FORCE = True
WECHAT_SANDBOX_OAUTH_DOMAIN = "xgc.example.com"
if "xgc.sandbox" not in INSTALLED_APPS:  # noqa: F405
    INSTALLED_APPS = [*INSTALLED_APPS, "xgc.sandbox"]  # noqa: F405

# Tests don't run collectstatic: let whitenoise find files as they change.
WHITENOISE_AUTOREFRESH = True

# Photos in the test's own thread: a photo process costs a fresh interpreter
# (about 0.1 s) per pool. tests/test_photo_pool.py runs the pool itself.
PHOTO_PROCESSES = 0
