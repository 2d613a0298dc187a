"""Fans applying with photos at a steady rate: the load beside the benchmark's sign-ins.

Each application comes from a fresh virtual fan (tests/bench_fans.py) who
signs up through the WeChat sandbox, opens the activity's apply form and posts
it with three 12-megapixel phone photos (tests/bench_photos.py) in its
``photos`` file input, as a browser without JavaScript does, then follows the
redirect to the saved application. Applications start on an open-loop
schedule: the n-th at n / rate seconds, whether or not the earlier ones have
been answered, as fans do not wait for each other.

The rate that keeps a given share of one core busy with photos comes from the
photos' measured CPU cost (applications_per_second_for). Usage::

    env = xgc_env(...)                # tests/bench_servers.py
    activity = create_activity(env)
    photos = application_photos()
    rate = applications_per_second_for(
        core_share=0.5, seconds_per_application=cpu_seconds_per_application(photos)
    )
    load = UploadLoad(app_url, sandbox_url, activity, photos, rate=rate, max_seconds=60)
    load.prepare(80)                  # sign the applicants up before measuring
    with load.running():
        ...                           # measure the sign-ins
    print(load.describe())
"""

from __future__ import annotations

import html
import itertools
import re
import statistics
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests

from activities import photos as pipeline

from .bench_fans import CSRF_FIELD, REQUEST_SECONDS, Fan, Flow, FlowError, run_flows
from .bench_photos import LIMITS, phone_jpeg
from .bench_servers import PROJECT

PHOTOS_PER_APPLICATION = 3
# Enough for a bench's thousands of applications.
CAPACITY = 100_000
APPLICATION_PATH = re.compile(r"/applications/[0-9]+/")
# What the application's page says while it waits for review.
SAVED_TEXT = "组织者审核后"
FORM_ERROR = re.compile(r'<p class="field__error">([^<]+)</p>')
# Threads that post applications: more than the applications in flight at
# the rates of a 2-core machine, so that the schedule is kept.
THREADS = 8

CREATE_ACTIVITY = f"""
from activities.models import Activity
activity = Activity.objects.create(
    title="压测活动", description="基准测试：带照片的申请。", published=True,
    capacity={CAPACITY}, review_required=True,
)
print("activity", activity.pk)
"""


def create_activity(env: dict[str, str]) -> int:
    """Create a published activity open to applications, in the database of env's xgc; return its id.

    env is xgc's environment (bench_servers.xgc_env): manage.py reads the same
    DATABASE_URL as the servers. Reviewed applications stay pending, so no
    template message is queued.
    """
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", CREATE_ACTIVITY],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    # Logging goes to stdout too: take the line printed above.
    (pk,) = re.findall(r"^activity ([0-9]+)$", done.stdout, re.MULTILINE)
    return int(pk)


def application_photos(count: int = PHOTOS_PER_APPLICATION) -> list[bytes]:
    """Return count different 12-megapixel phone JPEGs (about 4 MB each, 1 s each to make).

    Different bytes: an application keeps the same photo only once.
    """
    photos = [phone_jpeg() for _ in range(count)]
    assert len(set(photos)) == count, "phone_jpeg made the same photo twice"
    return photos


def cpu_seconds_per_application(photos: Sequence[bytes], rounds: int = 3) -> float:
    """Return the CPU seconds process_photo takes on all of photos, the median of rounds.

    Timed with this thread's CPU clock: the photos' decoding and encoding, what
    the photo processes do for one application; not the request around it.
    """
    totals = []
    for _ in range(rounds):
        started = time.thread_time()
        for data in photos:
            pipeline.process_photo(data, **LIMITS)
        totals.append(time.thread_time() - started)
    return statistics.median(totals)


def applications_per_second_for(*, core_share: float, seconds_per_application: float) -> float:
    """Return the applications per second whose photos keep core_share of one core busy.

    One application costs seconds_per_application of CPU; at r applications
    per second that is r * seconds_per_application core-seconds per second.
    E.g. 0.5 of a core at 0.39 s per application: 1.28 applications/s.
    """
    if core_share <= 0 or seconds_per_application <= 0:
        raise ValueError("core_share and seconds_per_application must be above 0")
    return core_share / seconds_per_application


def schedule(
    rate: float, *, max_count: int | None = None, max_seconds: float | None = None
) -> Iterator[float]:
    """Yield the n-th application's start, in seconds from the first: n / rate, within the bounds."""
    if rate <= 0:
        raise ValueError("rate must be above 0")
    for number in itertools.count():
        at = number / rate
        if (max_count is not None and number >= max_count) or (
            max_seconds is not None and at >= max_seconds
        ):
            return
        yield at


def photo_files(photos: Sequence[bytes]) -> list[tuple[str, tuple[str, bytes, str]]]:
    """Return photos as a browser posts the files of ``<input type="file" name="photos" multiple>``."""
    return [
        ("photos", (f"IMG_{number:04d}.JPG", data, "image/jpeg"))
        for number, data in enumerate(photos, 1)
    ]


def form_errors(page: str) -> list[str]:
    """Return the error messages of a form page that came back."""
    return [html.unescape(text) for text in FORM_ERROR.findall(page)]


@dataclass
class Submission:
    """One application as the fan's browser saw it; times in seconds."""

    # When it was due and when it started, from the load's start
    scheduled: float
    started: float = 0.0
    # Signing up, when the fan was not signed up ahead
    sign_up: float = 0.0
    # Opening the form, then posting it until the application's page
    form: float = 0.0
    post: float = 0.0
    error: str | None = None

    @property
    def lag(self) -> float:
        """How late the application started: the load generator falling behind."""
        return self.started - self.scheduled


class Applicant(Fan):
    """A virtual fan who applies to an activity with photos."""

    def apply(self, activity_id: int, photos: Sequence[bytes], submission: Submission) -> None:
        """Open the apply form and post it with photos; note the times in submission.

        Raise FlowError or a requests exception when the application was not saved.
        """
        url = f"{self.app_url}/activities/{activity_id}/apply/"
        started = time.monotonic()
        form = self.session.get(url, timeout=REQUEST_SECONDS)
        submission.form = time.monotonic() - started
        if form.status_code != 200:
            raise FlowError(f"apply form: HTTP {form.status_code}")
        token = CSRF_FIELD.search(form.text)
        if token is None:
            raise FlowError("apply form: no CSRF token")
        fields = {
            "csrfmiddlewaretoken": token.group(1),
            "name": "压测粉丝",
            "phone": "13812345678",
            "note": "",
        }
        started = time.monotonic()
        page = self.session.post(
            url,
            data=fields,
            files=photo_files(photos),
            headers={"Referer": url},
            timeout=REQUEST_SECONDS,
        )
        submission.post = time.monotonic() - started
        if page.status_code != 200:
            raise FlowError(f"apply: HTTP {page.status_code} from {urlsplit(page.url).path}")
        if not APPLICATION_PATH.fullmatch(urlsplit(page.url).path) or SAVED_TEXT not in page.text:
            errors = form_errors(page.text)
            raise FlowError(f"apply: not saved ({'; '.join(errors) or urlsplit(page.url).path})")


class UploadLoad:
    """Applications with photos at rate per second, from fresh fans, until a bound or stop().

    Run it in a background thread (start(), or running() around a
    measurement). Every application is noted in submissions, with its error.
    """

    def __init__(
        self,
        app_url: str,
        sandbox_url: str,
        activity_id: int,
        photos: Sequence[bytes],
        *,
        rate: float,
        max_count: int | None = None,
        max_seconds: float | None = None,
        stop: threading.Event | None = None,
        threads: int = THREADS,
    ):
        if max_count is None and max_seconds is None and stop is None:
            raise ValueError("give max_count, max_seconds or a stop event")
        self.app_url, self.sandbox_url = app_url, sandbox_url
        self.activity_id = activity_id
        self.photos = list(photos)
        self.rate, self.max_count, self.max_seconds = rate, max_count, max_seconds
        self.stop_event = stop or threading.Event()
        self.threads = threads
        self.submissions: list[Submission] = []
        self.seconds = 0.0
        self._ready: deque[Applicant] = deque()
        self._thread: threading.Thread | None = None

    def prepare(self, count: int, concurrency: int = THREADS) -> list[Flow]:
        """Sign count applicants up now, so that applying costs no sign-up later; return their flows."""
        applicants = [Applicant(self.app_url, self.sandbox_url) for _ in range(count)]
        flows, _ = run_flows([applicant.sign_up for applicant in applicants], concurrency)
        self._ready.extend(a for a, flow in zip(applicants, flows, strict=True) if not flow.error)
        return flows

    def run(self) -> None:
        """Start the applications on schedule; return when a bound is reached or stop is set, and all are answered."""
        self.submissions = []
        started = time.monotonic()
        with ThreadPoolExecutor(self.threads, thread_name_prefix="applicant") as pool:
            for at in schedule(self.rate, max_count=self.max_count, max_seconds=self.max_seconds):
                if self.stop_event.wait(max(0.0, started + at - time.monotonic())):
                    break
                submission = Submission(scheduled=at)
                self.submissions.append(submission)
                pool.submit(self._apply, submission, started)
        self.seconds = time.monotonic() - started

    def _apply(self, submission: Submission, load_started: float) -> None:
        submission.started = time.monotonic() - load_started
        try:
            applicant = self._ready.popleft()
        except IndexError:
            applicant = Applicant(self.app_url, self.sandbox_url)
            flow = applicant.sign_up()
            submission.sign_up = flow.seconds
            if flow.error:
                submission.error = f"sign-up: {flow.error}"
                return
        try:
            applicant.apply(self.activity_id, self.photos, submission)
        except FlowError as error:
            submission.error = str(error)
        except requests.Timeout:
            submission.error = "timeout"
        except requests.RequestException as error:
            submission.error = type(error).__name__
        finally:
            applicant.session.close()

    def start(self) -> threading.Thread:
        self.stop_event.clear()
        self._thread = threading.Thread(target=self.run, name="upload-load", daemon=True)
        self._thread.start()
        return self._thread

    def stop(self) -> None:
        """Start no more applications and wait for those under way."""
        self.stop_event.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    @contextmanager
    def running(self) -> Iterator[UploadLoad]:
        self.start()
        try:
            yield self
        finally:
            self.stop()

    def failed(self) -> list[Submission]:
        return [submission for submission in self.submissions if submission.error]

    def describe(self) -> str:
        """Return one line: the rate asked and kept, the answers' times, the errors."""
        done = [s for s in self.submissions if not s.error]
        posts = sorted(s.post for s in done)
        line = (
            f"{len(self.photos)} photos of {sum(map(len, self.photos)) / 1e6:.1f} MB per "
            f"application at {self.rate:.2f}/s: {len(self.submissions)} in {self.seconds:.1f} s, "
            f"{len(done)} saved"
        )
        if posts:
            p95 = posts[min(len(posts) - 1, round(0.95 * (len(posts) - 1)))]
            lag = max(s.lag for s in self.submissions)
            line += (
                f", post median {statistics.median(posts):.2f} s, p95 {p95:.2f} s, "
                f"latest start {lag:.2f} s late"
            )
        errors = sorted({s.error for s in self.failed()})
        if errors:
            line += f"; {len(self.failed())} failed: {', '.join(errors[:3])}"
        return line
