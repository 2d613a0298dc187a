"""WeChat web authorization (网页授权): the only module that speaks to WeChat.

Protocol notes and their sources: ``shared/wechat-protocol.md`` sections 1-3.
Hosts come from ``WECHAT_OPEN_BASE_URL`` and ``WECHAT_API_BASE_URL`` so that a
sandbox or test server can stand in for WeChat.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import requests

from django.conf import settings
from django.views.decorators.debug import sensitive_variables

SCOPE_BASE = "snsapi_base"
SCOPE_USERINFO = "snsapi_userinfo"
SCOPES = (SCOPE_BASE, SCOPE_USERINFO)

# 40029 invalid code, 40163 code been used, 42003 code expired: the code
# cannot be exchanged again, so the flow has to start over with a new one.
CODE_REJECTED_ERRCODES = frozenset({40029, 40163, 42003})
# 40001 superseded or invalid, 40014 malformed, 42001 expired: the platform
# token must be fetched again.
TOKEN_REJECTED_ERRCODES = frozenset({40001, 40014, 42001})
# 40007 invalid media_id: unknown, or older than its 3 days; the fan has to
# choose that photo again.
MEDIA_EXPIRED_ERRCODE = 40007
# Custom menu limits (protocol notes section 5, current doc).
MENU_MAX_BUTTONS, MENU_MAX_SUB_BUTTONS = 3, 5
MENU_MAX_NAME_BYTES, MENU_MAX_SUB_NAME_BYTES, MENU_MAX_URL_BYTES = 16, 60, 1024


class WeChatError(Exception):
    """WeChat answered with an error, or could not be reached.

    ``errcode`` is WeChat's code, or None when no valid answer arrived
    (timeout, connection failure, HTTP error, a body that is not JSON).
    Messages never carry the app secret or a token.
    """

    def __init__(self, errcode: int | None, errmsg: str):
        super().__init__(errcode, errmsg)
        self.errcode = errcode
        self.errmsg = errmsg

    def __str__(self) -> str:
        if self.errcode is None:
            return f"WeChat unreachable: {self.errmsg}"
        return f"WeChat error {self.errcode}: {self.errmsg}"

    @property
    def code_rejected(self) -> bool:
        return self.errcode in CODE_REJECTED_ERRCODES

    @property
    def token_rejected(self) -> bool:
        return self.errcode in TOKEN_REJECTED_ERRCODES

    @property
    def media_expired(self) -> bool:
        return self.errcode == MEDIA_EXPIRED_ERRCODE


@dataclass(frozen=True)
class OAuthToken:
    """The answer of /sns/oauth2/access_token or /sns/oauth2/refresh_token."""

    openid: str
    scope: str
    expires_in: int
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    unionid: str = ""
    # Set for the virtual user of WeChat's snapshot page (快照页模式): its
    # openid and profile are fake and must not be stored.
    is_snapshot_user: bool = False

    @property
    def allows_userinfo(self) -> bool:
        return SCOPE_USERINFO in self.scope.split(",")

    @classmethod
    def from_response(cls, data: dict[str, Any], requested_scope: str) -> OAuthToken:
        try:
            return cls(
                openid=str(data["openid"]),
                # The new docs omit "scope" from the field table; fall back to
                # what was asked for.
                scope=str(data.get("scope") or requested_scope),
                expires_in=int(data.get("expires_in") or 0),
                access_token=str(data["access_token"]),
                refresh_token=str(data.get("refresh_token") or ""),
                unionid=str(data.get("unionid") or ""),
                is_snapshot_user=str(data.get("is_snapshotuser", "0")) == "1",
            )
        except (KeyError, TypeError, ValueError):
            raise WeChatError(None, "token answer without openid/access_token") from None


@dataclass(frozen=True)
class Credential:
    """A platform access_token or a jsapi_ticket, and its lifetime in seconds."""

    value: str = field(repr=False)
    expires_in: int

    @classmethod
    def from_response(cls, data: dict[str, Any], key: str) -> Credential:
        try:
            return cls(value=str(data[key]), expires_in=int(data.get("expires_in") or 0))
        except (KeyError, TypeError, ValueError):
            raise WeChatError(None, f"answer without {key}") from None


_local = threading.local()


def _session() -> requests.Session:
    # One Session per thread: connections to WeChat are reused across
    # requests, and requests does not promise a Session is thread-safe.
    base_url = settings.WECHAT_API_BASE_URL
    if getattr(_local, "base_url", None) != base_url:
        session = requests.Session()
        # The environment's proxy for WeChat's host (honouring NO_PROXY) and
        # its CA bundle, read once: requests would read them again on every
        # call, which costs more CPU than the rest of preparing the call.
        session.proxies = requests.utils.get_environ_proxies(base_url)
        session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get(
            "CURL_CA_BUNDLE", True
        )
        session.trust_env = False
        _local.session, _local.base_url = session, base_url
    return _local.session


def authorize_url(*, redirect_uri: str, scope: str, state: str) -> str:
    """Return the URL that sends a fan to WeChat's authorize page.

    WeChat matches the link against a fixed pattern, so the parameters are
    written in its documented order, redirect_uri is encoded entirely, and
    ``#wechat_redirect`` ends it.
    https://developers.weixin.qq.com/doc/service/guide/h5/auth.html
    """
    return (
        f"{settings.WECHAT_OPEN_BASE_URL.rstrip('/')}/connect/oauth2/authorize"
        f"?appid={quote(settings.APP_ID, safe='')}"
        f"&redirect_uri={quote(redirect_uri, safe='')}"
        f"&response_type=code&scope={scope}&state={state}#wechat_redirect"
    )


@sensitive_variables("params", "body")
def _call(
    method: str,
    path: str,
    *,
    params: dict[str, str] | None = None,
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Call a WeChat API path; return its JSON or raise WeChatError.

    Errors are raised ``from None``: requests' own exceptions quote the URL,
    and the URL of a token exchange carries the app secret.
    """
    url = settings.WECHAT_API_BASE_URL.rstrip("/") + path
    # Raw UTF-8: WeChat refuses \uXXXX escapes with 40033.
    data = None if body is None else json.dumps(body, ensure_ascii=False).encode()
    headers = None if body is None else {"Content-Type": "application/json"}
    try:
        response = _session().request(
            method,
            url,
            params=params,
            data=data,
            headers=headers,
            timeout=settings.WECHAT_HTTP_TIMEOUT,
        )
    except requests.Timeout:
        raise WeChatError(None, f"{path} timed out") from None
    except requests.RequestException as exc:
        raise WeChatError(None, f"{path} failed ({type(exc).__name__})") from None
    if response.status_code != 200:
        raise WeChatError(None, f"{path} answered HTTP {response.status_code}")
    try:
        # WeChat sends JSON as text/plain without a charset; requests would
        # then decode it as ISO-8859-1 and garble every Chinese nickname.
        data = json.loads(response.content.decode("utf-8"))
    except ValueError:
        raise WeChatError(None, f"{path} answered something that is not JSON") from None
    if not isinstance(data, dict):
        raise WeChatError(None, f"{path} answered JSON that is not an object")
    errcode = data.get("errcode", 0)
    if errcode not in (0, "0", None):
        raise WeChatError(_as_int(errcode), str(data.get("errmsg", "")))
    return data


def _as_int(errcode: Any) -> int | None:
    try:
        return int(errcode)
    except (TypeError, ValueError):
        return None


@sensitive_variables()
def fetch_access_token(code: str, *, requested_scope: str) -> OAuthToken:
    """Exchange an authorize ``code`` for the fan's OAuth token and openid.

    A code works once, for five minutes; never retry it.
    https://developers.weixin.qq.com/doc/service/api/webdev/access/api_snsaccesstoken
    """
    data = _call(
        "GET",
        "/sns/oauth2/access_token",
        params={
            "appid": settings.APP_ID,
            "secret": settings.APP_SECRET,
            "code": code,
            "grant_type": "authorization_code",
        },
    )
    return OAuthToken.from_response(data, requested_scope)


@sensitive_variables()
def refresh_access_token(token: OAuthToken) -> OAuthToken:
    """Renew an OAuth token with its refresh_token (valid 30 days).

    https://developers.weixin.qq.com/doc/service/api/webdev/access/api_snsrefreshtoken
    """
    data = _call(
        "GET",
        "/sns/oauth2/refresh_token",
        params={
            "appid": settings.APP_ID,
            "grant_type": "refresh_token",
            "refresh_token": token.refresh_token,
        },
    )
    return OAuthToken.from_response(data, token.scope)


@sensitive_variables()
def check_access_token(token: OAuthToken) -> bool:
    """Return whether WeChat still accepts the fan's OAuth token.

    https://developers.weixin.qq.com/doc/service/api/webdev/access/api_snsauth
    """
    try:
        _call(
            "GET",
            "/sns/auth",
            params={"access_token": token.access_token, "openid": token.openid},
        )
    except WeChatError as error:
        if error.errcode is None:
            raise
        return False
    return True


@sensitive_variables()
def get_user_info(token: OAuthToken, *, lang: str = "zh_CN") -> dict[str, Any]:
    """Return the fan's profile; needs a token granted with snsapi_userinfo.

    https://developers.weixin.qq.com/doc/service/api/webdev/access/api_snsuserinfo
    """
    data = _call(
        "GET",
        "/sns/userinfo",
        params={"access_token": token.access_token, "openid": token.openid, "lang": lang},
    )
    if "openid" not in data:
        raise WeChatError(None, "/sns/userinfo answered without openid")
    return data


@sensitive_variables()
def fetch_stable_token(*, force_refresh: bool = False) -> Credential:
    """Fetch the platform access_token from cgi-bin/stable_token.

    Normal mode hands every caller the same token, so asking never breaks a
    token another process is using; force_refresh replaces it (20 a day).
    The caller's IP must be on the account's whitelist (40164 otherwise).
    https://developers.weixin.qq.com/doc/service/api/base/api_getstableaccesstoken
    """
    data = _call(
        "POST",
        "/cgi-bin/stable_token",
        body={
            "grant_type": "client_credential",
            "appid": settings.APP_ID,
            "secret": settings.APP_SECRET,
            "force_refresh": force_refresh,
        },
    )
    return Credential.from_response(data, "access_token")


@sensitive_variables()
def fetch_client_token() -> Credential:
    """Fetch a platform access_token from cgi-bin/token; the last one then expires.

    https://developers.weixin.qq.com/doc/service/api/base/api_getaccesstoken
    """
    data = _call(
        "GET",
        "/cgi-bin/token",
        params={
            "grant_type": "client_credential",
            "appid": settings.APP_ID,
            "secret": settings.APP_SECRET,
        },
    )
    return Credential.from_response(data, "access_token")


@sensitive_variables()
def fetch_jsapi_ticket(access_token: str) -> Credential:
    """Fetch the JS-SDK jsapi_ticket; WeChat allows few calls, so cache it.

    https://developers.weixin.qq.com/doc/service/guide/h5/jssdk.html
    """
    data = _call(
        "GET", "/cgi-bin/ticket/getticket", params={"access_token": access_token, "type": "jsapi"}
    )
    return Credential.from_response(data, "ticket")


def jsapi_signature(*, ticket: str, noncestr: str, timestamp: int, url: str) -> str:
    """Return the signature wx.config needs for a page URL (without its #fragment).

    The values are joined raw, not URL-encoded, in the key order WeChat sorts them.
    """
    signed = f"jsapi_ticket={ticket}&noncestr={noncestr}&timestamp={timestamp}&url={url}"
    # SHA-1 is what the JS-SDK fixes.
    return hashlib.sha1(signed.encode()).hexdigest()  # noqa: S324


@sensitive_variables()
def get_media(access_token: str, media_id: str, *, max_bytes: int) -> bytes:
    """Download a temporary media file, such as a JS-SDK uploadImage serverId.

    The body decides: WeChat answers errors with HTTP 200 and a JSON object,
    labelled text/plain or even image/jpeg. A body over max_bytes is refused
    without reading the rest. An id lives 3 days, then gives 40007.
    https://developers.weixin.qq.com/doc/service/api/material/temporary/api_getmedia
    """
    path = "/cgi-bin/media/get"
    try:
        with _session().get(
            settings.WECHAT_API_BASE_URL.rstrip("/") + path,
            params={"access_token": access_token, "media_id": media_id},
            timeout=settings.WECHAT_HTTP_TIMEOUT,
            stream=True,
        ) as response:
            if response.status_code != 200:
                raise WeChatError(None, f"{path} answered HTTP {response.status_code}")
            body = _read_at_most(response, max_bytes, path)
    except requests.Timeout:
        raise WeChatError(None, f"{path} timed out") from None
    except requests.RequestException as exc:
        raise WeChatError(None, f"{path} failed ({type(exc).__name__})") from None
    # An error is a small JSON object; a photo never starts with "{".
    if body[:64].lstrip().startswith(b"{"):
        try:
            data = json.loads(body.decode("utf-8"))
        except ValueError:
            data = None
        if isinstance(data, dict) and data.get("errcode", 0) not in (0, "0", None):
            raise WeChatError(_as_int(data["errcode"]), str(data.get("errmsg", "")))
    return body


def _read_at_most(response: requests.Response, max_bytes: int, path: str) -> bytes:
    too_large = WeChatError(None, f"{path} answered a file too large (over {max_bytes} bytes)")
    length = response.headers.get("Content-Length", "")
    if length.isdigit() and int(length) > max_bytes:
        raise too_large
    # Counted after decoding, so a compressed body cannot grow past the cap.
    body = bytearray()
    for chunk in response.iter_content(chunk_size=64 * 1024):
        body += chunk
        if len(body) > max_bytes:
            raise too_large
    return bytes(body)


@sensitive_variables()
def create_menu(access_token: str, menu: dict[str, Any]) -> None:
    """Publish the custom menu (raw UTF-8 JSON: escapes give 40033).

    https://developers.weixin.qq.com/doc/service/api/custommenu/api_createcustommenu
    """
    _call("POST", "/cgi-bin/menu/create", params={"access_token": access_token}, body=menu)


@sensitive_variables()
def get_menu(access_token: str) -> dict[str, Any]:
    """Return the published menu; WeChat answers 46003 when there is none."""
    return _call("GET", "/cgi-bin/menu/get", params={"access_token": access_token})


@sensitive_variables()
def delete_menu(access_token: str) -> None:
    _call("GET", "/cgi-bin/menu/delete", params={"access_token": access_token})


@sensitive_variables()
def send_template_message(access_token: str, message: dict[str, Any]) -> str:
    """Send a template message (模板消息); return WeChat's msgid.

    errcode 0 means accepted, not delivered: the TEMPLATESENDJOBFINISH event
    tells delivery. The msgid is a 64-bit number, kept as text.
    https://developers.weixin.qq.com/doc/service/api/notify/template/api_sendtemplatemessage
    """
    data = _call(
        "POST",
        "/cgi-bin/message/template/send",
        params={"access_token": access_token},
        body=message,
    )
    if "msgid" not in data:
        raise WeChatError(None, "/cgi-bin/message/template/send answered without msgid")
    return str(data["msgid"])


def menu_problems(buttons: Any) -> list[tuple[int, str]]:
    """Return (errcode, reason) for each way a menu breaks WeChat's limits.

    The errcodes are the nearest of WeChat's 40016-40027; which number WeChat
    uses for which rule is UNCONFIRMED.
    """
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= MENU_MAX_BUTTONS:
        return [(40016, f"a menu has 1 to {MENU_MAX_BUTTONS} buttons")]
    problems = []
    for number, button in enumerate(buttons, 1):
        problems += _button_problems(button, f"button {number}", sub=False)
    return problems


def _button_problems(button: Any, where: str, *, sub: bool) -> list[tuple[int, str]]:
    if not isinstance(button, dict):
        return [(47001, f"{where} is not a JSON object")]
    problems = []
    max_name = MENU_MAX_SUB_NAME_BYTES if sub else MENU_MAX_NAME_BYTES
    name_bytes = len(str(button.get("name", "")).encode())
    if not 1 <= name_bytes <= max_name:
        problems.append(
            (40025 if sub else 40018, f"{where}: name of {name_bytes} bytes, not 1-{max_name}")
        )
    subs = button.get("sub_button")
    if subs is not None and not sub:
        # A button with sub-buttons only opens them: it has no type of its own.
        if not isinstance(subs, list) or not 1 <= len(subs) <= MENU_MAX_SUB_BUTTONS:
            return [*problems, (40023, f"{where}: 1 to {MENU_MAX_SUB_BUTTONS} sub-buttons")]
        for number, sub_button in enumerate(subs, 1):
            problems += _button_problems(sub_button, f"{where}.{number}", sub=True)
    elif not button.get("type"):
        problems.append((40024 if sub else 40017, f"{where}: no type"))
    elif button["type"] == "view":
        url_bytes = len(str(button.get("url", "")).encode())
        if not 1 <= url_bytes <= MENU_MAX_URL_BYTES:
            problems.append(
                (
                    40027 if sub else 40022,
                    f"{where}: a view button needs a url of 1-{MENU_MAX_URL_BYTES} bytes",
                )
            )
    return problems
