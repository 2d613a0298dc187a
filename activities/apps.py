from django.apps import AppConfig


class ActivitiesConfig(AppConfig):
    name = "activities"
    verbose_name = "申请活动"

    def ready(self):
        from . import checks, notifications  # noqa: F401  (registers checks and the event receiver)
