"""The benchmark's profile: py-spy's samples sorted into layers."""

import subprocess
import sys

import pytest

from . import bench
from .bench_profile import OUTSIDE, Profile, read_samples, tracing_refused
from .conftest import PROJECT, service_missing

RAW = [
    # the ORM called from a view, innermost frame in the standard library
    "run (threading.py:982);handle (gunicorn/workers/gthread.py:553);"
    "home (fans/views.py:300);get (django/db/models/query.py:620);"
    "quote (urllib/parse.py:900) 7\n",
    # xgc's own line calling the standard library
    "run (threading.py:982);handle (gunicorn/workers/gthread.py:553);"
    "sign_in (fans/auth.py:30);dumps (json/encoder.py:200) 2\n",
    # gunicorn's loop between requests
    "run (threading.py:982);handle (gunicorn/workers/gthread.py:553) 3\n",
    # no layer at all
    "_bootstrap (threading.py:1002);run (threading.py:982) 1\n",
    # the minimal app's code is its own, the rest of tests/ is the benchmark's
    "__call__ (tests/bench_reference.py:500) 4\n",
    "middleware (tests/bench_settings.py:23) 5\n",
    # a process line with no samples
    "\n",
]


def test_each_sample_counts_for_its_innermost_layer():
    assert read_samples(RAW) == {
        "Django: ORM and database": 7,
        "the app's own code": 2 + 4,
        "gunicorn": 3,
        OUTSIDE: 1,
        "the benchmark's query counter": 5,
    }


def test_a_process_is_sampled_while_the_block_runs(tmp_path):
    """py-spy attaches to a running Python, and its samples land in their layer."""
    if reason := tracing_refused():
        service_missing("py-spy", reason)
    # Spends a quarter of a second of CPU in Django's text utilities once told
    # to, then says so and waits for its stdin to close.
    worker = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from django.utils.text import slugify\n"
            "print('ready', flush=True); sys.stdin.readline()\n"
            "started = time.process_time()\n"
            "while time.process_time() - started < 0.25: slugify('Fans sign in')\n"
            "print('done', flush=True); sys.stdin.read()\n",
        ],
        cwd=PROJECT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    profile = Profile(tmp_path)
    try:
        assert worker.stdout.readline() == "ready\n"
        with profile.of("worker", [worker.pid]):
            worker.stdin.write("go\n")
            worker.stdin.flush()
            assert worker.stdout.readline() == "done\n"
    finally:
        worker.stdin.close()
        worker.wait(timeout=10)
    # 100 samples a second over a quarter of a second, give or take
    assert profile.samples("worker") >= 10
    assert profile.shares("worker")["Django: the rest"] > 0.8


def test_the_benchmark_refuses_a_profile_it_cannot_take(monkeypatch, capsys):
    """--profile where py-spy may not trace stops at once, saying why, not after the warm-up."""
    monkeypatch.setattr(bench, "tracing_refused", lambda: "py-spy may not trace (test)")
    monkeypatch.setattr(sys, "argv", ["bench", "--profile"])
    with pytest.raises(SystemExit) as stopped:
        bench.parse_options()
    assert stopped.value.code == 2
    assert "py-spy may not trace (test)" in capsys.readouterr().err
