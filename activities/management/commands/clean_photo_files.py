"""List, and with --delete remove, photo files that no Photo refers to.

Such orphans are left when a process dies between writing a photo's files
and committing its row, or when deleting a file failed after its row was
deleted. The storage is walked with listdir, so this works on disk and on
S3 alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from django.core.files.storage import Storage, default_storage
from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from activities.models import Photo
from activities.photo_files import PHOTOS_DIR


def walk(storage: Storage, path: str) -> Iterator[str]:
    """Yield the name of every file under path, in every subfolder."""
    try:
        directories, files = storage.listdir(path)
    except FileNotFoundError:  # no photo was ever saved on this disk
        return
    for file in sorted(files):
        yield f"{path}/{file}"
    for directory in sorted(directories):
        yield from walk(storage, f"{path}/{directory}")


class Command(BaseCommand):
    help = (
        f"List files under {PHOTOS_DIR}/ in the default storage that no photo refers to; "
        "--delete removes them."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--delete", action="store_true", help="Delete the orphans instead of listing them."
        )
        parser.add_argument(
            "--min-age-minutes",
            type=int,
            default=60,
            help="Leave files younger than this alone: their photo may be being saved "
            "right now (default: 60).",
        )

    def handle(self, *args, delete: bool, min_age_minutes: int, **options) -> None:
        if min_age_minutes < 0:
            self.stderr.write("--min-age-minutes cannot be negative.")
            return
        storage = default_storage
        # The files are listed after the rows are read: a photo saved in
        # between has files younger than the minimum age, which are skipped.
        referenced = set(Photo.objects.values_list("display", flat=True))
        referenced |= set(Photo.objects.values_list("thumbnail", flat=True))
        cutoff = timezone.now() - timedelta(minutes=min_age_minutes)
        orphans, young = [], 0
        for name in walk(storage, PHOTOS_DIR):
            if name in referenced:
                continue
            if storage.get_modified_time(name) > cutoff:
                young += 1
                continue
            orphans.append(name)
            self.stdout.write(name)
            if delete:
                storage.delete(name)

        verb = "Deleted" if delete else "Found"
        self.stdout.write(f"{verb} {len(orphans)} orphaned photo file(s).")
        if young:
            self.stdout.write(
                f"Left alone {young} unreferenced file(s) younger than {min_age_minutes} minutes."
            )
        if orphans and not delete:
            self.stdout.write("Dry run: nothing was deleted. Run with --delete to remove them.")
