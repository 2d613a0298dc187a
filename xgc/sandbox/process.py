"""Run xgc with the sandbox in a process of its own, on 127.0.0.1.

For browser tests and benchmarks, which need WeChat to be another process
(with its own latency) than the code they measure or drive.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

PROJECT = Path(__file__).resolve().parent.parent.parent
START_SECONDS = 30
# The sample credentials of .env.example: the sandbox accepts only these.
SANDBOX_APP = {"APP_ID": "wx0123456789abcdef", "APP_SECRET": "0123456789abcdef0123456789abcdef"}
# The template of .env.example, in the sandbox's catalogue (messages.py): 43
# characters of [A-Za-z0-9_-], like WeChat's template ids.
APPLICATION_RESULT_TEMPLATE_ID = "sandboxApplicationResult-000000000000000000"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def sandbox_server(
    *, latency_ms: int = 0, superuser: tuple[str, str] | None = None, **env: str
) -> Iterator[str]:
    """Serve xgc with the sandbox on a free loopback port; yield its base URL.

    superuser=(name, password) creates an admin account first.
    """
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="xgc-sandbox-") as data:
        server_env = {key: os.environ[key] for key in ("PATH", "HOME") if key in os.environ}
        server_env |= SANDBOX_APP | {
            "XGC_DOTENV": "",
            "DEBUG": "1",
            "WECHAT_SANDBOX": "1",
            "REDIRECT_URL": f"{base}/wechat/authorize/",
            # The sandbox pushes events to /wechat/, signed with this.
            "TOKEN": "sandboxServerToken1",
            "WECHAT_TEMPLATE_APPLICATION_RESULT": APPLICATION_RESULT_TEMPLATE_ID,
            "DATABASE_URL": f"sqlite:///{Path(data) / 'db.sqlite3'}",
            "MEDIA_ROOT": str(Path(data) / "media"),
        }
        server_env |= env
        manage = [sys.executable, str(PROJECT / "manage.py")]
        subprocess.run(
            [*manage, "migrate", "--no-input"], env=server_env, check=True, capture_output=True
        )
        if superuser:
            name, password = superuser
            subprocess.run(
                [*manage, "createsuperuser", "--no-input", "--username", name, "--email", ""],
                env=server_env | {"DJANGO_SUPERUSER_PASSWORD": password},
                check=True,
                capture_output=True,
            )
        server = subprocess.Popen(
            [*manage, "runserver", "--noreload", f"127.0.0.1:{port}"],
            env=server_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # The task worker beside it, as `make run` starts one: it sends the
        # template messages.
        worker = subprocess.Popen(
            [*manage, "worker", "--no-reload", "--interval", "0.2"],
            env=server_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_until(lambda: _listening(port), what="the sandbox", process=server)
            if latency_ms:
                faults = requests.post(
                    f"{base}/sandbox/faults", {"latency_ms": latency_ms}, timeout=10
                )
                faults.raise_for_status()
            yield base
        finally:
            for process in (worker, server):
                process.terminate()
                process.wait(timeout=10)


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def wait_until(
    ready: Callable[[], bool],
    *,
    what: str,
    seconds: float = START_SECONDS,
    process: subprocess.Popen | None = None,
) -> None:
    """Poll ready() until it is true; raise if process exits or seconds pass."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode} before it was ready")
        if ready():
            return
        time.sleep(0.05)  # a readiness poll, bounded by the deadline
    raise RuntimeError(f"{what} was not ready within {seconds} s")
