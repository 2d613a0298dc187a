"""Keep the sandbox out of production."""

from typing import Any

from django.conf import settings
from django.core import checks


@checks.register()
def check_sandbox_only_while_debugging(
    app_configs: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """The sandbox signs anyone in as any test fan; it must not face real fans."""
    if settings.DEBUG or settings.WECHAT_SANDBOX_FORCE:
        return []
    return [
        checks.Error(
            "WECHAT_SANDBOX=1 with DEBUG off: the WeChat sandbox would stand in for WeChat "
            "in production, so it is not mounted.",
            hint="Set WECHAT_SANDBOX=0 in .env for real fans. Only a benchmark may set "
            "WECHAT_SANDBOX_FORCE=1 to run the sandbox with DEBUG off.",
            id="sandbox.E001",
        )
    ]
