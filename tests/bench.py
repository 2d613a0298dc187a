"""Benchmark xgc's sign-in as deployed: ``python -m tests.bench`` (or ``make bench``).

It serves the same sign-in on several stacks side by side, each a gunicorn
with deploy/gunicorn.conf.py and a WeChat sandbox of its own (its OAuth domain
is one app's address), all on 127.0.0.1:

- xgc on SQLite with the local-memory cache: the embedded default;
- xgc on PostgreSQL and Redis: the production stack;
- with --reference, tests/bench_reference.py, a minimal WSGI app without
  Django (pooled requests, raw SQL), on SQLite and on PostgreSQL.

Virtual fans (tests/bench_fans.py) sign in, --concurrency at a time, with
--latency-ms added to each WeChat API call; the fans who will return sign up
first (the warm-up). Each round measures every stack one after the other
(in turn first), and for xgc on PostgreSQL also the flows with 0 ms added and
the floor (as many requests to a trivial xgc view and a trivial sandbox
endpoint). With --photos, each round measures each xgc stack once more while
fans submit applications with three 12-megapixel photos at a steady rate
(tests/bench_uploads.py). A ratio of flows/s is the median of the rounds'
ratios, printed with their range; a ratio of p99 compares all the rounds'
callbacks. It prints the figures and each target with pass or FAIL, and exits
non-zero only if a flow failed.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit, urlunsplit

import psycopg
import redis
import requests

from xgc.sandbox.process import SANDBOX_APP, free_port

from .bench_fans import Fan, Flow, new_session, run_flows
from .bench_profile import LAYERS, OUTSIDE, Profile, ProfilerError, py_spy, tracing_refused
from .bench_reference import create_schema
from .bench_servers import (
    MP_VERIFY,
    PROJECT,
    Server,
    base_env,
    start_sandbox,
    start_xgc,
    xgc_env,
)
from .bench_uploads import (
    Submission,
    UploadLoad,
    application_photos,
    applications_per_second_for,
    cpu_seconds_per_application,
    create_activity,
)

DATABASE = "xgc_bench"
# deploy/gunicorn.conf.py's defaults, and the load of issue 12 on a 2-core
# machine: 2000 flows per stack, 50 at once, 80% returning fans.
DEFAULTS = {
    "fans": 400,
    "rounds": 5,
    "returning_share": 0.8,
    "concurrency": 50,
    "latency_ms": 50,
    "workers": 2,
    "threads": 16,
    "reference": True,
    "photos": True,
    "profile": False,
}
# Uploads keep this share of one core busy with photos (issue 12, target 3);
# applicants are signed up in advance for runs of about this many seconds.
UPLOAD_CORE_SHARE = 0.5
UPLOAD_SECONDS_PER_RUN = 8
UPLOAD_MAX_SECONDS = 600
# Small enough for CI, large enough to go through every step.
SMOKE = {"fans": 16, "rounds": 1, "concurrency": 4, "latency_ms": 10, "workers": 1, "threads": 4}
EXPECTED_CALLS = {
    "returning": {"sns/oauth2/access_token": 1},
    "new": {"sns/oauth2/access_token": 2, "sns/userinfo": 1},
}
TICKS = os.sysconf("SC_CLK_TCK")


class Kind(NamedTuple):
    """What a stack serves, and on which database."""

    label: str
    # A WSGI app as "module:name"; None: xgc
    app: str | None
    database: str


REFERENCE_APP = "tests.bench_reference:application"
STACKS = {
    "sqlite": Kind("xgc, SQLite", None, "SQLite"),
    "postgres": Kind("xgc, PostgreSQL", None, "PostgreSQL"),
    "reference-sqlite": Kind("minimal, SQLite", REFERENCE_APP, "SQLite"),
    "reference-postgres": Kind("minimal, PostgreSQL", REFERENCE_APP, "PostgreSQL"),
}
# The runs of one stack: sign-ins with WeChat's latency; with uploads beside
# them; with 0 ms added; the floor.
SIGN_IN, UPLOADS, ZERO, FLOOR = "sign-in", "with uploads", "+0 ms", "floor"


@dataclass
class Run:
    """Flows measured under one condition, added up over the rounds."""

    flows: list[Flow] = field(default_factory=list)
    seconds: float = 0.0
    # WeChat API calls by route, for returning and for new fans
    calls: dict[str, Counter] = field(
        default_factory=lambda: {"returning": Counter(), "new": Counter()}
    )
    new_connections: int = 0
    # CPU seconds by process group
    cpu: Counter = field(default_factory=Counter)

    @property
    def rate(self) -> float:
        return len(self.flows) / self.seconds

    def flows_of(self, kind: str) -> int:
        return sum(1 for flow in self.flows if flow.kind == kind)

    def add(self, part: Run) -> None:
        self.flows += part.flows
        self.seconds += part.seconds
        for kind, calls in part.calls.items():
            self.calls[kind] += calls
        self.new_connections += part.new_connections
        self.cpu += part.cpu


@dataclass
class Stack:
    """One app and the sandbox that is WeChat to it."""

    key: str
    sandbox: Server
    app: Server
    returning: list[Fan]
    runs: dict[str, Run] = field(default_factory=dict)
    warm_up: list[Flow] = field(default_factory=list)
    # Applications with photos beside the sign-ins (xgc with --photos only)
    # xgc's environment, for manage.py commands on the same database
    env: dict[str, str] = field(default_factory=dict)
    uploads: UploadLoad | None = None
    submissions: list[Submission] = field(default_factory=list)

    @property
    def label(self) -> str:
        return STACKS[self.key].label

    @property
    def is_xgc(self) -> bool:
        return STACKS[self.key].app is None

    def run(self, condition: str) -> Run:
        return self.runs.setdefault(condition, Run())


class Bench:
    def __init__(self, options: argparse.Namespace, stacks: list[Stack], work_dir: Path):
        self.options = options
        self.stacks = stacks
        self.profile = Profile(work_dir) if options.profile else None
        # flows/s of each round's runs, by (stack key, condition)
        self.round_rates: list[dict[tuple[str, str], float]] = []

    def run(self) -> None:
        """Warm up, then measure every round."""
        for stack in self.stacks:
            # Under latency more threads wait on WeChat at once: warm them all up.
            set_latency(stack, self.options.latency_ms)
            signing_up = [fan.sign_up for fan in stack.returning]
            stack.warm_up, _ = run_flows(signing_up, self.options.concurrency)
        for number in range(self.options.rounds):
            rates = {}
            # Each stack goes first in turn: a machine warming up or slowing
            # down over a round touches every stack alike.
            shift = number % len(self.stacks)
            for stack in self.stacks[shift:] + self.stacks[:shift]:
                with self.profiling(stack):
                    measured = self.measure_flows(stack, SIGN_IN, self.options.latency_ms)
                rates[stack.key, SIGN_IN] = measured.rate
                if stack.uploads is not None:
                    with stack.uploads.running():
                        part = self.measure_flows(stack, UPLOADS, self.options.latency_ms)
                    stack.submissions += stack.uploads.submissions
                    rates[stack.key, UPLOADS] = part.rate
                if stack.key == "postgres":
                    zero = self.measure_flows(stack, ZERO, 0)
                    rates[stack.key, ZERO] = zero.rate
                    rates[stack.key, FLOOR] = self.measure_floor(stack, zero).rate
                set_latency(stack, self.options.latency_ms)
            self.round_rates.append(rates)

    def profiling(self, stack: Stack) -> AbstractContextManager:
        """Sample the app's workers while the block runs, with --profile."""
        if self.profile is None:
            return nullcontext()
        return self.profile.of(stack.key, stack.app.worker_pids())

    def measure_flows(self, stack: Stack, condition: str, latency_ms: int) -> Run:
        """Bring the returning fans back, then sign new fans up; return this round's part."""
        set_latency(stack, latency_ms)
        take_stats(stack)
        newcomers = [
            Fan(stack.app.url, stack.sandbox.url)
            for _ in range(self.options.fans - len(stack.returning))
        ]
        part = Run()
        for kind, flows in (
            ("returning", [fan.come_back for fan in stack.returning]),
            ("new", [fan.sign_up for fan in newcomers]),
        ):
            self.timed(stack, part, flows)
            stats = take_stats(stack)
            part.calls[kind].update(stats["calls"])
            part.new_connections += stats["new_connections"]
        stack.run(condition).add(part)
        return part

    def measure_floor(self, stack: Stack, base: Run) -> Run:
        """Send each fan of base as many requests, to trivial views; time them."""
        set_latency(stack, 0)
        api_calls = {
            kind: sum(base.calls[kind].values()) / max(base.flows_of(kind), 1)
            for kind in base.calls
        }

        def trivial(flow: Flow) -> Callable[[], Flow]:
            def requests_like() -> Flow:
                session = new_session()
                for _ in range(flow.app_requests):
                    answer = session.get(f"{stack.app.url}/MP_verify_{MP_VERIFY}.txt", timeout=30)
                    answer.raise_for_status()
                for _ in range(flow.wechat_requests + round(api_calls[flow.kind])):
                    session.get(f"{stack.sandbox.url}/sandbox/ping", timeout=30).raise_for_status()
                session.close()
                return Flow(flow.kind)

            return requests_like

        part = Run()
        self.timed(stack, part, [trivial(flow) for flow in base.flows])
        stack.run(FLOOR).add(part)
        return part

    def timed(self, stack: Stack, part: Run, flows: list[Callable[[], Flow]]) -> None:
        before = cpu_seconds(stack)
        done, seconds = run_flows(flows, self.options.concurrency)
        part.cpu += cpu_seconds(stack) - before
        part.flows += done
        part.seconds += seconds

    def ratios(self, numerator: tuple[str, str], denominator: tuple[str, str]) -> list[float]:
        """Return each round's ratio of two runs' flows/s."""
        return [rates[numerator] / rates[denominator] for rates in self.round_rates]


def set_latency(stack: Stack, latency_ms: int) -> None:
    url = f"{stack.sandbox.url}/sandbox/faults"
    requests.post(url, {"latency_ms": latency_ms}, timeout=10).raise_for_status()


def take_stats(stack: Stack) -> dict:
    """Return the sandbox's counts since the last call, and start them again."""
    answer = requests.post(f"{stack.sandbox.url}/sandbox/stats", timeout=10)
    answer.raise_for_status()
    return answer.json()


def cpu_seconds(stack: Stack) -> Counter:
    """Return CPU seconds used so far by each kind of process, and the machine's."""
    times = os.times()
    with open("/proc/stat") as stat:
        # user nice system idle iowait irq softirq; not steal, which a
        # virtual machine's neighbours take
        ticks = [int(value) for value in stat.readline().split()[1:8]]
    return Counter(
        {
            "app": sum(process_cpu(pid) for pid in stack.app.worker_pids()),
            "sandbox": sum(process_cpu(pid) for pid in stack.sandbox.worker_pids()),
            "fans": times.user + times.system,
            "machine": (sum(ticks) - ticks[3] - ticks[4]) / TICKS,
        }
    )


def process_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:  # ended since its parent was asked
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> int:
    options = parse_options()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="xgc-bench-") as work_dir:
        postgres_url = fresh_database(options.database_url)
        redis.Redis.from_url(options.redis_url).flushdb()
        servers: list[Server] = []
        try:
            stacks = start_stacks(options, postgres_url, Path(work_dir), servers)
            if options.photos:
                add_uploads(stacks, options, Path(work_dir))
            bench = Bench(options, stacks, Path(work_dir))
            bench.run()
            failed = report(bench)
        finally:
            for server in reversed(servers):
                server.stop()
            drop_database(options.database_url)
    say(f"\n({time.monotonic() - started:.0f} s in all)")
    return 1 if failed else 0


def parse_options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench", description=__doc__.split("\n", 1)[0]
    )
    parser.add_argument("--fans", type=int, help="flows per stack and round")
    parser.add_argument("--rounds", type=int, help="times to measure each stack, in turn")
    parser.add_argument("--returning-share", type=float, help="share of the flows that return")
    parser.add_argument("--concurrency", type=int, help="fans signing in at once")
    parser.add_argument("--latency-ms", type=int, help="added to each WeChat API call")
    parser.add_argument("--workers", type=int, help="gunicorn workers of each app")
    parser.add_argument("--threads", type=int, help="threads per worker")
    parser.add_argument(
        "--reference",
        action=argparse.BooleanOptionalAction,
        help="also measure the minimal WSGI app of tests/bench_reference.py",
    )
    parser.add_argument(
        "--photos",
        action=argparse.BooleanOptionalAction,
        help="also measure xgc's sign-ins while fans upload photos",
    )
    parser.add_argument(
        "--profile",
        action=argparse.BooleanOptionalAction,
        help="sample each app's workers with py-spy during its sign-ins; print where the CPU goes",
    )
    parser.add_argument("--smoke", action="store_true", help="a small run that CI makes")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("XGC_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test"),
        help=f"a database on the PostgreSQL server to use; {DATABASE} is created next to it",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("XGC_TEST_REDIS_URL", "redis://127.0.0.1:6379/15"),
        help="a Redis database that the benchmark may flush",
    )
    parser.set_defaults(**DEFAULTS)
    options = parser.parse_args()
    if options.smoke:
        vars(options).update(SMOKE)
    if options.profile:
        # Said now, not after minutes of warm-up.
        try:
            py_spy()
        except ProfilerError as error:
            parser.error(str(error))
        if reason := tracing_refused():
            parser.error(reason)
    return options


def maintenance(url: str) -> psycopg.Connection:
    parts = urlsplit(url)
    return psycopg.connect(
        host=parts.hostname,
        port=parts.port,
        user=parts.username,
        password=parts.password,
        dbname=parts.path.lstrip("/") or "postgres",
        autocommit=True,
        connect_timeout=5,
    )


def fresh_database(url: str) -> str:
    """Create the benchmark's own database next to url's; return its URL."""
    with maintenance(url) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        connection.execute(f"CREATE DATABASE {DATABASE}")
    return urlunsplit(urlsplit(url)._replace(path=f"/{DATABASE}"))


def drop_database(url: str) -> None:
    with maintenance(url) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")


def migrate(database_url: str) -> None:
    migrated = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input"],
        cwd=PROJECT,
        env=base_env(
            **SANDBOX_APP,
            WECHAT_SANDBOX="1",
            WECHAT_SANDBOX_FORCE="1",
            DATABASE_URL=database_url,
            REDIRECT_URL="http://127.0.0.1/wechat/authorize/",
        ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    if migrated.returncode:
        raise RuntimeError(f"migrate failed:\n{migrated.stdout}{migrated.stderr}")


def start_stacks(
    options: argparse.Namespace, postgres_url: str, work_dir: Path, servers: list[Server]
) -> list[Stack]:
    """Make the databases, then start each stack; add its servers to servers as they start.

    Every sandbox has a SQLite database of its own (and Redis, which it shares
    under a key prefix of its own), so that WeChat's side costs the same
    whichever database the app uses, and PostgreSQL's connections are left
    to the apps.
    """
    migrate(postgres_url)
    migrated = work_dir / "migrated.sqlite3"
    migrate(f"sqlite:///{migrated}")

    def sqlite_url(name: str) -> str:
        copy = work_dir / f"{name}.sqlite3"
        shutil.copyfile(migrated, copy)
        return f"sqlite:///{copy}"

    keys = [key for key, kind in STACKS.items() if options.reference or kind.app is None]
    stacks = []
    for key in keys:
        _, app, database = STACKS[key]
        if database == "SQLite":
            # The embedded default: no Redis, the local-memory cache.
            database_url, redis_url = sqlite_url(key), ""
        else:
            database_url, redis_url = postgres_url, options.redis_url
        if app is not None:
            create_schema(database_url)
        port = free_port()
        sandbox = start_sandbox(
            database_url=sqlite_url(f"sandbox-{key}"),
            redis_url=options.redis_url,
            app_netloc=f"127.0.0.1:{port}",
            log_dir=work_dir,
            # WeChat is not one process: as many workers as the app's, so
            # that the sandbox's own GIL does not hold WeChat's side back,
            # and enough threads for every app thread to wait on one call.
            workers=options.workers,
            threads=max(32, options.workers * options.threads),
            cache_prefix=f"sandbox-{key}",
            name=f"sandbox-{key}",
        )
        servers.append(sandbox)
        env = {
            "public_url": f"http://127.0.0.1:{port}",
            "sandbox_url": sandbox.url,
            "database_url": database_url,
            "redis_url": redis_url,
            "settings_module": "tests.bench_settings",
            # Photos of the uploads go where the benchmark cleans up.
            "media_root": str(work_dir / f"{key}-media"),
        }
        server = start_xgc(
            key,
            port=port,
            log_dir=work_dir,
            workers=options.workers,
            threads=options.threads,
            app=app,
            **env,
        )
        servers.append(server)
        returning = round(options.fans * options.returning_share)
        fans = [Fan(server.url, sandbox.url) for _ in range(returning)]
        stacks.append(Stack(key, sandbox, server, fans, env=xgc_env(**env)))
    return stacks


def add_uploads(stacks: list[Stack], options: argparse.Namespace, work_dir: Path) -> None:
    """Give each xgc stack applications with photos at the rate that keeps half a core busy."""
    photos = application_photos()
    rate = applications_per_second_for(
        core_share=UPLOAD_CORE_SHARE, seconds_per_application=cpu_seconds_per_application(photos)
    )
    for stack in stacks:
        if stack.is_xgc:
            activity = create_activity(stack.env)
            stack.uploads = UploadLoad(
                stack.app.url,
                stack.sandbox.url,
                activity,
                photos,
                rate=rate,
                max_seconds=UPLOAD_MAX_SECONDS,
            )
            # Signed up before the rounds, so that an application costs only itself.
            stack.uploads.prepare(math.ceil(rate * options.rounds * UPLOAD_SECONDS_PER_RUN))


def report(bench: Bench) -> int:
    """Print the figures and the targets; return how many flows failed."""
    options, stacks = bench.options, {stack.key: stack for stack in bench.stacks}
    say(f"machine    {machine()}")
    say(
        f"servers    each app: gunicorn, workers {options.workers}, threads {options.threads}; "
        f"WeChat: a sandbox per app, in its own gunicorn (workers {options.workers}) "
        "on SQLite and Redis"
    )
    say(
        f"load       {options.rounds} rounds of {options.fans} flows per run "
        f"({len(bench.stacks[0].returning)} returning), {options.concurrency} at once, "
        f"WeChat +{options.latency_ms} ms; warm-up: {len(bench.stacks[0].warm_up)} new fans"
    )
    for stack in bench.stacks:
        if stack.uploads is not None:
            say(f"uploads    {stack.label}: {uploads_summary(stack)}")
    say()
    table(
        [
            "run",
            "flows/s",
            "callback p50/p90/p99 ms",
            "flow p50/p90/p99 ms",
            "CPU ms/flow app/WeChat/fans/rest",
            "queries/callback",
        ],
        [
            [
                f"{stack.label}{'' if condition == SIGN_IN else f', {condition}'}",
                f"{run.rate:.1f}",
                percentiles(callbacks(run)),
                percentiles([flow.seconds for flow in run.flows]),
                "/".join(cpu_per_flow(run, group) for group in ("app", "sandbox", "fans", "rest")),
                shown_queries(callback_queries([run])),
            ]
            for stack in bench.stacks
            for condition, run in stack.runs.items()
        ],
        "<>>>>>",
    )
    say("queries/callback: returning fan; new fan's silent, then after consent")
    say()
    xgc_stacks = [stack for stack in bench.stacks if stack.is_xgc]
    measured = {stack.key: measured_runs(stack) for stack in xgc_stacks}
    for stack in xgc_stacks:
        calls = calls_per_flow(measured[stack.key])
        shown = "; ".join(
            f"{kind} fan: "
            + (", ".join(f"{route} {n:.2f}" for route, n in routes.items()) or "none")
            for kind, routes in calls.items()
        )
        say(f"{stack.label}: WeChat API calls per flow: {shown}")
    rss = {
        stack.key: [peak_rss_mb(pid) for pid in stack.app.worker_pids()] for stack in bench.stacks
    }
    say(
        "Peak RSS per worker, MB: "
        + "; ".join(
            f"{stack.label} " + ", ".join(f"{mb:.0f}" for mb in rss[stack.key])
            for stack in bench.stacks
        )
    )
    say_profile(bench)
    say()
    rows = []
    if "sqlite" in stacks and "postgres" in stacks:
        rows += [
            ratio_target(
                "SQLite as fast",
                "flows/s SQLite / PostgreSQL",
                bench.ratios(("sqlite", SIGN_IN), ("postgres", SIGN_IN)),
                1.1,
            ),
            p99_target(
                "SQLite's tail",
                "callback p99 SQLite / PostgreSQL",
                stacks["sqlite"].run(SIGN_IN),
                stacks["postgres"].run(SIGN_IN),
            ),
        ]
    for database in ("sqlite", "postgres"):
        if f"reference-{database}" in stacks:
            rows.append(
                ratio_target(
                    "beats a minimal app",
                    f"flows/s xgc / minimal, {STACKS[database].database}",
                    bench.ratios((database, SIGN_IN), (f"reference-{database}", SIGN_IN)),
                    1.1,
                )
            )
    for stack in xgc_stacks:
        if UPLOADS in stack.runs:
            rows += [
                ratio_target(
                    "photos never slow",
                    f"flows/s with uploads / without, {STACKS[stack.key].database}",
                    bench.ratios((stack.key, UPLOADS), (stack.key, SIGN_IN)),
                    0.8,
                ),
                p99_target(
                    "photos never slow",
                    f"callback p99 with uploads / without, {STACKS[stack.key].database}",
                    stack.run(UPLOADS),
                    stack.run(SIGN_IN),
                ),
            ]
    if "postgres" in stacks:
        rows += [
            ratio_target(
                "WeChat latency hidden",
                f"flows/s +{options.latency_ms} ms / +0 ms, PostgreSQL",
                bench.ratios(("postgres", SIGN_IN), ("postgres", ZERO)),
                0.85,
            ),
            ratio_target(
                "close to the floor",
                "flows/s +0 ms / floor, PostgreSQL",
                bench.ratios(("postgres", ZERO), ("postgres", FLOOR)),
                0.5,
            ),
        ]
    connections = sum(run.new_connections for runs in measured.values() for run in runs)
    flows = sum(len(run.flows) for runs in measured.values() for run in runs)
    per_1000 = 1000 * connections / flows
    all_measured = [run for runs in measured.values() for run in runs]
    calls = calls_per_flow(all_measured)
    exact_calls = all(calls[kind] == expected for kind, expected in EXPECTED_CALLS.items())
    returning_queries = max_queries(all_measured, "returning")
    xgc_rss = max(mb for stack in xgc_stacks for mb in rss[stack.key])
    rows += [
        target("connection reuse", "new connections / 1000 flows", per_1000, "<= 5", per_1000 <= 5),
        target(
            "minimal calls",
            "API calls returning / new fan",
            " / ".join(f"{sum(calls[kind].values()):.2f}" for kind in ("returning", "new")),
            "1 / 3, only those",
            exact_calls,
        ),
        target(
            "minimal queries",
            "returning fan's callback",
            returning_queries,
            "<= 2",
            returning_queries <= 2,
        ),
        target("memory", "peak RSS of an xgc worker, MB", round(xgc_rss), "< 150", xgc_rss < 150),
    ]
    table(["target", "measured", "", "wanted", ""], rows, "<<><<")
    if "sqlite" in stacks and "postgres" in stacks:
        say_database_bound(stacks["sqlite"].run(SIGN_IN), stacks["postgres"].run(SIGN_IN))
    if "postgres" in stacks and FLOOR in stacks["postgres"].runs:
        say_bound(bench)
    say()
    errors = Counter(
        f"{flow.error} ({stack.label}, {condition})"
        for stack in bench.stacks
        for condition, run in [("warm-up", Run(flows=stack.warm_up)), *stack.runs.items()]
        for flow in run.flows
        if flow.error
    )
    errors += Counter(
        f"upload {submission.error} ({stack.label})"
        for stack in bench.stacks
        for submission in stack.submissions
        if submission.error
    )
    say("errors: " + (", ".join(f"{n} x {kind}" for kind, n in errors.items()) or "none"))
    return sum(errors.values())


def say_profile(bench: Bench) -> None:
    """Print, with --profile, where each app's CPU went during its sign-ins."""
    if bench.profile is None:
        return
    stacks = [stack for stack in bench.stacks if stack.key in bench.profile.by_app]
    say()
    say(
        "Where each app's CPU goes in its sign-ins: share of py-spy's samples of the thread "
        "holding the GIL, by the innermost layer on the stack, and that share of the app's "
        "CPU ms per flow"
    )
    shares = {stack.key: bench.profile.shares(stack.key) for stack in stacks}
    app_ms = {stack.key: 1000 * per_flow(stack.run(SIGN_IN), "app") for stack in stacks}
    table(
        ["layer", *(stack.label for stack in stacks)],
        [
            [
                layer,
                *(
                    f"{shares[stack.key][layer]:4.0%} {shares[stack.key][layer] * app_ms[stack.key]:4.1f}"
                    for stack in stacks
                ),
            ]
            for layer in [*(name for name, _ in LAYERS), OUTSIDE]
        ]
        + [["samples", *(str(bench.profile.samples(stack.key)) for stack in stacks)]],
        "<" + ">" * len(stacks),
    )


def say_database_bound(sqlite: Run, postgres: Run) -> None:
    """Print the CPU that xgc on each database takes, and what the shared rest allows."""
    # Everything but the sandbox and the fans: xgc's workers, the database, Redis.
    own = [per_flow(run, "app") + per_flow(run, "rest") for run in (sqlite, postgres)]
    machine = [per_flow(run, "machine") for run in (sqlite, postgres)]
    say(
        f"xgc with its database and cache takes {1000 * own[0]:.1f} ms of CPU per flow on SQLite "
        f"and {1000 * own[1]:.1f} on PostgreSQL ({own[1] / own[0]:.2f} x); with the sandbox's "
        "and the fans' CPU, the same for both, flows/s SQLite / PostgreSQL comes to about "
        f"{machine[1] / machine[0]:.2f}."
    )


def say_bound(bench: Bench) -> None:
    """Print what xgc / minimal would be if xgc's requests cost what trivial Django ones do."""
    stacks = {stack.key: stack for stack in bench.stacks}
    floor = per_flow(stacks["postgres"].run(FLOOR), "app")
    bounds = []
    for key in ("sqlite", "postgres"):
        reference = stacks.get(f"reference-{key}")
        if reference is None:
            continue
        run = stacks[key].run(SIGN_IN)
        at_floor = per_flow(run, "machine") - per_flow(run, "app") + floor
        bounds.append(
            f"{per_flow(reference.run(SIGN_IN), 'machine') / at_floor:.2f} on {STACKS[key].database}"
        )
    if bounds:
        say(
            "If xgc's requests cost no more CPU than trivial Django ones "
            f"({1000 * floor:.1f} ms per flow), flows/s xgc / minimal would be about "
            f"{' and '.join(bounds)}."
        )


def per_flow(run: Run, group: str) -> float:
    """Return the CPU seconds per flow of a group of processes, or of the "rest"."""
    if group == "rest":
        # The databases, Redis, the kernel, and whatever else the machine runs.
        return per_flow(run, "machine") - sum(
            per_flow(run, other) for other in ("app", "sandbox", "fans")
        )
    return run.cpu[group] / len(run.flows)


def uploads_summary(stack: Stack) -> str:
    """Return one line: applications made, their rate, and how long their posts took."""
    load, done = stack.uploads, [s for s in stack.submissions if not s.error]
    line = (
        f"{len(stack.submissions)} applications of {len(load.photos)} photos "
        f"({sum(map(len, load.photos)) / 1e6:.1f} MB) at {load.rate:.2f}/s, {len(done)} saved"
    )
    if len(done) > 1:
        line += f", post p50/p90/p99 ms {percentiles([s.post for s in done])}"
    return line


def measured_runs(stack: Stack) -> list[Run]:
    """Return the runs of stack whose WeChat calls are the sign-ins' alone."""
    return [run for condition, run in stack.runs.items() if condition in (SIGN_IN, ZERO)]


def say(line: str = "") -> None:
    sys.stdout.write(f"{line}\n")


def table(header: list[str], rows: list[list[str]], align: str) -> None:
    """Print rows under header, each column aligned as align says ("<" or ">")."""
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        cells = [
            f"{cell:{side}{width}}" for cell, side, width in zip(row, align, widths, strict=True)
        ]
        say("  ".join(cells).rstrip())


def target(name: str, what: str, value: float | str, wanted: str, held: bool) -> list[str]:
    shown = f"{value:.2f}" if isinstance(value, float) else str(value)
    return [name, what, shown, wanted, "pass" if held else "FAIL"]


def ratio_target(name: str, what: str, ratios: list[float], at_least: float) -> list[str]:
    """A target on the median of the rounds' ratios of flows/s."""
    median = statistics.median(ratios)
    shown = (
        f"{median:.2f}"
        if len(ratios) < 2
        else f"{median:.2f} ({min(ratios):.2f}-{max(ratios):.2f})"
    )
    return target(name, what, shown, f">= {at_least:.2f}", median >= at_least)


def p99_target(name: str, what: str, run: Run, reference: Run) -> list[str]:
    """A target on the ratio of two runs' callback p99 (of all their rounds)."""
    ratio = p99(callbacks(run)) / p99(callbacks(reference))
    return target(name, what, ratio, "<= 1.50", ratio <= 1.5)


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[98]


def percentiles(values: list[float]) -> str:
    if len(values) < 2:
        return "-"
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return "/".join(f"{cuts[p - 1] * 1000:.0f}" for p in (50, 90, 99))


def callbacks(run: Run) -> list[float]:
    return [seconds for flow in run.flows for seconds, _ in flow.callbacks]


def cpu_per_flow(run: Run, group: str) -> str:
    return f"{1000 * per_flow(run, group):.1f}"


def calls_per_flow(runs: list[Run]) -> dict[str, dict[str, float]]:
    """Return WeChat API calls per flow by route, for returning and for new fans."""
    result = {}
    for kind in EXPECTED_CALLS:
        total = sum((run.calls[kind] for run in runs), Counter())
        flows = sum(run.flows_of(kind) for run in runs)
        result[kind] = {route: n / flows for route, n in sorted(total.items()) if n}
    return result


def callback_query_counts(runs: list[Run]) -> dict[str, list[int]]:
    seen: dict[str, list[int]] = {"returning": [], "new (silent)": [], "new (consent)": []}
    for run in runs:
        for flow in run.flows:
            counts = [queries for _, queries in flow.callbacks if queries is not None]
            if flow.error or not counts:
                continue
            if flow.kind == "new":
                seen["new (silent)"].append(counts[0])
                seen["new (consent)"].append(counts[-1])
            else:
                seen["returning"].append(counts[0])
    return seen


def callback_queries(runs: list[Run]) -> dict[str, str]:
    """Return each kind of callback's queries: one number, or the range seen."""
    return {
        kind: "-"
        if not counts
        else f"{min(counts)}"
        if min(counts) == max(counts)
        # A range means some callbacks of one kind made more queries than others.
        else f"{min(counts)}-{max(counts)}"
        for kind, counts in callback_query_counts(runs).items()
    }


def shown_queries(queries: dict[str, str]) -> str:
    return f"{queries['returning']}; {queries['new (silent)']}, {queries['new (consent)']}"


def max_queries(runs: list[Run], kind: str) -> int:
    return max(callback_query_counts(runs)[kind], default=0)


def machine() -> str:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo if "model name" in line), "")
    memory = Path("/proc/meminfo").read_text().split()[1]
    return (
        f"{os.cpu_count()} cores ({model or platform.processor()}), "
        f"{int(memory) / 1024**2:.0f} GiB, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


if __name__ == "__main__":
    sys.exit(main())
