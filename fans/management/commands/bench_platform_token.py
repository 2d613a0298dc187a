"""``python manage.py bench_platform_token``: many callers, one token fetch.

Starts the sandbox as WeChat in its own process with added latency, then in
each window empties the cached token and lets PROCESSES x THREADS callers ask
for it at once. Prints, per window, how often the token was fetched and how
long callers waited. Run it with REDIS_URL set: with the memory cache each
process fetches its own token, which is what the shared cache prevents.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from xgc import tokens
from xgc.sandbox.process import PROJECT, SANDBOX_APP, sandbox_server

# Workers start this long after launch, so that all are loaded and waiting.
START_DELAY_SECONDS = 3
WORKER_TIMEOUT_SECONDS = 120


class Command(BaseCommand):
    help = "Measure fetches per expiry window and time-to-token under concurrent callers."
    # It brings its own WeChat (the sandbox), so xgc's WeChat settings don't matter.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--processes", type=int, default=4)
        parser.add_argument("--threads", type=int, default=25, help="callers per process")
        parser.add_argument("--windows", type=int, default=3, help="cold-cache rounds")
        parser.add_argument("--latency-ms", type=int, default=200, help="added to each WeChat call")
        parser.add_argument("--json", action="store_true", help="print the results as JSON")
        parser.add_argument("--worker-start", type=float, help=argparse.SUPPRESS)

    def handle(self, *args, **options):
        if options["worker_start"] is not None:
            return run_worker(options["threads"], options["worker_start"])
        if not 1 <= options["processes"] * options["threads"] <= 2000:
            raise CommandError("--processes x --threads must be between 1 and 2000")
        if not settings.REDIS_URL:
            self.stderr.write("REDIS_URL is empty: each process has its own memory cache.")
        with sandbox_server(latency_ms=options["latency_ms"]) as sandbox:
            windows = [self.window(sandbox, options) for _ in range(options["windows"])]
        if options["json"]:
            self.stdout.write(json.dumps(windows))
        else:
            self.report(windows, options)

    def window(self, sandbox: str, options: dict[str, Any]) -> dict[str, Any]:
        """Release every caller at once on a cold cache, collect what they saw."""
        start_at = time.time() + START_DELAY_SECONDS
        # A key prefix of its own per window: a cold cache, and no key of a
        # real deployment on the same Redis is touched.
        env = worker_env(sandbox) | {"CACHE_KEY_PREFIX": f"xgc-bench-{uuid.uuid4().hex}"}
        command = [sys.executable, str(PROJECT / "manage.py"), "bench_platform_token"]
        workers = [
            subprocess.Popen(
                [*command, "--threads", str(options["threads"]), "--worker-start", str(start_at)],
                env=env,
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(options["processes"])
        ]
        results = [read_worker(worker) for worker in workers]
        waits = sorted(wait for result in results for wait in result["waits_ms"])
        return {
            "callers": len(waits),
            "fetches": sum(result["fetches"] for result in results),
            "tokens": len({token for result in results for token in result["tokens"]}),
            "errors": sum(result["errors"] for result in results),
            "p50_ms": round(statistics.median(waits), 1) if waits else None,
            "p99_ms": round(waits[min(len(waits) - 1, int(len(waits) * 0.99))], 1)
            if waits
            else None,
        }

    def report(self, windows: list[dict[str, Any]], options: dict[str, Any]) -> None:
        self.stdout.write(
            f"{options['processes']} processes x {options['threads']} threads, "
            f"{options['latency_ms']} ms added per WeChat call, cache: "
            f"{'Redis' if settings.REDIS_URL else 'memory (per process)'}"
        )
        self.stdout.write("window  callers  fetches  distinct tokens  errors  p50 ms  p99 ms")
        for number, window in enumerate(windows, 1):
            self.stdout.write(
                f"{number:>6}  {window['callers']:>7}  {window['fetches']:>7}  "
                f"{window['tokens']:>15}  {window['errors']:>6}  {window['p50_ms']:>6}  {window['p99_ms']:>6}"
            )
        worst = max(window["fetches"] for window in windows)
        verdict = self.style.SUCCESS("held") if worst == 1 else self.style.ERROR("missed")
        self.stdout.write(f"fetches per window: at most {worst} (target 1): {verdict}")


def read_worker(worker: subprocess.Popen) -> dict[str, Any]:
    output, _ = worker.communicate(timeout=WORKER_TIMEOUT_SECONDS)
    # Log lines may share stdout; the result is the last line.
    lines = output.strip().splitlines()
    try:
        return json.loads(lines[-1])
    except (IndexError, ValueError):
        raise CommandError(
            f"a worker failed (exit {worker.returncode}): {output[-300:]!r}"
        ) from None


def worker_env(sandbox: str) -> dict[str, str]:
    env = {key: os.environ[key] for key in ("PATH", "HOME") if key in os.environ}
    return (
        env
        | SANDBOX_APP
        | {
            "XGC_DOTENV": "",
            "DEBUG": "1",
            "REDIS_URL": settings.REDIS_URL,
            "REDIRECT_URL": f"{sandbox}/wechat/authorize/",
            "WECHAT_OPEN_BASE_URL": f"{sandbox}/sandbox",
            "WECHAT_API_BASE_URL": f"{sandbox}/sandbox",
            "WECHAT_TOKEN_ENDPOINT": settings.WECHAT_TOKEN_ENDPOINT,
            "WECHAT_HTTP_TIMEOUT": str(settings.WECHAT_HTTP_TIMEOUT),
        }
    )


def run_worker(threads: int, start_at: float) -> None:
    """In a worker process: ask for the token from every thread at start_at."""
    fetches, waits, seen, errors = [], [], set(), []
    counted_fetch = tokens.platform_token.fetch

    def fetch(replacing: bool):
        fetches.append(1)
        return counted_fetch(replacing)

    tokens.platform_token.fetch = fetch
    barrier = threading.Barrier(threads, timeout=WORKER_TIMEOUT_SECONDS)

    def caller():
        barrier.wait()
        begun = time.perf_counter()
        try:
            seen.add(tokens.platform_token.get())
        except Exception as exc:  # counted and reported, not raised
            errors.append(repr(exc))
        waits.append((time.perf_counter() - begun) * 1000)

    time.sleep(max(0.0, start_at - time.time()))
    workers = [threading.Thread(target=caller) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(WORKER_TIMEOUT_SECONDS)
    # Tokens are compared by a short digest: the values are secrets.
    digests = sorted({hashlib.sha256(token.encode()).hexdigest()[:12] for token in seen})
    result = {"fetches": len(fetches), "waits_ms": waits, "tokens": digests, "errors": len(errors)}
    sys.stdout.write("\n" + json.dumps(result) + "\n")
