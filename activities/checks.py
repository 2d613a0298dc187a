"""System checks for the template message settings."""

from __future__ import annotations

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
