from django.apps import AppConfig


class FansConfig(AppConfig):
    name = "fans"
    verbose_name = "粉丝"

    def ready(self):
        from . import checks  # noqa: F401  (registers the system checks)
