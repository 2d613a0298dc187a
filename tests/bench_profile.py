"""Where an app's CPU goes: py-spy's samples of its gunicorn workers, by layer.

``python -m tests.bench --profile`` samples each app's workers while its
sign-ins are measured. py-spy reads the workers' Python stacks from outside
(``--nonblocking``: it never stops them), and only those of the thread holding
the GIL (``--gil``), which is the thread using the CPU for Python. Each sample
goes to the layer of its innermost frame that belongs to one; frames of the
standard library count for the code that called them.
"""

from __future__ import annotations

import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

# Samples per second and worker: enough for a share to the percent over a
# benchmark's runs, few enough that py-spy itself takes little of the CPU.
RATE = 100
START_SECONDS = 10
STOP_SECONDS = 30
# Layers and the path prefixes (as py-spy names frames' files) of their code.
LAYERS = (
    ("the app's own code", ("fans/", "activities/", "xgc/", "tests/bench_reference.py")),
    ("the benchmark's query counter", ("tests/",)),
    ("Django: ORM and database", ("django/db/",)),
    ("Django: templates", ("django/template/", "django/templatetags/")),
    ("Django: the rest", ("django/", "asgiref/")),
    ("gunicorn", ("gunicorn/",)),
    ("HTTP client to WeChat", ("requests/", "urllib3/", "http/client.py", "idna/")),
    ("database driver", ("psycopg/", "psycopg_pool/", "sqlite3/")),
    ("Redis client", ("redis/", "django_redis/")),
    ("django-csp and WhiteNoise", ("csp/", "whitenoise/")),
    ("logging", ("logging/",)),
)
OUTSIDE = "none (the thread's own loop)"
FRAME_FILE = re.compile(r"\(([^()]+):\d+\)$")


class ProfilerError(Exception):
    """py-spy is missing or could not attach; the message says how to mend it."""


def py_spy() -> str:
    """Return the py-spy beside this Python (the project's venv), or on PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if found is None:
        raise ProfilerError("py-spy is not installed: run `make install` (it is a dev package)")
    return found


def tracing_refused() -> str | None:
    """Say why py-spy may not read another process here, or None if it may."""
    scope = Path("/proc/sys/kernel/yama/ptrace_scope")
    if os.geteuid() != 0 and scope.exists() and scope.read_text().strip() != "0":
        return (
            f"py-spy may not trace another process (kernel.yama.ptrace_scope is "
            f"{scope.read_text().strip()} and this is not root)"
        )
    return None


def layer_of(frames: list[str]) -> str:
    """Return the layer of a stack, given innermost frame last."""
    for frame in reversed(frames):
        match = FRAME_FILE.search(frame)
        if match is None:
            continue
        for layer, prefixes in LAYERS:
            if match.group(1).startswith(prefixes):
                return layer
    return OUTSIDE


def read_samples(lines: Iterable[str]) -> Counter:
    """Count the samples of py-spy's raw output (``frame;frame;… count``) by layer."""
    layers = Counter()
    for line in lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if stack and count.isdigit():
            layers[layer_of(stack.split(";"))] += int(count)
    return layers


@contextmanager
def sampling(pid: int, output: Path) -> Iterator[None]:
    """Sample pid's GIL-holding thread into output while the block runs."""
    command = [
        py_spy(),
        "record",
        f"--pid={pid}",
        "--gil",
        "--nonblocking",
        f"--rate={RATE}",
        "--format=raw",
        f"--output={output}",
    ]
    process = subprocess.Popen(  # noqa: S603 (our own arguments)
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        said = _wait_until_sampling(process)
        if "Sampling process" not in said:
            raise ProfilerError(
                f"py-spy could not sample process {pid} "
                f"({said.strip() or f'no answer in {START_SECONDS} s'}); if it may not "
                "trace processes, run as root or set kernel.yama.ptrace_scope to 0"
            )
        yield
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)  # py-spy writes its output, then exits
        process.communicate(timeout=STOP_SECONDS)


def _wait_until_sampling(process: subprocess.Popen) -> str:
    """Return what py-spy said up to its first "Sampling" line, or until it ended."""
    said = []
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], deadline - time.monotonic())
        line = process.stdout.readline() if ready else ""
        said.append(line)
        if not line or "Sampling process" in line:
            break
    return "".join(said)


class Profile:
    """Samples of several apps' workers, added up over a benchmark's runs."""

    def __init__(self, work_dir: Path):
        self.work_dir = work_dir
        self.by_app: dict[str, Counter] = {}
        self._files = 0

    @contextmanager
    def of(self, app: str, pids: list[int]) -> Iterator[None]:
        """Sample the processes pids, as app's, while the block runs."""
        outputs = []
        with ExitStack() as stack:
            for pid in pids:
                self._files += 1
                outputs.append(self.work_dir / f"profile-{self._files}.txt")
                stack.enter_context(sampling(pid, outputs[-1]))
            yield
        counts = self.by_app.setdefault(app, Counter())
        for output in outputs:
            if output.exists():
                with output.open(encoding="utf-8", errors="replace") as lines:
                    counts.update(read_samples(lines))

    def samples(self, app: str) -> int:
        return sum(self.by_app.get(app, Counter()).values())

    def shares(self, app: str) -> dict[str, float]:
        """Return each layer's share of app's samples, in LAYERS' order."""
        counts = self.by_app.get(app, Counter())
        total = sum(counts.values()) or 1
        return {layer: counts[layer] / total for layer in [*(name for name, _ in LAYERS), OUTSIDE]}
