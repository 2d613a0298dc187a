from django.apps import AppConfig


class SandboxConfig(AppConfig):
    name = "xgc.sandbox"
    label = "sandbox"
    verbose_name = "WeChat sandbox"

    def ready(self):
        from . import checks  # noqa: F401  (registers the system checks)
