"""The per-request benchmark (tests/bench_requests.py), run as `make bench` runs it.

It configures Django itself, so each test runs it in a process of its own.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from tests.bench_requests import SIGN_IN, STEPS

from .conftest import PROJECT, service_missing


def run_bench(*args: str) -> dict[str, float]:
    """Run the benchmark; return the figure printed for each request and for the sign-in."""
    done = subprocess.run(
        [sys.executable, "-m", "tests.bench_requests", *args],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line.rsplit(None, 1) for line in done.stdout.splitlines()[1:]]
    figures = {name.strip(): float(value) for name, value in rows if not name.startswith("sign-in")}
    sign_in = next(line for line in done.stdout.splitlines() if line.startswith("sign-in"))
    figures["sign-in"] = float(sign_in.split()[1])
    return figures


def test_cpu_time_of_each_request_of_the_sign_in():
    figures = run_bench("--count", "5", "--rounds", "1")
    assert list(figures) == [*STEPS, "sign-in"]
    assert all(value > 0 for value in figures.values())
    assert figures["sign-in"] == pytest.approx(sum(figures[step] for step in SIGN_IN), abs=0.002)


def test_instructions_of_each_request_under_callgrind():
    if shutil.which("valgrind") is None:
        service_missing("valgrind", "apt-get install valgrind")
    figures = run_bench("--count", "3", "--instructions")
    assert list(figures) == [*STEPS, "sign-in"]
    # Each profile part is one step's: Django's floor is the cheapest of them.
    trivial = figures["trivial view"]
    assert 0.2 < trivial < min(figures[step] for step in SIGN_IN)
    assert figures["sign-in"] < 100
