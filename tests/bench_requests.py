"""CPU per request of a returning fan's sign-in, in process: ``python -m tests.bench_requests``.

The sign-in benchmark (tests/bench.py) measures flows/s on a busy machine,
where a change worth a few percent is lost in the noise. This one sends the
three requests of a returning fan's sign-in (the menu link, WeChat's
callback, the home page) and a trivial one (MP_verify_*.txt: Django's floor)
straight to xgc's WSGI handler, with xgc's settings and middleware, SQLite,
the local-memory cache, and WeChat's token endpoint answered by `responses`.
Sign-in log lines are formatted as in production and written to /dev/null.

It prints the CPU time of each request. With --instructions it counts the
instructions each request executes instead, under valgrind's callgrind: the
same count on every run whatever else the machine is doing, so that a change
of one percent shows. Callgrind counts only inside operator.call (its C
function _operator_call), which nothing but this benchmark calls: each batch
of requests runs inside one operator.call, and callgrind writes a profile part
when it returns.
"""

from __future__ import annotations

import argparse
import gc
import logging
import operator
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from wsgiref.util import setup_testing_defaults

from tests.bench_servers import MP_VERIFY, PROJECT, xgc_env

APP_URL = "http://testserver"
WECHAT_URL = "http://wechat.invalid"
# The user agent of WeChat's browser: other browsers get the open-in-WeChat page.
USER_AGENT = "Mozilla/5.0 (iPhone) MicroMessenger/8.0.50"
OPENID = "oBENCH0000000000000000000000"
NICKNAME = "读书人"
SIGN_IN = ("menu link", "callback", "home")
STEPS = (*SIGN_IN, "trivial view")
COLLECT_IN = "_operator_call"


class Browser:
    """One fan's browser: a cookie jar, and requests sent to a WSGI handler."""

    def __init__(self, handler: Callable):
        self.handler = handler
        self.cookies: dict[str, str] = {}
        self.location = ""

    def get(self, url: str, expected_status: int) -> str:
        path, _, query = url.partition("?")
        environ = {
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "HTTP_HOST": "testserver",
            "HTTP_USER_AGENT": USER_AGENT,
        }
        setup_testing_defaults(environ)
        if self.cookies:
            environ["HTTP_COOKIE"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        response = self.handler(environ, lambda status, headers: None)
        body = b"".join(response).decode()
        response.close()
        if response.status_code != expected_status:
            raise SystemExit(f"GET {path}: HTTP {response.status_code}, not {expected_status}")
        for name, morsel in response.cookies.items():
            if morsel.value:
                self.cookies[name] = morsel.value
            else:
                self.cookies.pop(name, None)
        self.location = response.get("Location", "")
        return body


def set_up(directory: Path) -> Callable:
    """Configure xgc on a fresh SQLite database with one known fan; return its WSGI handler."""
    env = xgc_env(
        public_url=APP_URL,
        sandbox_url=WECHAT_URL,
        database_url=f"sqlite:///{directory / 'db.sqlite3'}",
        redis_url="",
    )
    env.pop("REDIS_URL")
    os.environ.update(env | {"ALLOWED_HOSTS": "testserver", "MEDIA_ROOT": str(directory)})

    import django

    # STATIC_ROOT is empty until collectstatic: nothing here asks for static files.
    warnings.filterwarnings("ignore", message="No directory at", module="whitenoise")
    django.setup()
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.management import call_command

    from fans.models import FansProfile

    call_command("migrate", verbosity=0)
    FansProfile.objects.create(
        openid=OPENID, nickname=NICKNAME, userinfo={"openid": OPENID, "nickname": NICKNAME}
    )
    devnull = open(os.devnull, "w")  # noqa: SIM115 (open for the whole run)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(devnull)
    return WSGIHandler()


def answer_wechat() -> None:
    """Answer WeChat's token endpoint as it answers a returning fan's code."""
    import responses

    mock = responses.RequestsMock(assert_all_requests_are_fired=False)
    mock.start()
    mock.get(
        re.compile(re.escape(WECHAT_URL) + r"/sandbox/sns/oauth2/access_token\?.*"),
        json={
            "access_token": "ACCESS_TOKEN",
            "expires_in": 7200,
            "refresh_token": "REFRESH_TOKEN",
            "openid": OPENID,
            "scope": "snsapi_base",
        },
    )


def round_of(handler: Callable, count: int) -> list[Callable[[], None]]:
    """Return the round's four batches, to run in order: each sends count requests."""
    browsers = [Browser(handler) for _ in range(count)]

    def menu_link() -> None:
        for browser in browsers:
            browser.get("/wechat/login/?next=/", 302)

    def callback() -> None:
        for browser in browsers:
            state = re.search(r"[?&]state=(\w+)", browser.location).group(1)
            browser.get(f"/wechat/authorize/?code=CODE&state={state}", 302)

    def home() -> None:
        for browser in browsers:
            if NICKNAME not in browser.get("/", 200):
                raise SystemExit("the home page greets nobody")

    def trivial() -> None:
        for browser in browsers:
            browser.get(f"/MP_verify_{MP_VERIFY}.txt", 200)

    return [menu_link, callback, home, trivial]


def measure_cpu(handler: Callable, count: int, rounds: int) -> dict[str, float]:
    """Return the median CPU milliseconds per request of each step over rounds."""
    for batch in round_of(handler, count):
        batch()  # warm-up: imports, template loading, the first connection
    seconds: dict[str, list[float]] = {step: [] for step in STEPS}
    for _ in range(rounds):
        for step, batch in zip(STEPS, round_of(handler, count), strict=True):
            gc.collect()
            started = time.process_time()
            batch()
            seconds[step].append(time.process_time() - started)
    return {step: 1000 * statistics.median(times) / count for step, times in seconds.items()}


def run_counted(handler: Callable, count: int) -> None:
    """Under callgrind: warm up, then run each batch inside operator.call."""
    # Started with instrumentation off, so that imports and migrations run
    # ten times faster than they would counted: switch it on now.
    control = shutil.which("callgrind_control") or "callgrind_control"
    subprocess.run([control, "--instr=on", str(os.getpid())], check=True)
    for batch in round_of(handler, count):
        batch()
    for batch in round_of(handler, count):
        # Each batch starts from a collected heap, so that a collection the
        # previous one left due is not counted against it.
        gc.collect()
        operator.call(batch)


def measure_instructions(count: int) -> dict[str, float]:
    """Run this module under callgrind; return millions of instructions per request."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("--instructions needs valgrind (Debian: apt-get install valgrind)")
    with tempfile.TemporaryDirectory(prefix="xgc-callgrind-") as directory:
        output = Path(directory) / "callgrind.out"
        command = [
            valgrind,
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--toggle-collect={COLLECT_IN}",
            f"--dump-after={COLLECT_IN}",
            f"--callgrind-out-file={output}",
            sys.executable,
            "-m",
            "tests.bench_requests",
            "--count",
            str(count),
            "--counted",
        ]
        done = subprocess.run(command, cwd=PROJECT, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"callgrind run failed:\n{done.stderr[-2000:]}")
        parts = sorted(Path(directory).glob("callgrind.out.*"), key=lambda p: int(p.suffix[1:]))
        totals = [total_instructions(part) for part in parts[: len(STEPS)]]
    if len(totals) != len(STEPS):
        raise SystemExit(f"callgrind wrote {len(totals)} parts, not {len(STEPS)}")
    return {step: total / count / 1e6 for step, total in zip(STEPS, totals, strict=True)}


def total_instructions(part: Path) -> int:
    """Return the instruction count of one callgrind profile part."""
    for line in part.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise SystemExit(f"no totals in {part}")


def report(figures: dict[str, float], unit: str) -> None:
    lines = [f"{'request':<14}{unit:>24}"]
    lines += [f"{step:<14}{value:>24.3f}" for step, value in figures.items()]
    flow = sum(figures[step] for step in SIGN_IN)
    lines.append(f"{'sign-in':<14}{flow:>24.3f}  (the first three)")
    sys.stdout.write("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100, help="requests per step and round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of CPU time (median)")
    parser.add_argument(
        "--instructions", action="store_true", help="count instructions under valgrind instead"
    )
    parser.add_argument("--counted", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.instructions:
        report(measure_instructions(options.count), "M instructions / request")
        return 0
    with tempfile.TemporaryDirectory(prefix="xgc-bench-requests-") as directory:
        handler = set_up(Path(directory))
        answer_wechat()
        if options.counted:
            run_counted(handler, options.count)
        else:
            report(measure_cpu(handler, options.count, options.rounds), "CPU ms / request")
    return 0


if __name__ == "__main__":
    sys.exit(main())
