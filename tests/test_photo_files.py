"""Where photos live: save_photo, their deletion after commit, clean_photo_files."""

from __future__ import annotations

import hashlib
import io
import os
import time
from pathlib import Path

import pytest
from PIL import Image as Pillow

from django.core.files.storage import FileSystemStorage
from django.core.management import call_command
from django.db import IntegrityError, transaction

from activities import services
from activities.models import Application, Photo
from activities.photo_files import save_photo
from activities.photos import Image, ProcessedPhoto

from .conftest import stored_files

pytestmark = pytest.mark.django_db

APPLICATIONS = "/admin/activities/application/"


def jpeg(size: tuple[int, int], colour: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Pillow.new("RGB", size, colour).save(buffer, "JPEG")
    return buffer.getvalue()


def processed_photo(seed: int = 0) -> ProcessedPhoto:
    """Return the pipeline's output for a small photo; another seed, another photo."""
    colour = (seed * 40 % 256, 30, 30)
    return ProcessedPhoto(
        display=Image(jpeg((64, 48), colour), 64, 48),
        thumbnail=Image(jpeg((32, 24), colour), 32, 24),
        content_type="image/jpeg",
        extension="jpg",
        sha256=hashlib.sha256(f"original {seed}".encode()).hexdigest(),
        original_bytes=123_456,
    )


@pytest.fixture
def application(make_fan, make_activity) -> Application:
    return Application.objects.create(
        activity=make_activity(), fan=make_fan(), name="张三", phone="13812345678"
    )


# save_photo


def test_save_photo_writes_both_files_and_the_row(media_root, application):
    processed = processed_photo()

    photo = save_photo(application=application, photo=processed, source=Photo.Source.WECHAT)

    display, thumbnail = photo.display.name, photo.thumbnail.name
    assert display.startswith("photos/") and display.endswith(".jpg")
    # The thumbnail shares the display copy's random stem.
    assert thumbnail == display.removesuffix(".jpg") + "-thumb.jpg"
    assert stored_files(media_root) == sorted([display, thumbnail])
    assert (media_root / display).read_bytes() == processed.display.data
    assert (media_root / thumbnail).read_bytes() == processed.thumbnail.data
    photo.refresh_from_db()
    assert (photo.application, photo.source, photo.content_type) == (
        application,
        "wechat",
        "image/jpeg",
    )
    assert (photo.width, photo.height, photo.thumbnail_width, photo.thumbnail_height) == (
        64,
        48,
        32,
        24,
    )
    assert photo.display_bytes == len(processed.display.data)
    assert (photo.original_bytes, photo.sha256) == (123_456, processed.sha256)


def test_every_photo_gets_new_random_names(media_root, application):
    first = save_photo(application=application, photo=processed_photo(1), source="upload")
    second = save_photo(application=application, photo=processed_photo(2), source="upload")
    assert first.display.name != second.display.name
    assert len(stored_files(media_root)) == 4


def test_the_same_photo_twice_leaves_no_file_behind(media_root, application):
    """The unique (application, sha256) constraint refuses the row; its files go too."""
    first = save_photo(application=application, photo=processed_photo(), source="upload")

    with pytest.raises(IntegrityError):
        save_photo(application=application, photo=processed_photo(), source="upload")

    assert stored_files(media_root) == sorted([first.display.name, first.thumbnail.name])
    # The refused row was in a savepoint: the caller's transaction goes on.
    assert list(Photo.objects.all()) == [first]


def test_a_storage_failure_on_the_thumbnail_removes_the_display_copy(
    media_root, application, monkeypatch
):
    save = FileSystemStorage._save
    calls = []

    def save_then_fail(storage, name, content):
        calls.append(name)
        if len(calls) == 2:
            raise OSError("disk full")
        return save(storage, name, content)

    monkeypatch.setattr(FileSystemStorage, "_save", save_then_fail)

    with pytest.raises(OSError, match="disk full"):
        save_photo(application=application, photo=processed_photo(), source="upload")

    assert len(calls) == 2
    assert stored_files(media_root) == []
    assert not Photo.objects.exists()


# Deleting


def test_deleting_an_application_in_admin_deletes_its_photos_files_after_commit(
    media_root, application, admin_client, django_capture_on_commit_callbacks
):
    for seed in (1, 2):
        save_photo(application=application, photo=processed_photo(seed), source="upload")
    assert len(stored_files(media_root)) == 4

    with django_capture_on_commit_callbacks() as callbacks:
        response = admin_client.post(f"{APPLICATIONS}{application.pk}/delete/", {"post": "yes"})
        assert response.status_code == 302
        assert not Application.objects.filter(pk=application.pk).exists()
        assert not Photo.objects.exists()
        # Not before the transaction commits.
        assert len(stored_files(media_root)) == 4

    for callback in callbacks:
        callback()
    assert stored_files(media_root) == []


def test_a_rolled_back_delete_keeps_the_files(
    media_root, application, django_capture_on_commit_callbacks
):
    photo = save_photo(application=application, photo=processed_photo(), source="upload")

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            application.delete()
            raise RuntimeError("changed my mind")

    assert callbacks == []
    assert Photo.objects.get() == photo
    assert len(stored_files(media_root)) == 2


def test_deleting_a_photo_whose_file_is_gone_deletes_the_other(
    media_root, application, django_capture_on_commit_callbacks
):
    photo = save_photo(application=application, photo=processed_photo(), source="upload")
    (media_root / photo.display.name).unlink()

    with django_capture_on_commit_callbacks(execute=True):
        photo.delete()

    assert stored_files(media_root) == []


def test_withdrawing_an_application_keeps_its_photos(
    media_root, application, django_capture_on_commit_callbacks
):
    photo = save_photo(application=application, photo=processed_photo(), source="upload")

    with django_capture_on_commit_callbacks(execute=True):
        services.application_withdraw(application_id=application.pk, fan=application.fan)

    application.refresh_from_db()
    assert application.status == Application.Status.WITHDRAWN
    assert list(application.photos.all()) == [photo]
    assert stored_files(media_root) == sorted([photo.display.name, photo.thumbnail.name])


# clean_photo_files


def clean(*args: str) -> str:
    out = io.StringIO()
    call_command("clean_photo_files", *args, stdout=out)
    return out.getvalue()


def orphan(media_root: Path, name: str, *, minutes_old: int) -> str:
    """Write a file no photo refers to, last modified minutes_old ago."""
    path = media_root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(jpeg((8, 8)))
    modified = time.time() - minutes_old * 60
    os.utime(path, (modified, modified))
    return name


@pytest.fixture
def saved(media_root, application) -> Photo:
    """A photo whose files are two hours old, as an old orphan's would be."""
    photo = save_photo(application=application, photo=processed_photo(), source="upload")
    two_hours_ago = time.time() - 2 * 3600
    for name in (photo.display.name, photo.thumbnail.name):
        os.utime(media_root / name, (two_hours_ago, two_hours_ago))
    return photo


def test_clean_photo_files_dry_run_lists_orphans_and_deletes_nothing(media_root, saved):
    old = orphan(media_root, "photos/2026/01/crashed.jpg", minutes_old=120)
    before = stored_files(media_root)

    output = clean()

    assert output.splitlines() == [
        old,
        "Found 1 orphaned photo file(s).",
        "Dry run: nothing was deleted. Run with --delete to remove them.",
    ]
    assert stored_files(media_root) == before


def test_clean_photo_files_delete_removes_only_orphans_older_than_the_minimum_age(
    media_root, saved
):
    old = orphan(media_root, "photos/2026/01/crashed.jpg", minutes_old=120)
    older = orphan(media_root, "photos/2025/12/deep/crashed-thumb.jpg", minutes_old=24 * 60)
    young = orphan(media_root, "photos/2026/01/being-saved.jpg", minutes_old=5)
    outside = orphan(media_root, "other/not-a-photo.txt", minutes_old=24 * 60)

    output = clean("--delete")

    assert sorted(output.splitlines()[:2]) == sorted([old, older])
    assert output.splitlines()[2:] == [
        "Deleted 2 orphaned photo file(s).",
        "Left alone 1 unreferenced file(s) younger than 60 minutes.",
    ]
    assert stored_files(media_root) == sorted(
        [saved.display.name, saved.thumbnail.name, young, outside]
    )


def test_clean_photo_files_min_age_is_an_option(media_root, saved):
    young = orphan(media_root, "photos/2026/01/being-saved.jpg", minutes_old=5)

    assert clean("--delete", "--min-age-minutes", "1").splitlines()[0] == young
    assert young not in stored_files(media_root)


def test_clean_photo_files_on_an_empty_storage(media_root):
    assert clean() == "Found 0 orphaned photo file(s).\n"
