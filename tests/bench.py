"""Benchmark xgc's sign-in as deployed: ``python -m tests.bench`` (or ``make bench``).

It starts the WeChat sandbox in a gunicorn of its own and xgc under gunicorn
with deploy/gunicorn.conf.py, on a fresh PostgreSQL database and on Redis, all
on 127.0.0.1. Virtual fans (tests/bench_fans.py) sign in, --concurrency at a
time. The fans who will return sign up first (the warm-up). Then each round
measures, one after the other on the same servers: returning fans coming back
and new fans signing up with 0 ms added to WeChat's API calls, the same with
--latency-ms added, and the floor: for each fan of the 0 ms run, as many
requests to a trivial xgc view and a trivial sandbox endpoint. It prints the
figures and each target of issue 5 as a ratio with pass or FAIL (a ratio of
flows/s is the median of the rounds' ratios, with their range), and exits
non-zero if any flow failed.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import redis
import requests

from xgc.sandbox.process import SANDBOX_APP, free_port

from .bench_fans import Fan, Flow, new_session, run_flows
from .bench_servers import MP_VERIFY, PROJECT, Server, base_env, start_sandbox, start_xgc

DATABASE = "xgc_bench"
# deploy/gunicorn.conf.py's defaults, and two minutes on a 2-core machine.
DEFAULTS = {
    "fans": 300,
    "rounds": 5,
    "returning_share": 0.5,
    # Enough fans at once to keep both cores busy while WeChat adds latency.
    "concurrency": 32,
    "latency_ms": 50,
    "workers": 2,
    "threads": 16,
}
# Small enough for CI, large enough to go through every step.
SMOKE = {"fans": 16, "rounds": 1, "concurrency": 4, "latency_ms": 10, "workers": 1, "threads": 4}
EXPECTED_CALLS = {
    "returning": {"sns/oauth2/access_token": 1},
    "new": {"sns/oauth2/access_token": 2, "sns/userinfo": 1},
}
TICKS = os.sysconf("SC_CLK_TCK")


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


class Bench:
    def __init__(self, options: argparse.Namespace, sandbox: Server, app: Server):
        self.options = options
        self.sandbox = sandbox
        self.app = app
        self.returning = [
            Fan(app.url, sandbox.url) for _ in range(round(options.fans * options.returning_share))
        ]
        self.runs = {"base": Run(), "slow": Run(), "floor": Run()}
        # flows/s of each round's base, slow and floor runs
        self.round_rates: list[tuple[float, float, float]] = []

    def run(self) -> list[Flow]:
        """Warm up, then measure every round; return the warm-up's flows."""
        # Under latency more threads wait on WeChat at once: warm them all up.
        self.set_latency(self.options.latency_ms)
        warm_up, _ = run_flows([fan.sign_up for fan in self.returning], self.options.concurrency)
        for _ in range(self.options.rounds):
            base = self.measure_flows("base", 0)
            slow = self.measure_flows("slow", self.options.latency_ms)
            self.set_latency(0)
            floor = self.measure_floor(base)
            self.round_rates.append((base.rate, slow.rate, floor.rate))
        return warm_up

    def set_latency(self, latency_ms: int) -> None:
        url = f"{self.sandbox.url}/sandbox/faults"
        requests.post(url, {"latency_ms": latency_ms}, timeout=10).raise_for_status()

    def take_stats(self) -> dict:
        """Return the sandbox's counts since the last call, and start them again."""
        answer = requests.post(f"{self.sandbox.url}/sandbox/stats", timeout=10)
        answer.raise_for_status()
        return answer.json()

    def measure_flows(self, name: str, latency_ms: int) -> Run:
        """Bring the returning fans back, then sign new fans up; return this round's part."""
        self.set_latency(latency_ms)
        self.take_stats()
        newcomers = [
            Fan(self.app.url, self.sandbox.url)
            for _ in range(self.options.fans - len(self.returning))
        ]
        part = Run()
        for kind, flows in (
            ("returning", [fan.come_back for fan in self.returning]),
            ("new", [fan.sign_up for fan in newcomers]),
        ):
            self.timed(part, flows)
            stats = self.take_stats()
            part.calls[kind].update(stats["calls"])
            part.new_connections += stats["new_connections"]
        self.add(name, part)
        return part

    def measure_floor(self, base: Run) -> Run:
        """Send each fan of base as many requests, to trivial views; time them."""
        api_calls = {
            kind: sum(base.calls[kind].values()) / max(base.flows_of(kind), 1)
            for kind in base.calls
        }

        def trivial(flow: Flow) -> Callable[[], Flow]:
            def requests_like() -> Flow:
                session = new_session()
                for _ in range(flow.app_requests):
                    answer = session.get(f"{self.app.url}/MP_verify_{MP_VERIFY}.txt", timeout=30)
                    answer.raise_for_status()
                for _ in range(flow.wechat_requests + round(api_calls[flow.kind])):
                    session.get(f"{self.sandbox.url}/sandbox/ping", timeout=30).raise_for_status()
                session.close()
                return Flow(flow.kind)

            return requests_like

        part = Run()
        self.timed(part, [trivial(flow) for flow in base.flows])
        self.add("floor", part)
        return part

    def timed(self, part: Run, flows: list[Callable[[], Flow]]) -> None:
        before = self.cpu_seconds()
        done, seconds = run_flows(flows, self.options.concurrency)
        part.cpu += self.cpu_seconds() - before
        part.flows += done
        part.seconds += seconds

    def add(self, name: str, part: Run) -> None:
        run = self.runs[name]
        run.flows += part.flows
        run.seconds += part.seconds
        for kind, calls in part.calls.items():
            run.calls[kind] += calls
        run.new_connections += part.new_connections
        run.cpu += part.cpu

    def cpu_seconds(self) -> Counter:
        """Return CPU seconds used so far by each kind of process, and the machine's."""
        times = os.times()
        with open("/proc/stat") as stat:
            # user nice system idle iowait irq softirq; not steal, which a
            # virtual machine's neighbours take
            ticks = [int(value) for value in stat.readline().split()[1:8]]
        return Counter(
            {
                "xgc": sum(process_cpu(pid) for pid in self.app.worker_pids()),
                "sandbox": sum(process_cpu(pid) for pid in self.sandbox.worker_pids()),
                "fans": times.user + times.system,
                "machine": (sum(ticks) - ticks[3] - ticks[4]) / TICKS,
            }
        )


def process_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> int:
    options = parse_options()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="xgc-bench-") as log_dir:
        database_url = fresh_database(options.database_url)
        redis.Redis.from_url(options.redis_url).flushdb()
        servers: list[Server] = []
        try:
            sandbox, app = start_servers(options, database_url, Path(log_dir), servers)
            bench = Bench(options, sandbox, app)
            warm_up = bench.run()
            failed = report(bench, warm_up)
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
    parser.add_argument("--fans", type=int, help="flows per measured run and round")
    parser.add_argument("--rounds", type=int, help="times to measure each run, alternating")
    parser.add_argument("--returning-share", type=float, help="share of the flows that return")
    parser.add_argument("--concurrency", type=int, help="fans signing in at once")
    parser.add_argument("--latency-ms", type=int, help="added to WeChat API calls in the slow run")
    parser.add_argument("--workers", type=int, help="xgc's gunicorn workers")
    parser.add_argument("--threads", type=int, help="threads per worker")
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


def start_servers(
    options: argparse.Namespace, database_url: str, log_dir: Path, servers: list[Server]
) -> tuple[Server, Server]:
    """Migrate, then start the sandbox and xgc; add them to servers as they start."""
    port = free_port()
    migrated = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input"],
        cwd=PROJECT,
        env=base_env(
            **SANDBOX_APP,
            WECHAT_SANDBOX="1",
            WECHAT_SANDBOX_FORCE="1",
            DATABASE_URL=database_url,
            REDIRECT_URL=f"http://127.0.0.1:{port}/wechat/authorize/",
        ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    if migrated.returncode:
        raise RuntimeError(f"migrate failed:\n{migrated.stdout}{migrated.stderr}")
    sandbox = start_sandbox(
        database_url=database_url,
        redis_url=options.redis_url,
        app_netloc=f"127.0.0.1:{port}",
        log_dir=log_dir,
        # WeChat is not one process: as many workers as xgc's, so that the
        # sandbox's own GIL does not hold WeChat's side back, and enough
        # threads for every xgc thread to wait on one API call at once.
        workers=options.workers,
        threads=max(32, options.workers * options.threads),
    )
    servers.append(sandbox)
    app = start_xgc(
        "xgc",
        port=port,
        public_url=f"http://127.0.0.1:{port}",
        sandbox_url=sandbox.url,
        database_url=database_url,
        redis_url=options.redis_url,
        log_dir=log_dir,
        workers=options.workers,
        threads=options.threads,
        settings_module="tests.bench_settings",
    )
    servers.append(app)
    return sandbox, app


def report(bench: Bench, warm_up: list[Flow]) -> int:
    """Print the figures and the targets; return how many flows failed."""
    options, runs = bench.options, bench.runs
    base, slow, floor = runs["base"], runs["slow"], runs["floor"]
    measured = [base, slow]
    say(f"machine    {machine()}")
    say(
        f"servers    xgc: gunicorn, workers {options.workers}, threads {options.threads}; "
        f"WeChat: the sandbox, in its own gunicorn (workers {options.workers}); PostgreSQL, Redis"
    )
    say(
        f"load       {options.rounds} rounds of {options.fans} flows per run "
        f"({len(bench.returning)} returning), {options.concurrency} at once; "
        f"warm-up: {len(warm_up)} new fans"
    )
    say()
    slow_label = f"WeChat +{options.latency_ms} ms"
    table(
        ["", "WeChat +0 ms", slow_label, "floor"],
        [
            ["flows/s", *(f"{run.rate:.1f}" for run in (base, slow, floor))],
            ["callback p50/p90/p99 ms", *(percentiles(callbacks(run)) for run in measured), ""],
            [
                "flow p50/p90/p99 ms",
                *(percentiles([flow.seconds for flow in run.flows]) for run in measured),
                "",
            ],
            *(
                [f"CPU ms per flow: {group}", *(cpu_per_flow(run, group) for run in runs.values())]
                for group in ("xgc", "sandbox", "fans", "rest")
            ),
        ],
        "<>>>",
    )
    say()
    calls = calls_per_flow(measured)
    for kind, per_route in calls.items():
        shown = ", ".join(f"{route} {n:.2f}" for route, n in per_route.items()) or "none"
        say(f"WeChat API calls per {kind} fan's flow: {shown}")
    flows = len(base.flows) + len(slow.flows)
    connections = base.new_connections + slow.new_connections
    per_1000 = 1000 * connections / flows
    say(
        f"New connections to WeChat after warm-up: {connections} in {flows} flows "
        f"= {per_1000:.1f} per 1000 flows"
    )
    queries = callback_queries(measured)
    say(
        f"Database queries per callback: new fan {queries['new (silent)']} (silent), "
        f"{queries['new (consent)']} (after consent); returning fan {queries['returning']}"
    )
    rss = [peak_rss_mb(pid) for pid in bench.app.worker_pids()]
    sandbox_rss = [peak_rss_mb(pid) for pid in bench.sandbox.worker_pids()]
    say(
        "Peak RSS per process, MB: xgc workers "
        + ", ".join(f"{mb:.0f}" for mb in rss)
        + "; sandbox "
        + ", ".join(f"{mb:.0f}" for mb in sandbox_rss)
    )
    say()
    # Each round's ratio compares runs made seconds apart, so that a slow
    # spell of a shared machine touches both sides; the median of the rounds
    # is the figure, their range shows the spread.
    hidden = [slow_rate / base_rate for base_rate, slow_rate, _ in bench.round_rates]
    near_floor = [base_rate / floor_rate for base_rate, _, floor_rate in bench.round_rates]
    exact_calls = all(calls[kind] == expected for kind, expected in EXPECTED_CALLS.items())
    returning_queries = max_queries(measured, "returning")
    table(
        ["target", "measured", "", "wanted", ""],
        [
            target(
                "WeChat latency hidden",
                f"flows/s {slow_label} / +0 ms",
                shown_ratio(hidden),
                ">= 0.85",
                statistics.median(hidden) >= 0.85,
            ),
            target(
                "close to the floor",
                "flows/s +0 ms / floor",
                shown_ratio(near_floor),
                ">= 0.50",
                statistics.median(near_floor) >= 0.5,
            ),
            target(
                "connection reuse",
                "new connections / 1000 flows",
                per_1000,
                "<= 5",
                per_1000 <= 5,
            ),
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
            target(
                "memory", "peak RSS of an xgc worker, MB", round(max(rss)), "< 150", max(rss) < 150
            ),
        ],
        "<<><<",
    )
    say(
        "If xgc's requests cost no more CPU than trivial ones, flows/s +0 ms / floor would be "
        f"about {ceiling_without_xgc(base, floor):.2f}:\nthe rest of the flow's CPU goes to the "
        "sandbox, the fans' browsers, PostgreSQL and Redis, on the same cores."
    )
    say()
    errors = Counter(
        f"{flow.error} ({name})"
        for name, flows in [("warm-up", warm_up), ("+0 ms", base.flows), (slow_label, slow.flows)]
        for flow in flows
        if flow.error
    )
    say("errors: " + (", ".join(f"{n} x {kind}" for kind, n in errors.items()) or "none"))
    return sum(errors.values())


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


def shown_ratio(ratios: list[float]) -> str:
    """Return the median of the rounds' ratios, with their range if there are several."""
    median = f"{statistics.median(ratios):.2f}"
    return median if len(ratios) < 2 else f"{median} ({min(ratios):.2f}-{max(ratios):.2f})"


def percentiles(values: list[float]) -> str:
    if len(values) < 2:
        return "-"
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return "/".join(f"{cuts[p - 1] * 1000:.0f}" for p in (50, 90, 99))


def callbacks(run: Run) -> list[float]:
    return [seconds for flow in run.flows for seconds, _ in flow.callbacks]


def cpu_per_flow(run: Run, group: str) -> str:
    if group == "rest":
        # PostgreSQL, Redis, the kernel, and whatever else the machine runs.
        seconds = run.cpu["machine"] - run.cpu["xgc"] - run.cpu["sandbox"] - run.cpu["fans"]
    else:
        seconds = run.cpu[group]
    return f"{1000 * seconds / len(run.flows):.1f}"


def ceiling_without_xgc(base: Run, floor: Run) -> float:
    """Return the floor ratio xgc would reach if its own CPU per flow were the floor's."""

    def total(run: Run) -> float:
        return run.cpu["machine"] / len(run.flows)

    xgc_excess = base.cpu["xgc"] / len(base.flows) - floor.cpu["xgc"] / len(floor.flows)
    return total(floor) / (total(base) - xgc_excess)


def calls_per_flow(runs: list[Run]) -> dict[str, dict[str, float]]:
    """Return WeChat API calls per flow by route, for returning and for new fans."""
    result = {}
    for kind in EXPECTED_CALLS:
        total = sum((run.calls[kind] for run in runs), Counter())
        flows = sum(run.flows_of(kind) for run in runs)
        result[kind] = {route: n / flows for route, n in sorted(total.items()) if n}
    return result


def callback_query_counts(runs: list[Run]) -> dict[str, list[int]]:
    seen: dict[str, list[int]] = {"new (silent)": [], "new (consent)": [], "returning": []}
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
