"""Photos processed in a photo process give what the request thread would, and failures a page.

The tests settings process photos in the test's own thread (PHOTO_PROCESSES=0);
these tests turn the pool on. The real pool starts on first use and again
after the tests that break it (a fresh interpreter, about 0.1 s); fakes stand
in for the failures that cannot be made to happen on cue.
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import subprocess
import sys
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pytest
from PIL import Image

from django.core.files.uploadedfile import SimpleUploadedFile, TemporaryUploadedFile

from activities import photo_pool, services
from activities.checks import check_photo_process_settings
from activities.models import Application
from activities.photos import PhotoRejected, process_photo
from xgc import settings as xgc_settings

from .conftest import PROJECT, sign_in, stored_files
from .test_activities_photos import media_answer, platform_token
from .test_photos import LIMITS, exif, heic, jpeg, marked

TRY_AGAIN = "暂时无法处理照片「a.jpg」，请稍后再提交"


@pytest.fixture(scope="module", autouse=True)
def _stop_the_pool():
    yield
    photo_pool.shutdown()


@pytest.fixture
def pooled(settings):
    settings.PHOTO_PROCESSES = 1
    settings.PHOTO_TIMEOUT = 30.0


def sideways_jpeg() -> bytes:
    return jpeg(marked((300, 200)), exif=exif(orientation=6))


def test_the_pool_returns_what_the_thread_returns(pooled):
    for data in (sideways_jpeg(), heic(marked((120, 80)))):
        assert photo_pool.process(data, **LIMITS) == process_photo(data, **LIMITS)


def test_a_photo_on_disk_is_read_by_the_photo_process(pooled, tmp_path):
    data = sideways_jpeg()
    path = tmp_path / "upload.jpg"
    path.write_bytes(data)
    assert photo_pool.process(path, **LIMITS) == process_photo(data, **LIMITS)


def test_an_upload_on_disk_goes_to_the_photo_process_as_its_path(settings, monkeypatch):
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 0
    upload = TemporaryUploadedFile("a.jpg", "image/jpeg", 0, None)
    data = sideways_jpeg()
    upload.write(data)
    upload.seek(0)
    upload.size = len(data)
    sent = []

    def process(source, **limits):
        sent.append(source)
        return process_photo(data, **limits)

    monkeypatch.setattr(photo_pool, "process", process)
    (received,) = services.photos_receive(uploads=[upload], media_ids=[])
    assert sent == [Path(upload.temporary_file_path())]
    assert received.photo == process_photo(data, **LIMITS)
    upload.close()


def test_a_rejection_in_the_pool_keeps_its_reason(pooled):
    with pytest.raises(PhotoRejected) as in_thread:
        process_photo(b"<html><script>alert(1)</script></html>", **LIMITS)
    with pytest.raises(PhotoRejected) as in_pool:
        photo_pool.process(b"<html><script>alert(1)</script></html>", **LIMITS)
    assert in_pool.value.reason == in_thread.value.reason


def test_results_and_rejections_survive_pickling():
    # What the pool sends back between its own processes.
    photo = process_photo(sideways_jpeg(), **LIMITS)
    assert pickle.loads(pickle.dumps(photo)) == photo  # noqa: S301
    rejected = pickle.loads(pickle.dumps(PhotoRejected("图片已损坏或不完整")))  # noqa: S301
    assert rejected.reason == "图片已损坏或不完整"


def upload(name: str, data: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="image/jpeg")


def problem(settings, processes: int, data: bytes) -> str:
    settings.PHOTO_PROCESSES = processes
    with pytest.raises(services.PhotoProblem) as caught:
        services.photos_receive(uploads=[upload("a.jpg", data)], media_ids=[])
    return caught.value.message


@pytest.mark.parametrize("data", [b"%PDF-1.7", sideways_jpeg()[:-600]])
def test_a_refused_photo_gives_the_fan_the_same_message_through_the_pool(settings, data):
    assert problem(settings, 1, data) == problem(settings, 0, data)


def test_a_killed_photo_process_is_replaced_and_the_photo_processed(pooled):
    pool = photo_pool._pool()
    os.kill(pool.submit(os.getpid).result(), signal.SIGKILL)
    data = sideways_jpeg()
    assert photo_pool.process(data, **LIMITS) == process_photo(data, **LIMITS)
    assert photo_pool._pool() is not pool


def test_a_photo_process_busy_past_its_time_exits(pooled):
    # A photo that takes more than a millisecond: the watchdog ends the process.
    data = jpeg(Image.effect_noise((1600, 1200), 64).convert("RGB"))
    future = photo_pool._pool().submit(photo_pool._in_child, data, LIMITS, 0.001)
    try:
        with pytest.raises(BrokenProcessPool):
            future.result(timeout=30)
    finally:
        photo_pool.shutdown()


class FakePool:
    """A pool whose every submit raises error, or returns a future that never ends."""

    def __init__(self, error: Exception | None = None):
        self.error = error
        self.futures: list[Future] = []

    def submit(self, *args, **kwargs) -> Future:
        if self.error is not None:
            raise self.error
        self.futures.append(Future())
        return self.futures[-1]

    def shutdown(self, wait=True, cancel_futures=False) -> None:
        pass


@pytest.fixture
def fake_pool(pooled, monkeypatch):
    def install(pool: FakePool) -> FakePool:
        monkeypatch.setattr(photo_pool, "_pool", lambda: pool)
        return pool

    return install


def test_a_pool_that_keeps_breaking_is_tried_twice_then_unavailable(fake_pool):
    pool = fake_pool(FakePool(BrokenProcessPool("a child was killed")))
    calls = []
    real_submit = pool.submit
    pool.submit = lambda *args: calls.append(args) or real_submit(*args)
    with pytest.raises(photo_pool.PhotoUnavailable):
        photo_pool.process(sideways_jpeg(), **LIMITS)
    assert len(calls) == 2


def test_a_photo_without_a_result_in_time_is_unavailable_and_cancelled(fake_pool, settings):
    settings.PHOTO_TIMEOUT = 0.01
    pool = fake_pool(FakePool())
    with pytest.raises(photo_pool.PhotoUnavailable):
        photo_pool.process(sideways_jpeg(), **LIMITS)
    assert [future.cancelled() for future in pool.futures] == [True]


def test_the_fan_is_asked_to_send_again_and_nothing_is_stored(
    fake_pool, client, make_fan, make_activity, media_root
):
    fake_pool(FakePool(BrokenProcessPool("a child was killed")))
    sign_in(client, make_fan())
    activity = make_activity()
    fields = {"name": "张三", "phone": "13812345678", "note": "留着"}
    response = client.post(
        f"/activities/{activity.pk}/apply/", fields | {"photos": [upload("a.jpg", jpeg(marked()))]}
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert TRY_AGAIN in page and "留着" in page
    assert not Application.objects.exists() and stored_files(media_root) == []


def test_a_wechat_photo_that_could_not_be_processed_is_kept_for_the_next_submit(
    fake_pool, wechat_api
):
    fake_pool(FakePool(BrokenProcessPool("a child was killed")))
    platform_token(wechat_api, "PLATFORM")
    media_answer(wechat_api, "MEDIA1", jpeg(marked()))
    with pytest.raises(services.PhotoProblem) as caught:
        services.photos_receive(uploads=[], media_ids=["MEDIA1"])
    assert caught.value.message == "暂时无法处理微信中选择的第 1 张照片，请稍后再提交"
    # Not named: the view keeps every media id in the form.
    assert caught.value.media_id == ""


# A photo process outlives no worker ----------------------------------------

WORKER = """
import os, sys
from django.conf import settings
settings.configure(PHOTO_PROCESSES=1, PHOTO_NICE=10, PHOTO_TIMEOUT=30.0)
from activities import photo_pool
pool = photo_pool._pool()
print(pool.submit(os.getpid).result(), pool.submit(os.nice, 0).result(), flush=True)
sys.stdin.read()
"""


def test_photo_processes_are_niced_and_exit_when_their_worker_is_killed():
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER],
        cwd=PROJECT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        child, niceness = map(int, worker.stdout.readline().split())
        gone = os.pidfd_open(child)
    finally:
        # SIGKILL, as the OOM killer or gunicorn's timeout sends: no exit code runs.
        worker.kill()
        worker.wait()
    try:
        assert niceness == min(os.nice(0) + 10, 19)
        readable, _, _ = select.select([gone], [], [], 10)
        assert readable, f"photo process {child} still runs after its worker was killed"
    finally:
        os.close(gone)


# Settings ---------------------------------------------------------------------


def test_the_default_photo_process_settings_pass():
    assert check_photo_process_settings() == []


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("PHOTO_PROCESSES", -1),
        ("PHOTO_PROCESSES", 1.5),
        ("PHOTO_TIMEOUT", 0),
        ("PHOTO_TIMEOUT", float("inf")),
        ("PHOTO_NICE", 20),
        ("PHOTO_NICE", -5),
    ],
)
def test_a_photo_process_setting_out_of_range_is_an_error_naming_it(settings, setting, value):
    setattr(settings, setting, value)
    (message,) = check_photo_process_settings()
    assert message.id == "activities.E004"
    assert message.msg.startswith(f"{setting} {value!r}")
    assert f"Set {setting} in .env" in message.hint


@pytest.mark.parametrize(("raw", "expected"), [("0", 0), ("2", 2), ("-1", 1), ("two", 1)])
def test_photo_processes_from_env_may_be_zero_not_negative(monkeypatch, raw, expected):
    invalid: dict[str, str] = {}
    monkeypatch.setattr(xgc_settings, "XGC_INVALID_SETTINGS", invalid)
    monkeypatch.setenv("PHOTO_PROCESSES", raw)
    assert xgc_settings._env_number("PHOTO_PROCESSES", 1, int, zero=True) == expected
    if expected == 1:
        assert invalid == {"PHOTO_PROCESSES": f"{raw!r} is not 0 or a positive int"}
    else:
        assert invalid == {}
