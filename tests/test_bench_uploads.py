"""The upload load's arithmetic, schedule and form handling (tests/bench_uploads.py), without servers."""

from __future__ import annotations

import threading

import pytest

from activities.models import Activity
from tests import bench_uploads
from tests.bench_uploads import (
    Submission,
    UploadLoad,
    applications_per_second_for,
    form_errors,
    photo_files,
    schedule,
)


def test_half_a_core_at_0_4_s_per_application_is_1_25_per_second():
    assert applications_per_second_for(
        core_share=0.5, seconds_per_application=0.4
    ) == pytest.approx(1.25)


@pytest.mark.parametrize(("share", "seconds"), [(0, 0.4), (0.5, 0), (-1, 0.4)])
def test_a_rate_needs_a_positive_share_and_cost(share, seconds):
    with pytest.raises(ValueError):
        applications_per_second_for(core_share=share, seconds_per_application=seconds)


def test_the_schedule_is_fixed_in_advance_and_bounded():
    assert list(schedule(4, max_count=3)) == [0, 0.25, 0.5]
    assert list(schedule(2, max_seconds=2)) == [0, 0.5, 1.0, 1.5]
    assert list(schedule(2, max_count=10, max_seconds=1)) == [0, 0.5]


def test_photos_are_posted_as_the_files_of_one_input():
    files = photo_files([b"one", b"two"])
    assert [name for name, _ in files] == ["photos", "photos"]
    assert [file for _, file in files] == [
        ("IMG_0001.JPG", b"one", "image/jpeg"),
        ("IMG_0002.JPG", b"two", "image/jpeg"),
    ]


def test_the_errors_of_a_form_that_came_back_are_read():
    page = '<p class="field__error">照片「IMG_0001.JPG」：图片已损坏或不完整</p><p class="x">no</p>'
    assert form_errors(page) == ["照片「IMG_0001.JPG」：图片已损坏或不完整"]


def test_the_activity_made_for_the_bench_takes_applications(db, capsys):
    exec(bench_uploads.CREATE_ACTIVITY, {})  # noqa: S102 (our own code, as manage.py shell runs it)
    pk = int(capsys.readouterr().out.split()[-1])
    activity = Activity.objects.get(pk=pk)
    assert activity.accepts_applications()
    assert activity.capacity == bench_uploads.CAPACITY and activity.review_required


def load(**kwargs) -> UploadLoad:
    return UploadLoad("http://app", "http://sandbox", 1, [b"photo"], **kwargs)


def test_a_load_starts_each_application_on_schedule_and_notes_it(monkeypatch):
    started = []
    monkeypatch.setattr(
        UploadLoad, "_apply", lambda self, submission, at: started.append(submission)
    )
    run = load(rate=1000, max_count=5)
    run.run()
    assert [s.scheduled for s in run.submissions] == [0, 0.001, 0.002, 0.003, 0.004]
    assert started == run.submissions


def test_a_stopped_load_starts_nothing_more():
    stop = threading.Event()
    stop.set()
    run = load(rate=1, stop=stop)
    run.run()
    assert run.submissions == []


def test_a_load_needs_a_bound():
    with pytest.raises(ValueError):
        load(rate=1)


def test_lag_is_how_late_an_application_started():
    assert Submission(scheduled=1.0, started=1.25).lag == 0.25
