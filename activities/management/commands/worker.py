"""``python manage.py worker``: django-tasks-db's db_worker, after a recovery step."""

from __future__ import annotations

from django_tasks_db.management.commands.db_worker import Command as DBWorkerCommand

from activities.notifications import recover_interrupted


class Command(DBWorkerCommand):
    help = (
        "Run the task worker (template messages). Takes db_worker's options, "
        "e.g. --batch to run what is due and exit."
    )

    def handle(self, *args, **options):
        # A worker stopped in the middle of a send left its claim behind.
        recovered = recover_interrupted()
        if recovered and options["verbosity"]:
            self.stdout.write(f"Found {recovered} message(s) a stopped worker left half-sent.")
        super().handle(*args, **options)
