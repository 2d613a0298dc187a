"""A production-like xgc on 127.0.0.1: gunicorn instances, nginx, the sandbox.

Shared by the benchmark (``python -m tests.bench``) and the scale tests. xgc
runs under gunicorn with deploy/gunicorn.conf.py, the WeChat sandbox runs in a
gunicorn of its own, and nginx spreads requests over the xgc instances with
deploy/nginx/xgc-proxy.conf. Every server listens on 127.0.0.1 only and is
stopped by the PID it was started with.
"""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import requests

from xgc.sandbox.process import APPLICATION_RESULT_TEMPLATE_ID, SANDBOX_APP, free_port, wait_until

PROJECT = Path(__file__).resolve().parent.parent
GUNICORN_CONF = PROJECT / "deploy" / "gunicorn.conf.py"
NGINX_PROXY = PROJECT / "deploy" / "nginx" / "xgc-proxy.conf"
START_SECONDS = 30
STOP_SECONDS = 15
SECRET_KEY = "bench-only-secret-key-" + "x" * 40
# The floor's trivial Django view: xgc serves MP_verify_<code>.txt itself.
MP_VERIFY = "bench"
# Keeps the sandbox's keys apart from xgc's on one Redis.
SANDBOX_CACHE_PREFIX = "sandbox"
SERVER_TOKEN = "benchServerToken1"  # noqa: S105 (a test value)
# How long the sandbox keeps an idle connection to an app open.
IDLE_CONNECTION_SECONDS = 3600


@dataclass
class Server:
    name: str
    url: str
    process: subprocess.Popen
    log: Path

    def stop(self) -> None:
        """Stop this server (gunicorn and nginx both shut down on SIGTERM)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_SECONDS)

    def log_tail(self, lines: int = 20) -> str:
        text = self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def worker_pids(self) -> list[int]:
        """Return the PIDs of this gunicorn's workers (children of its master)."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in children.read_text().split()] if children.exists() else []


def base_env(**env: str) -> dict[str, str]:
    """Return a clean environment: no developer .env, only what is given.

    xgc and the sandbox share the server-configuration TOKEN, as xgc and
    WeChat's console do, so that the sandbox's pushes reach /wechat/.
    """
    inherited = {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}
    fixed = {"XGC_DOTENV": "", "SECRET_KEY": SECRET_KEY, "DEBUG": "0", "TOKEN": SERVER_TOKEN}
    return inherited | fixed | env


def start(
    name: str, command: list[str], env: dict[str, str], url: str, log_dir: Path, ready_path: str
) -> Server:
    """Start a server at url and wait until it answers HTTP at ready_path."""
    log = log_dir / f"{name}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, cwd=PROJECT, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    server = Server(name, url, process, log)
    try:
        wait_until_answering(server, ready_path)
    except BaseException:
        server.stop()
        raise
    return server


def wait_until_answering(server: Server, path: str) -> None:
    def answers() -> bool:
        try:
            requests.get(server.url + path, timeout=1, allow_redirects=False)
        except requests.RequestException:
            return False
        return True

    try:
        wait_until(answers, what=server.name, process=server.process)
    except RuntimeError as error:
        raise RuntimeError(f"{error}:\n{server.log_tail()}") from None


def gunicorn(
    name: str,
    env: dict[str, str],
    log_dir: Path,
    *,
    port: int,
    ready_path: str,
    app: str | None = None,
) -> Server:
    """Start gunicorn with xgc's deploy/gunicorn.conf.py on a loopback port.

    app, a WSGI app as "module:name", replaces the configuration's xgc.
    """
    env = env | {"GUNICORN_BIND": f"127.0.0.1:{port}"}
    command = [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF), *filter(None, [app])]
    return start(name, command, env, f"http://127.0.0.1:{port}", log_dir, ready_path)


def start_sandbox(
    *,
    database_url: str,
    redis_url: str,
    app_netloc: str,
    log_dir: Path,
    workers: int = 1,
    threads: int = 32,
    cache_prefix: str = SANDBOX_CACHE_PREFIX,
    name: str = "sandbox",
) -> Server:
    """Serve the WeChat sandbox alone, for xgc at app_netloc (its OAuth domain).

    Its state is in the database and in Redis, so it may run several workers;
    sandboxes sharing one Redis need a cache_prefix each.
    """
    env = base_env(
        **SANDBOX_APP,
        WECHAT_SANDBOX="1",
        # DEBUG stays off: it would keep every query in memory.
        WECHAT_SANDBOX_FORCE="1",
        ALLOWED_HOSTS="127.0.0.1",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        CACHE_KEY_PREFIX=cache_prefix,
        REDIRECT_URL=f"http://{app_netloc}/wechat/authorize/",
        WECHAT_SANDBOX_OAUTH_DOMAIN=app_netloc,
        WEB_CONCURRENCY=str(workers),
        GUNICORN_THREADS=str(threads),
        # A benchmark pauses each stack while the others run, for over a
        # minute on a slow machine; a connection gunicorn closed in the pause
        # would count against xgc's connection reuse, which is about reuse
        # under load.
        GUNICORN_KEEPALIVE=str(IDLE_CONNECTION_SECONDS),
    )
    return gunicorn(name, env, log_dir, port=free_port(), ready_path="/sandbox/ping")


def xgc_env(
    *,
    public_url: str,
    sandbox_url: str,
    database_url: str,
    redis_url: str,
    settings_module: str = "xgc.settings",
    media_root: str = "",
) -> dict[str, str]:
    """Return the environment of xgc as in production, the sandbox standing in for WeChat.

    public_url is where fans reach xgc: nginx's address, or a gunicorn's.
    media_root, where photos go, is the project's media/ unless given.
    """
    return base_env(
        **({"MEDIA_ROOT": media_root} if media_root else {}),
        **SANDBOX_APP,
        DJANGO_SETTINGS_MODULE=settings_module,
        ALLOWED_HOSTS="127.0.0.1",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        CACHE_KEY_PREFIX="xgc",
        REDIRECT_URL=f"{public_url}/wechat/authorize/",
        TRUST_X_FORWARDED="1",
        WECHAT_OPEN_BASE_URL=f"{sandbox_url}/sandbox",
        WECHAT_API_BASE_URL=f"{sandbox_url}/sandbox",
        WECHAT_MP_VERIFY=MP_VERIFY,
        WECHAT_TEMPLATE_APPLICATION_RESULT=APPLICATION_RESULT_TEMPLATE_ID,
    )


def start_xgc(
    name: str,
    *,
    port: int,
    log_dir: Path,
    workers: int = 2,
    threads: int = 16,
    app: str | None = None,
    **env: str,
) -> Server:
    """Serve xgc (or app, in xgc's environment) on port as in production.

    env is xgc_env's keywords.
    """
    env = xgc_env(**env) | {"WEB_CONCURRENCY": str(workers), "GUNICORN_THREADS": str(threads)}
    ready_path = f"/MP_verify_{MP_VERIFY}.txt"
    return gunicorn(name, env, log_dir, port=port, ready_path=ready_path, app=app)


def start_worker(log_dir: Path, **env: str) -> Server:
    """Run ``manage.py worker`` beside the xgc instances; env is xgc_env's keywords."""
    log = log_dir / "worker.log"
    command = [sys.executable, "manage.py", "worker", "--no-reload", "--interval", "0.2"]
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, cwd=PROJECT, env=xgc_env(**env), stdout=output, stderr=subprocess.STDOUT
        )
    server = Server("worker", "", process, log)
    try:
        wait_until(lambda: "Starting worker" in server.log_tail(), what="worker", process=process)
    except BaseException:
        server.stop()
        raise
    return server


def find_nginx() -> str | None:
    """Return Debian's nginx binary, which is in /usr/sbin (not on every PATH)."""
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")


NGINX_MAIN = """\
daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
{user}
events {{ worker_connections 1024; }}
http {{
    log_format upstreams '$upstream_addr $status $request_method $uri';
    access_log {dir}/access.log upstreams;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
{http}
}}
"""
NGINX_BALANCER = """\
upstream xgc {{
{servers}
    keepalive 16;
}}
server {{
    listen 127.0.0.1:{port};
    location / {{
        include {proxy};
    }}
}}
"""


def start_nginx(http: str, url: str, log_dir: Path) -> Server:
    """Run nginx with http as its http block's servers; wait until url answers."""
    nginx = find_nginx()
    if nginx is None:
        raise RuntimeError("nginx not found (apt-get install nginx)")
    conf_dir = log_dir / "nginx"
    conf_dir.mkdir()
    conf = conf_dir / "nginx.conf"
    conf.write_text(
        NGINX_MAIN.format(
            dir=conf_dir,
            # Workers of a root master would run as nobody, who cannot enter
            # this private directory; a non-root master ignores the line.
            user=f"user {getpass.getuser()};" if os.geteuid() == 0 else "",
            http=http,
        )
    )
    command = [nginx, "-p", str(conf_dir), "-c", str(conf), "-e", str(conf_dir / "error.log")]
    return start("nginx", command, os.environ.copy(), url, log_dir, "/")


def start_balancer(port: int, upstreams: list[str], log_dir: Path) -> Server:
    """Serve on 127.0.0.1:port, spreading requests over upstreams (host:port)."""
    http = NGINX_BALANCER.format(
        servers="\n".join(f"    server {upstream};" for upstream in upstreams),
        port=port,
        proxy=NGINX_PROXY,
    )
    return start_nginx(http, f"http://127.0.0.1:{port}", log_dir)


def nginx_upstream_counts(nginx: Server) -> dict[str, int]:
    """Count the requests nginx passed to each upstream, from its access log."""
    counts: dict[str, int] = {}
    for line in (nginx.log.parent / "nginx" / "access.log").read_text().splitlines():
        upstream = line.split(" ", 1)[0]
        counts[upstream] = counts.get(upstream, 0) + 1
    return counts
