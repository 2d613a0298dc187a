"""System checks for the template message settings, the photo storage and the photo processes."""

from __future__ import annotations

import math
import re
from typing import Any

from django.conf import settings
from django.core import checks

# A template's keywords are a type and a number: thing1, phrase2, time3...
TEMPLATE_KEY_PATTERN = re.compile(r"[a-z_]+[0-9]*")
TEMPLATE_KEY_SETTINGS = (
    "WECHAT_TEMPLATE_KEY_ACTIVITY",
    "WECHAT_TEMPLATE_KEY_RESULT",
    "WECHAT_TEMPLATE_KEY_TIME",
)


@checks.register()
def check_template_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Report template keywords WeChat would refuse (47003) before a fan misses a message."""
    errors: list[checks.CheckMessage] = []
    keys = {name: getattr(settings, name) for name in TEMPLATE_KEY_SETTINGS}
    for name, key in keys.items():
        if not TEMPLATE_KEY_PATTERN.fullmatch(key):
            errors.append(
                checks.Error(
                    f"{name} {key!r} is not a template keyword such as thing1 or time3.",
                    hint=f"Set {name} in .env to the keyword shown in the template's 详情 "
                    "on mp.weixin.qq.com → 模板消息, without {{ }} or .DATA.",
                    id="activities.E001",
                )
            )
    if len(set(keys.values())) < len(keys):
        errors.append(
            checks.Error(
                "WECHAT_TEMPLATE_KEY_ACTIVITY, _RESULT and _TIME must name three different keywords.",
                hint="Each carries one value of the message; see .env.example.",
                id="activities.E002",
            )
        )
    return errors


@checks.register()
def check_s3_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Report S3 settings that would fail only when a fan's photo is saved or shown.

    With S3_BUCKET set, photos go to the bucket. A key without its secret
    (or the reverse) signs nothing; both empty means boto3's own credentials
    (environment, ~/.aws, instance role). An S3-compatible store needs its
    region as well as its endpoint to sign requests.
    """
    if not settings.S3_BUCKET:
        return []
    options = settings.STORAGES["default"].get("OPTIONS", {})
    problems = []
    if bool(options.get("access_key")) != bool(options.get("secret_key")):
        missing = "S3_SECRET_ACCESS_KEY" if options.get("access_key") else "S3_ACCESS_KEY_ID"
        problems.append(
            (
                f"S3_BUCKET is set and {missing} is empty: S3_ACCESS_KEY_ID and "
                "S3_SECRET_ACCESS_KEY go together.",
                f"Set {missing} in .env, or leave both empty to use boto3's own credentials "
                "(AWS_* environment variables, ~/.aws, an instance role); see .env.example.",
            )
        )
    if options.get("endpoint_url") and not options.get("region_name"):
        problems.append(
            (
                "S3_ENDPOINT_URL is set and S3_REGION is empty: an S3-compatible store "
                "needs its region to sign requests.",
                "Set S3_REGION in .env to the bucket's region as the provider names it "
                "(MinIO's default is us-east-1); see .env.example.",
            )
        )
    return [checks.Error(message, hint=hint, id="activities.E003") for message, hint in problems]


@checks.register()
def check_photo_process_settings(
    app_configs: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """Report photo process settings the photo pool could not run with.

    Values from .env that are not numbers at all are fans.E007; these are the
    ranges, for .env and for settings set in Python alike.
    """
    problems = []
    processes = settings.PHOTO_PROCESSES
    if isinstance(processes, bool) or not isinstance(processes, int) or processes < 0:
        problems.append(
            (
                f"PHOTO_PROCESSES {processes!r} is not a whole number of processes, 0 or more.",
                "Set PHOTO_PROCESSES in .env to 1 (one photo process per gunicorn worker, the "
                "default) or 0 (photos are processed in the request thread).",
            )
        )
    timeout = settings.PHOTO_TIMEOUT
    if not isinstance(timeout, int | float) or not 0 < timeout < math.inf:
        problems.append(
            (
                f"PHOTO_TIMEOUT {timeout!r} is not a number of seconds above 0.",
                "Set PHOTO_TIMEOUT in .env to the seconds a photo may take, e.g. 15; keep it "
                "below nginx's proxy_read_timeout (40 s) so that the fan gets a page.",
            )
        )
    nice = settings.PHOTO_NICE
    if isinstance(nice, bool) or not isinstance(nice, int) or not 0 <= nice <= 19:
        problems.append(
            (
                f"PHOTO_NICE {nice!r} is not a niceness from 0 to 19.",
                "Set PHOTO_NICE in .env to how much to lower the photo processes' priority: "
                "10 (the default), or 0 for none. A process may lower, not raise, its own.",
            )
        )
    return [checks.Error(message, hint=hint, id="activities.E004") for message, hint in problems]
