"""A lean, framework-free WSGI app that signs fans in as xgc does: the benchmark's reference.

``python -m tests.bench --reference`` serves it in xgc's place, with the same
gunicorn settings, to show how fast a careful app without a framework could
do the same sign-in (gunicorn's positional app overrides the config's
wsgi_app)::

    python -m gunicorn -c deploy/gunicorn.conf.py tests.bench_reference:application

It reads DATABASE_URL (``sqlite:////abs/path`` or ``postgres://...``),
WECHAT_OPEN_BASE_URL, WECHAT_API_BASE_URL, APP_ID, APP_SECRET, REDIRECT_URL,
SECRET_KEY, WECHAT_MP_VERIFY and optionally WECHAT_HTTP_TIMEOUT from the
environment when gunicorn looks ``application`` up. Call create_schema() once
before starting it, so that workers do not race each other on DDL.

Routes: /MP_verify_<code>.txt, /wechat/login/, /wechat/authorize/ (WeChat's
callback) and / (the fan's home), which is what tests/bench_fans.py visits.
Lean, not careless: one requests.Session and one database connection per
thread, kept across requests; one SQL statement per callback, counted in
X-Bench-Queries; HMAC-signed cookies. It leaves out the paths of xgc that
the benchmark's fans never take (the silent restart after a lost cookie or a
replayed code, the open-in-WeChat page), and two things xgc does on every
callback beyond signing in: caching the fan's OAuth token in Redis and
logging the outcome.
"""

from __future__ import annotations

import base64
import hmac
import html
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import requests

logger = logging.getLogger(__name__)

SCOPE_BASE, SCOPE_USERINFO = "snsapi_base", "snsapi_userinfo"
LOGIN_PATH, CALLBACK_PATH = "/wechat/login/", "/wechat/authorize/"
FLOW_COOKIE, FLOW_COOKIE_PATH, FLOW_MAX_AGE = "wechat_flow", "/wechat/", 600
FAN_COOKIE, FAN_MAX_AGE = "fanid", 30 * 24 * 60 * 60
STATE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
# Seconds a SQLite connection waits for another thread's or process's
# write: xgc's timeout, so that the two wait alike.
SQLITE_BUSY_SECONDS = 20
# xgc shows times in China Standard Time, which has no daylight saving.
CHINA_TIME = timezone(timedelta(hours=8))
# A new fan's created_at and last_login_at come from one clock reading.
FIRST_VISIT_MARGIN = timedelta(seconds=1)
# What a Location header may keep as it is: RFC 3986's reserved and unreserved
# characters, and "%" so that escapes already in a path stay single.
URL_SAFE = "/?#[]@!$&'()*+,;=:%~"

ENVIRONMENT = {
    "database_url": "DATABASE_URL",
    "open_base_url": "WECHAT_OPEN_BASE_URL",
    "api_base_url": "WECHAT_API_BASE_URL",
    "app_id": "APP_ID",
    "app_secret": "APP_SECRET",
    "redirect_url": "REDIRECT_URL",
    "secret_key": "SECRET_KEY",
    "mp_verify": "WECHAT_MP_VERIFY",
}


class ConfigError(Exception):
    """The configuration cannot work; gunicorn logs it and stops booting."""


@dataclass(frozen=True)
class Config:
    database_url: str
    open_base_url: str
    api_base_url: str
    app_id: str
    app_secret: str = field(repr=False)
    redirect_url: str
    secret_key: str = field(repr=False)
    mp_verify: str
    http_timeout: float = 5.0


def config_from_env(environ: dict[str, str] | None = None) -> Config:
    environ = os.environ if environ is None else environ
    missing = [name for name in ENVIRONMENT.values() if not environ.get(name, "").strip()]
    if missing:
        raise ConfigError(f"tests.bench_reference needs {', '.join(missing)} in the environment")
    timeout = environ.get("WECHAT_HTTP_TIMEOUT", "").strip()
    return Config(
        **{key: environ[name].strip() for key, name in ENVIRONMENT.items()},
        http_timeout=float(timeout) if timeout else 5.0,
    )


# Signed cookies


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    """Signs ``value.timestamp`` with HMAC-SHA256 under a key of its own purpose.

    Deriving one key per cookie name keeps a valid flow cookie from passing
    for a fanid cookie, and the reverse.
    """

    def __init__(self, secret_key: str, purpose: str):
        self._key = hmac.digest(
            secret_key.encode(), f"bench_reference.{purpose}".encode(), "sha256"
        )

    def _mac(self, signed: str) -> str:
        return _b64(hmac.digest(self._key, signed.encode(), "sha256"))

    def sign(self, value: str, timestamp: int | None = None) -> str:
        signed = f"{value}.{int(time.time()) if timestamp is None else timestamp}"
        return f"{signed}.{self._mac(signed)}"

    def unsign(self, text: str, max_age: int) -> str | None:
        """Return the value, or None if text is not signed here or older than max_age."""
        parts = text.rsplit(".", 2)
        if len(parts) != 3 or not (parts[1].isascii() and parts[1].isdigit()):
            return None
        value, timestamp, mac = parts
        # As bytes: compare_digest refuses text that is not ASCII.
        if not hmac.compare_digest(self._mac(f"{value}.{timestamp}").encode(), mac.encode()):
            return None
        if time.time() - int(timestamp) > max_age:
            return None
        return value


def read_cookie(environ: dict, name: str) -> str:
    # The values set here are never quoted, so a plain split is enough; the
    # first of two same-named cookies is the one with the longer path.
    for part in environ.get("HTTP_COOKIE", "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return ""


def set_cookie(name: str, value: str, *, path: str, max_age: int, secure: bool) -> tuple:
    # Lax, not Strict: fans arrive from WeChat by top-level navigation.
    attributes = f"Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Lax"
    return ("Set-Cookie", f"{name}={value}; {attributes}{'; Secure' if secure else ''}")


DELETE_FLOW_COOKIE = (
    "Set-Cookie",
    f"{FLOW_COOKIE}=; Path={FLOW_COOKIE_PATH}; Max-Age=0; "
    "Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; SameSite=Lax",
)


def random_state() -> str:
    """Return 32 random characters of [A-Za-z0-9], the alphabet WeChat allows in state."""
    while True:
        # One read of the system's random source. 248 = 4 * 62: skipping the
        # bytes above it leaves every character equally likely.
        picked = [STATE_ALPHABET[byte % 62] for byte in os.urandom(48) if byte < 248]
        if len(picked) >= 32:
            return "".join(picked[:32])


def safe_next(value: str) -> str:
    """Return value if it is a path on this site (not the sign-in's own), else "/"."""
    if (
        value.startswith("/")
        # "//host" and "/\host" leave the site; browsers drop tabs and newlines.
        and not value.startswith(("//", "/\\", LOGIN_PATH, CALLBACK_PATH))
        and value.isprintable()
    ):
        return value
    return "/"


def login_link(next_url: str, scope: str | None = None) -> str:
    query = {"next": next_url} | ({"scope": scope} if scope else {})
    return f"{LOGIN_PATH}?{urlencode(query)}"


# Responses


@dataclass
class Response:
    status: str
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)


PAGE = (
    '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
    '<meta name="viewport" content="width=device-width, initial-scale=1">'
    "<title>{title}</title></head><body><main>{content}</main></body></html>"
)
HTML = ("Content-Type", "text/html; charset=utf-8")
# Pages about one fan or one sign-in must not be kept by any cache.
NO_STORE = ("Cache-Control", "no-store")


def page(status: str, title: str, content: str) -> Response:
    """Return an HTML page; content is markup, title is text."""
    body = PAGE.format(title=html.escape(title), content=content).encode()
    return Response(status, body, [HTML, NO_STORE])


def message(status: str, title: str, text: str, link: tuple[str, str] | None = None) -> Response:
    """Return the page that says why the sign-in stopped, with a link to try again."""
    content = f"<h1>{html.escape(title)}</h1><p>{html.escape(text)}</p>"
    if link:
        content += f'<p><a href="{html.escape(link[0])}">{html.escape(link[1])}</a></p>'
    return page(status, title, content)


def redirect(location: str, *headers: tuple[str, str]) -> Response:
    # quote() keeps the header ASCII whatever a next path holds.
    return Response(
        "302 Found", b"", [("Location", quote(location, safe=URL_SAFE)), HTML, NO_STORE, *headers]
    )


NOT_FOUND = message("404 Not Found", "页面不存在", "请从公众号菜单进入。")
NOT_ALLOWED = message("405 Method Not Allowed", "不支持的请求", "这个地址只接受 GET 请求。")
NOT_ALLOWED.headers.append(("Allow", "GET"))
SERVER_ERROR = message("500 Internal Server Error", "出错了", "服务器暂时出错，请稍后重试。")


# WeChat


class WeChatError(Exception):
    """WeChat answered an error, or no usable answer; never quotes the URL (it has the secret)."""


class WeChat:
    """Calls WeChat's API with one pooled requests.Session per thread."""

    def __init__(self, api_base_url: str, timeout: float):
        self.base_url = api_base_url.rstrip("/")
        self.timeout = timeout
        self._local = threading.local()

    def _session(self) -> requests.Session:
        # requests does not promise a Session is thread-safe; one per thread
        # still keeps each thread's connection to WeChat open across requests.
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            # Proxies, netrc and CA bundles would be looked up in the
            # environment on every request otherwise.
            session.trust_env = False
        return session

    def get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        try:
            answer = self._session().get(self.base_url + path, params=params, timeout=self.timeout)
        except requests.RequestException as error:
            raise WeChatError(f"{path} failed ({type(error).__name__})") from None
        if answer.status_code != 200:
            raise WeChatError(f"{path} answered HTTP {answer.status_code}")
        try:
            # From bytes: WeChat says text/plain without a charset, and the
            # text is UTF-8.
            data = json.loads(answer.content)
        except ValueError:
            raise WeChatError(f"{path} answered something that is not JSON") from None
        if not isinstance(data, dict):
            raise WeChatError(f"{path} answered JSON that is not an object")
        errcode = data.get("errcode") or 0
        if errcode not in (0, "0"):
            raise WeChatError(f"{path} answered errcode {errcode}: {data.get('errmsg', '')}")
        return data

    def exchange_code(self, code: str, app_id: str, app_secret: str) -> dict[str, Any]:
        """Return WeChat's answer for an authorize code, with openid and access_token as text."""
        token = self.get(
            "/sns/oauth2/access_token",
            {
                "appid": app_id,
                "secret": app_secret,
                "code": code,
                "grant_type": "authorization_code",
            },
        )
        if not token.get("openid") or not token.get("access_token"):
            raise WeChatError("/sns/oauth2/access_token answered without openid/access_token")
        return token | {"openid": str(token["openid"]), "access_token": str(token["access_token"])}


# Database


@dataclass(frozen=True)
class Fan:
    nickname: str
    headimgurl: str
    created_at: datetime
    last_login_at: datetime | None


# The statements of both databases, with "?" placeholders.
SAVE_FAN = """
INSERT INTO reference_fan (openid, nickname, headimgurl, userinfo, created_at, last_login_at)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (openid) DO UPDATE SET
    nickname = excluded.nickname,
    headimgurl = excluded.headimgurl,
    userinfo = excluded.userinfo,
    last_login_at = excluded.last_login_at
RETURNING id
"""
# Only a fan with userinfo has consented; finding them and recording the
# sign-in is one statement.
RECORD_LOGIN = """
UPDATE reference_fan SET last_login_at = ?
WHERE openid = ? AND userinfo IS NOT NULL
RETURNING id
"""
FIND_FAN = """
SELECT nickname, headimgurl, created_at, last_login_at FROM reference_fan WHERE id = ?
"""


class Store:
    """The reference_fan table, through one connection per thread kept across requests."""

    schema: tuple[str, ...] = ()

    def __init__(self, database_url: str):
        self.database_url = database_url
        self._local = threading.local()

    # What each database does differently.

    def connect(self) -> Any:
        raise NotImplementedError

    def sql(self, statement: str) -> str:
        return statement

    def timestamp(self, moment: datetime) -> Any:
        return moment

    def read_timestamp(self, value: Any) -> datetime:
        return value

    # The same for both.

    @property
    def sent(self) -> int:
        """Statements this thread has sent so far, not counting a connection's set-up."""
        return getattr(self._local, "sent", 0)

    def _execute(self, statement: str, params: tuple) -> list[tuple]:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = self.connect()
        self._local.sent = self.sent + 1
        try:
            # fetchall() to the end: SQLite holds a RETURNING statement's write
            # lock until its rows have all been read.
            return connection.execute(self.sql(statement), params).fetchall()
        except Exception:
            # The connection may be broken (a restarted server): the thread's
            # next request opens a new one.
            self.close()
            raise

    def close(self) -> None:
        """Close this thread's connection, if it has one."""
        connection = getattr(self._local, "connection", None)
        self._local.connection = None
        if connection is not None:
            connection.close()

    def create_schema(self) -> None:
        connection = self.connect()
        try:
            for statement in self.schema:
                connection.execute(statement)
        finally:
            connection.close()

    def save_fan(self, openid: str, info: dict[str, Any]) -> int:
        """Create or update the fan of a /sns/userinfo answer, signed in now; return the id."""
        now = self.timestamp(datetime.now(UTC))
        # The columns hold what fits, as xgc's do; userinfo keeps it all.
        nickname = str(info.get("nickname") or "")[:255]
        headimgurl = str(info.get("headimgurl") or "")[:1024]
        userinfo = json.dumps(info, ensure_ascii=False)
        rows = self._execute(SAVE_FAN, (openid, nickname, headimgurl, userinfo, now, now))
        return rows[0][0]

    def record_login(self, openid: str) -> int | None:
        """Record that a consented fan signed in now; return their id, or None."""
        rows = self._execute(RECORD_LOGIN, (self.timestamp(datetime.now(UTC)), openid))
        return rows[0][0] if rows else None

    def find_fan(self, fan_id: int) -> Fan | None:
        rows = self._execute(FIND_FAN, (fan_id,))
        if not rows:
            return None
        nickname, headimgurl, created_at, last_login_at = rows[0]
        return Fan(
            nickname,
            headimgurl,
            self.read_timestamp(created_at),
            None if last_login_at is None else self.read_timestamp(last_login_at),
        )


class SQLiteStore(Store):
    # Rows are never deleted, so INTEGER PRIMARY KEY (the rowid) needs no
    # AUTOINCREMENT and its extra write per insert. Times are UTC ISO text.
    schema = (
        # WAL lets readers go on while one thread writes; it stays set in the file.
        "PRAGMA journal_mode = WAL",
        """
        CREATE TABLE IF NOT EXISTS reference_fan (
            id INTEGER PRIMARY KEY,
            openid TEXT NOT NULL UNIQUE,
            nickname TEXT NOT NULL,
            headimgurl TEXT NOT NULL,
            userinfo TEXT,
            created_at TEXT NOT NULL,
            last_login_at TEXT
        )
        """,
    )

    def __init__(self, database_url: str):
        super().__init__(database_url)
        self.path = database_url.removeprefix("sqlite:///")
        if self.path in ("", ":memory:"):
            # Each thread would get a database of its own.
            raise ConfigError("DATABASE_URL must name a SQLite file")

    def connect(self) -> sqlite3.Connection:
        # isolation_level=None: every statement commits on its own. Each write
        # here is one statement, which takes the write lock before it reads
        # (as BEGIN IMMEDIATE would), so the busy timeout covers every wait.
        connection = sqlite3.connect(self.path, timeout=SQLITE_BUSY_SECONDS, isolation_level=None)
        # Safe with WAL: a power cut may lose the last commits, never corrupt.
        connection.execute("PRAGMA synchronous = NORMAL")
        return connection

    def timestamp(self, moment: datetime) -> str:
        return moment.isoformat()

    def read_timestamp(self, value: str) -> datetime:
        return datetime.fromisoformat(value)


class PostgresStore(Store):
    schema = (
        """
        CREATE TABLE IF NOT EXISTS reference_fan (
            id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            openid text NOT NULL UNIQUE,
            nickname text NOT NULL,
            headimgurl text NOT NULL,
            userinfo text,
            created_at timestamptz NOT NULL,
            last_login_at timestamptz
        )
        """,
    )

    def connect(self) -> Any:
        # Imported here: a SQLite run does not load the driver.
        import psycopg

        # Autocommit: each statement is its own transaction, with no BEGIN or
        # COMMIT round trips. psycopg prepares a statement on the server
        # after its fifth use on a connection.
        return psycopg.connect(self.database_url, autocommit=True, connect_timeout=5)

    def sql(self, statement: str) -> str:
        return statement.replace("?", "%s")


def open_store(database_url: str) -> Store:
    if database_url.startswith("sqlite:///"):
        return SQLiteStore(database_url)
    if database_url.startswith(("postgres://", "postgresql://")):
        return PostgresStore(database_url)
    raise ConfigError("DATABASE_URL must start with sqlite:/// or postgres://")


def create_schema(database_url: str) -> None:
    """Create the reference_fan table if it is missing; run it once before the workers start."""
    open_store(database_url).create_schema()


# The application


class ReferenceApp:
    """The WSGI application; one instance serves every thread of a worker."""

    def __init__(self, config: Config):
        self.config = config
        self.store = open_store(config.database_url)
        self.wechat = WeChat(config.api_base_url, config.http_timeout)
        self.flow_signer = Signer(config.secret_key, FLOW_COOKIE)
        self.fan_signer = Signer(config.secret_key, FAN_COOKIE)
        # WeChat matches the link against a fixed pattern: the parameters in
        # its order, redirect_uri encoded entirely, #wechat_redirect at the end.
        self.authorize_url = (
            f"{config.open_base_url.rstrip('/')}/connect/oauth2/authorize"
            f"?appid={quote(config.app_id, safe='')}"
            f"&redirect_uri={quote(config.redirect_url, safe='')}"
            "&response_type=code&scope={scope}&state={state}#wechat_redirect"
        )
        mp_verify = config.mp_verify.encode()
        self.mp_verify_page = Response(
            "200 OK", mp_verify, [("Content-Type", "text/plain; charset=utf-8")]
        )
        self.routes: dict[str, Callable[[dict], Response]] = {
            f"/MP_verify_{config.mp_verify}.txt": lambda environ: self.mp_verify_page,
            LOGIN_PATH: self.login,
            CALLBACK_PATH: self.callback,
            "/": self.home,
        }

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        view = self.routes.get(environ.get("PATH_INFO", ""))
        if view is None:
            response = NOT_FOUND
        elif environ.get("REQUEST_METHOD") != "GET":
            response = NOT_ALLOWED
        else:
            try:
                response = view(environ)
            except Exception:
                # Python's last-resort handler writes this to stderr, which is
                # gunicorn's log, when nothing configured logging.
                logger.exception("%s failed", environ.get("PATH_INFO"))
                response = SERVER_ERROR
        headers = [*response.headers, ("Content-Length", str(len(response.body)))]
        start_response(response.status, headers)
        return [response.body]

    @staticmethod
    def query(environ: dict) -> dict[str, str]:
        return dict(parse_qsl(environ.get("QUERY_STRING", "")))

    @staticmethod
    def secure(environ: dict) -> bool:
        return environ.get("wsgi.url_scheme") == "https"

    def login(self, environ: dict) -> Response:
        """Send the fan to WeChat's authorize page with a state bound to this browser."""
        query = self.query(environ)
        scope = query.get("scope") or SCOPE_BASE
        if scope not in (SCOPE_BASE, SCOPE_USERINFO):
            return message(
                "400 Bad Request", "链接无效", "这个登录链接的参数不正确，请从公众号菜单重新进入。"
            )
        state = random_state()
        flow = {"state": state, "next": safe_next(query.get("next", "")), "scope": scope}
        signed = self.flow_signer.sign(_b64(json.dumps(flow, separators=(",", ":")).encode()))
        return redirect(
            self.authorize_url.format(scope=scope, state=state),
            set_cookie(
                FLOW_COOKIE,
                signed,
                path=FLOW_COOKIE_PATH,
                max_age=FLOW_MAX_AGE,
                secure=self.secure(environ),
            ),
        )

    def bound_flow(self, environ: dict) -> dict[str, str] | None:
        """Return the state, next and scope of the flow this browser started, if valid."""
        value = self.flow_signer.unsign(read_cookie(environ, FLOW_COOKIE), FLOW_MAX_AGE)
        if value is None:
            return None
        flow = json.loads(_unb64(value))
        return flow if isinstance(flow, dict) else None

    def callback(self, environ: dict) -> Response:
        """WeChat's callback; says how many SQL statements it sent and forgets the state."""
        sent = self.store.sent
        response = self.sign_in(environ)
        response.headers += [
            ("X-Bench-Queries", str(self.store.sent - sent)),
            # A state is good for one callback.
            DELETE_FLOW_COOKIE,
        ]
        return response

    def sign_in(self, environ: dict) -> Response:
        query = self.query(environ)
        flow = self.bound_flow(environ)
        state = query.get("state", "").encode()
        if flow is None or not hmac.compare_digest(state, str(flow.get("state")).encode()):
            return message(
                "400 Bad Request",
                "登录未完成",
                "无法确认这次授权来自你的微信，请重新进入。",
                (login_link("/"), "重新进入"),
            )
        next_url = safe_next(str(flow.get("next", "")))
        code = query.get("code")
        if not code:
            return message(
                "200 OK",
                "你已取消授权",
                "授权后即可使用全部功能。",
                (login_link(next_url, SCOPE_USERINFO), "重新授权"),
            )
        try:
            token = self.wechat.exchange_code(code, self.config.app_id, self.config.app_secret)
            if str(token.get("is_snapshotuser", "0")) == "1":
                # The snapshot page's virtual user: a fake openid, never stored.
                return message(
                    "200 OK",
                    "请使用完整服务",
                    "当前是快照页，无法登录。请点击屏幕下方的「使用完整服务」后继续。",
                )
            # WeChat says which scope the fan granted; older answers leave it out.
            scope = str(token.get("scope") or flow.get("scope") or SCOPE_BASE)
            info = None
            if SCOPE_USERINFO in scope.split(","):
                info = self.wechat.get(
                    "/sns/userinfo",
                    {
                        "access_token": token["access_token"],
                        "openid": token["openid"],
                        "lang": "zh_CN",
                    },
                )
        except WeChatError as error:
            logger.warning("sign-in failed: %s", error)
            return message(
                "502 Bad Gateway",
                "登录失败",
                "暂时无法完成登录，请稍后重试。",
                (login_link(next_url), "重新进入"),
            )
        if info is None:
            fan_id = self.store.record_login(token["openid"])
        else:
            fan_id = self.store.save_fan(token["openid"], info)
        if fan_id is None:
            link = html.escape(login_link(next_url, SCOPE_USERINFO))
            return page(
                "200 OK",
                "认证提示",
                "<h1>认证提示</h1><p>你还未进行信息认证，请进行第一次认证</p>"
                f'<p><a href="{link}">去认证</a></p>',
            )
        fan_cookie = self.fan_signer.sign(str(fan_id))
        return redirect(
            next_url,
            set_cookie(
                FAN_COOKIE, fan_cookie, path="/", max_age=FAN_MAX_AGE, secure=self.secure(environ)
            ),
        )

    def home(self, environ: dict) -> Response:
        """Greet the signed-in fan; send anyone else through sign-in first."""
        fan_id = self.fan_signer.unsign(read_cookie(environ, FAN_COOKIE), FAN_MAX_AGE)
        fan = self.store.find_fan(int(fan_id)) if fan_id and fan_id.isdigit() else None
        if fan is None:
            return redirect(login_link("/"))
        nickname = html.escape(fan.nickname or "微信用户")
        first_visit = (
            fan.last_login_at is not None
            and abs(fan.last_login_at - fan.created_at) < FIRST_VISIT_MARGIN
        )
        avatar = (
            f'<img src="{html.escape(fan.headimgurl)}" alt="{nickname}的头像" referrerpolicy="no-referrer">'
            if fan.headimgurl
            else ""
        )
        return page(
            "200 OK",
            "我的",
            f"{avatar}<h1>你好，{nickname}</h1>"
            f"<p>{'第一次见面，欢迎来到 xgc' if first_visit else '欢迎回来'}</p>"
            f"<ul><li>首次授权 {china_time(fan.created_at)}</li>"
            f"<li>最近登录 {china_time(fan.last_login_at)}</li></ul>",
        )


def china_time(moment: datetime | None) -> str:
    return "" if moment is None else moment.astimezone(CHINA_TIME).strftime("%Y-%m-%d %H:%M")


def make_app(config: Config) -> ReferenceApp:
    return ReferenceApp(config)


def __getattr__(name: str) -> Any:
    # gunicorn looks ``application`` up right after importing the module:
    # building it then, not at import, lets tests import the module without
    # the environment.
    if name == "application":
        app = globals()["application"] = make_app(config_from_env())
        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
