"""Virtual fans: browsers without JavaScript that sign in to xgc through the sandbox.

Each fan is a requests session that follows redirects as a browser does and
notes every response on the way: which server answered, and how long xgc's
callback took. The sandbox's phone chooser and consent page are plain forms,
posted as a browser would.
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import requests

MAX_HOPS = 8
# The user agent of WeChat's browser on an iPhone: pages see MicroMessenger.
WECHAT_USER_AGENT = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.50(0x1800323d) NetType/WIFI"
)
REQUEST_SECONDS = 30
CALLBACK_PATH = "/wechat/authorize/"
REGISTER_LINK = re.compile(r'href="([^"]+)">去认证')
CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
GREETING = re.compile(r"你好，([^<]+)</h1>")


class FlowError(Exception):
    """The flow reached a page it should not have; the message says which."""


@dataclass
class Flow:
    """What one fan's sign-in cost, as the fan's browser saw it."""

    kind: str
    seconds: float = 0.0
    # (seconds, database queries or None) of each callback
    callbacks: list[tuple[float, int | None]] = field(default_factory=list)
    app_requests: int = 0
    wechat_requests: int = 0
    error: str | None = None


def new_session() -> requests.Session:
    session = requests.Session()
    # Loopback only: no proxy from the environment, and no reading of the
    # environment on every request, which costs more than the rest of it.
    session.trust_env = False
    session.max_redirects = MAX_HOPS
    # Fans tap the menu inside WeChat; another browser would get xgc's
    # open-in-WeChat page instead of the authorize page.
    session.headers["User-Agent"] = WECHAT_USER_AGENT
    return session


class Fan:
    """One phone's browser, for xgc at app_url and the sandbox at sandbox_url."""

    def __init__(self, app_url: str, sandbox_url: str):
        self.app_url = app_url
        self.sandbox_url = sandbox_url
        self.session = new_session()
        self.nickname: str | None = None

    def sign_up(self) -> Flow:
        """Sign in as a new WeChat user: consent once, then reach the home page."""
        return self._timed("new", self._sign_up)

    def come_back(self) -> Flow:
        """Sign in again, silently, after the fanid cookie has expired."""
        self.session.cookies.set("fanid", None)
        return self._timed("returning", self._come_back)

    def _sign_up(self, flow: Flow) -> None:
        phone = self._visit(flow, "GET", f"{self.app_url}/wechat/login/?next=/")
        if urlsplit(phone.url).path != "/sandbox/phone":
            raise FlowError("authorize did not ask who holds the phone")
        register = self._visit(flow, "POST", phone.url, _form(phone, openid="new"))
        link = REGISTER_LINK.search(register.text)
        if link is None:
            raise FlowError("no 去认证 link after the first callback")
        consent = self._visit(flow, "GET", urljoin(register.url, html.unescape(link.group(1))))
        if "申请获得以下权限" not in consent.text:
            raise FlowError("no consent page")
        home = self._visit(flow, "POST", consent.url, _form(consent, decision="allow"))
        self.nickname = _greeted(home)

    def _come_back(self, flow: Flow) -> None:
        home = self._visit(flow, "GET", f"{self.app_url}/wechat/login/?next=/")
        if _greeted(home) != self.nickname:
            raise FlowError("home greets another fan")

    def _timed(self, kind: str, steps: Callable[[Flow], None]) -> Flow:
        flow = Flow(kind)
        started = time.monotonic()
        try:
            steps(flow)
        except FlowError as error:
            flow.error = str(error)
        except requests.Timeout:
            flow.error = "timeout"
        except requests.RequestException as error:
            flow.error = type(error).__name__
        finally:
            # The fan leaves: its browser's connections close, the cookies stay.
            self.session.close()
        flow.seconds = time.monotonic() - started
        return flow

    def _visit(
        self, flow: Flow, method: str, url: str, data: dict | None = None
    ) -> requests.Response:
        """Request url and follow its redirects; return the page they end on."""
        page = self.session.request(method, url, data=data, timeout=REQUEST_SECONDS)
        for response in (*page.history, page):
            if response.url.startswith(self.sandbox_url):
                flow.wechat_requests += 1
            else:
                flow.app_requests += 1
            if urlsplit(response.url).path == CALLBACK_PATH:
                queries = response.headers.get("X-Bench-Queries")
                flow.callbacks.append(
                    (response.elapsed.total_seconds(), int(queries) if queries else None)
                )
        if page.status_code != 200:
            raise FlowError(f"HTTP {page.status_code} from {urlsplit(page.url).path}")
        return page


def _form(page: requests.Response, **fields: str) -> dict[str, str]:
    """Return fields as page's form would post them, with its CSRF token."""
    token = CSRF_FIELD.search(page.text)
    if token is None:
        raise FlowError(f"no form on {urlsplit(page.url).path}")
    return fields | {"csrfmiddlewaretoken": token.group(1)}


def _greeted(home: requests.Response) -> str:
    greeting = GREETING.search(home.text)
    if greeting is None:
        raise FlowError("no greeting on the last page")
    return html.unescape(greeting.group(1))


def run_flows(flows: list[Callable[[], Flow]], concurrency: int) -> tuple[list[Flow], float]:
    """Run the flows, concurrency at a time; return them and the seconds taken."""
    started = time.monotonic()
    with ThreadPoolExecutor(concurrency) as pool:
        done = list(pool.map(lambda flow: flow(), flows))
    return done, time.monotonic() - started
