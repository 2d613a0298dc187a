"""xgc.wechat.get_media: a file's bytes, or WeChat's error, decided by the body."""

import io
import json
import logging

import pytest
import requests
from responses import matchers

from xgc import tokens, wechat
from xgc.wechat import WeChatError

from .conftest import API

MEDIA = API + "/cgi-bin/media/get"
TOKEN = "PLATFORM_TOKEN_NEVER_SHOWN"
MEDIA_ID = "Lmhq1-pq_cBkW3x9Nz0AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefgh"
# The first bytes of a JPEG file: enough for the client, which never decodes.
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 500 + b"\xff\xd9"
MAX_BYTES = 1024


def media_answer(wechat_api, **kwargs):
    return wechat_api.get(
        MEDIA,
        match=[matchers.query_param_matcher({"access_token": TOKEN, "media_id": MEDIA_ID})],
        **kwargs,
    )


def error_body(errcode: int, errmsg: str) -> bytes:
    return json.dumps({"errcode": errcode, "errmsg": errmsg}).encode()


def test_the_file_comes_back_as_its_bytes(wechat_api):
    """The id is passed through as it is, and the body is returned unchanged."""
    media_answer(
        wechat_api,
        body=JPEG,
        content_type="image/jpeg",
        headers={"Content-disposition": f'attachment; filename="{MEDIA_ID}.jpg"'},
    )
    assert wechat.get_media(TOKEN, MEDIA_ID, max_bytes=MAX_BYTES) == JPEG


@pytest.mark.parametrize("content_type", ["text/plain", "image/jpeg", "application/json"])
def test_an_error_is_json_in_the_body_whatever_its_label(wechat_api, content_type):
    """WeChat answers 40007 with HTTP 200, labelled text/plain or even as a photo."""
    media_answer(
        wechat_api,
        body=error_body(40007, "invalid media_id hint: [x] rid: 1"),
        content_type=content_type,
    )
    with pytest.raises(WeChatError) as raised:
        wechat.get_media(TOKEN, MEDIA_ID, max_bytes=MAX_BYTES)
    assert raised.value.errcode == 40007
    assert raised.value.media_expired
    assert not raised.value.token_rejected


@pytest.mark.parametrize(
    ("errcode", "token_rejected"), [(-1, False), (40001, True), (40014, True), (42001, True)]
)
def test_busy_and_refused_tokens_are_errors(wechat_api, errcode, token_rejected):
    media_answer(wechat_api, body=error_body(errcode, "x"), content_type="text/plain")
    with pytest.raises(WeChatError) as raised:
        wechat.get_media(TOKEN, MEDIA_ID, max_bytes=MAX_BYTES)
    assert raised.value.errcode == errcode
    assert raised.value.token_rejected is token_rejected
    assert not raised.value.media_expired


def test_a_refused_platform_token_is_replaced_once(wechat_api):
    """with_platform_token fetches a new token after 40001 and asks again."""
    cache_key = tokens.platform_token.cache_key
    tokens.cache.set(cache_key, "OLD", 600)
    wechat_api.get(MEDIA, body=error_body(40001, "invalid credential"), content_type="text/plain")
    wechat_api.post(API + "/cgi-bin/stable_token", json={"access_token": "NEW", "expires_in": 7200})
    retried = wechat_api.get(MEDIA, body=JPEG, content_type="image/jpeg")
    photo = tokens.with_platform_token(
        lambda token: wechat.get_media(token, MEDIA_ID, max_bytes=MAX_BYTES)
    )
    assert photo == JPEG
    assert "access_token=NEW" in retried.calls[0].request.url


@pytest.mark.parametrize(
    "body",
    [
        b'{"errcode": 0, "errmsg": "ok"}',
        b'{"video_url": "http://example.com/v.mp4"}',
        b"{ not json at all",
        b"",
    ],
)
def test_anything_else_with_http_200_is_the_file(wechat_api, body):
    """Only a JSON object with a non-zero errcode is an error; the caller checks images."""
    media_answer(wechat_api, body=body, content_type="text/plain")
    assert wechat.get_media(TOKEN, MEDIA_ID, max_bytes=MAX_BYTES) == body


def test_a_file_over_the_cap_is_refused(wechat_api):
    media_answer(wechat_api, body=b"\xff" * (MAX_BYTES + 1), content_type="image/jpeg")
    with pytest.raises(WeChatError) as raised:
        wechat.get_media(TOKEN, MEDIA_ID, max_bytes=MAX_BYTES)
    assert raised.value.errcode is None
    assert "too large" in str(raised.value)


def test_a_file_of_exactly_the_cap_is_accepted(wechat_api):
    media_answer(wechat_api, body=b"\xff" * MAX_BYTES, content_type="image/jpeg")
    assert len(wechat.get_media(TOKEN, MEDIA_ID, max_bytes=MAX_BYTES)) == MAX_BYTES


class EndlessFile(io.RawIOBase):
    """A body that never ends, counting what was read of it."""

    def __init__(self):
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        buffer[:] = b"\xff" * len(buffer)
        self.read_bytes += len(buffer)
        return len(buffer)


def test_a_long_file_is_not_read_to_its_end(wechat_api):
    """The download stops at the first chunk past the cap."""
    endless = EndlessFile()
    media_answer(
        wechat_api,
        body=io.BufferedReader(endless),
        content_type="image/jpeg",
        auto_calculate_content_length=False,
    )
    with pytest.raises(WeChatError, match="too large"):
        wechat.get_media(TOKEN, MEDIA_ID, max_bytes=100 * 1024)
    assert endless.read_bytes < 1024 * 1024


def test_a_declared_length_over_the_cap_is_refused_before_reading(wechat_api):
    endless = EndlessFile()
    media_answer(
        wechat_api,
        body=io.BufferedReader(endless),
        content_type="image/jpeg",
        headers={"Content-Length": str(MAX_BYTES + 1)},
        auto_calculate_content_length=False,
    )
    with pytest.raises(WeChatError, match="too large"):
        wechat.get_media(TOKEN, MEDIA_ID, max_bytes=MAX_BYTES)
    assert endless.read_bytes == 0


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"body": requests.ReadTimeout(f"access_token={TOKEN}")}, "timed out"),
        ({"body": requests.ConnectionError(f"/x?access_token={TOKEN}")}, "ConnectionError"),
        ({"status": 502, "body": f"Bad Gateway access_token={TOKEN}"}, "HTTP 502"),
        ({"status": 404, "body": error_body(40007, f"access_token={TOKEN}")}, "HTTP 404"),
    ],
)
def test_failures_never_show_the_token(wechat_api, caplog, kwargs, words):
    """Timeouts and HTTP errors become WeChatError(None) without the token or the URL."""
    media_answer(wechat_api, **kwargs)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(WeChatError) as raised:
        wechat.get_media(TOKEN, MEDIA_ID, max_bytes=MAX_BYTES)
    assert raised.value.errcode is None
    assert words in str(raised.value)
    # No chained exception either: requests' own messages quote the URL.
    assert raised.value.__cause__ is None
    assert raised.value.__context__ is None or raised.value.__suppress_context__
    assert TOKEN not in str(raised.value)
    assert TOKEN not in caplog.text


def test_the_timeout_setting_is_used(wechat_api, settings):
    settings.WECHAT_HTTP_TIMEOUT = 2.5
    call = media_answer(wechat_api, body=JPEG, content_type="image/jpeg")
    wechat.get_media(TOKEN, MEDIA_ID, max_bytes=MAX_BYTES)
    assert call.calls[0].request.req_kwargs["timeout"] == 2.5
    assert call.calls[0].request.req_kwargs["stream"] is True
