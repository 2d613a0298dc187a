from django.apps import AppConfig


class ActivitiesConfig(AppConfig):
    name = "activities"
    verbose_name = "申请活动"

    def ready(self):
        # Registers the checks, the delivery-event receiver and the receiver
        # that deletes a photo's files with its row.
        from . import checks, notifications, photo_files  # noqa: F401
