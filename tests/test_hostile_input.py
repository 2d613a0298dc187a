"""Hostile and malformed input never makes a page fail or hang.

Property-based: hypothesis throws random, huge, repeated, missing and
non-UTF-8 parameters at every fan-facing endpoint. WeChat is mocked to
refuse, so that no test reaches it and the flow's error paths are exercised too.
"""

import time
from urllib.parse import quote_from_bytes

import pytest
import responses
from hypothesis import HealthCheck, given, settings, strategies

from django.test import Client

from .conftest import API

pytestmark = pytest.mark.django_db

# Each request must be answered well within a fan's patience.
MAX_SECONDS = 2.0
ENDPOINTS = ["/wechat/login/", "/wechat/authorize/", "/wechat/", "/wechat/jssdk/config", "/"]
NAMES = [
    "next",
    "scope",
    "state",
    "code",
    "restarted",
    "url",
    "signature",
    "timestamp",
    "nonce",
    "echostr",
]

text = strategies.text(max_size=300) | strategies.text(min_size=2000, max_size=5000)
raw_bytes = strategies.binary(max_size=300)
values = text.map(
    lambda value: quote_from_bytes(value.encode("utf-8", "surrogatepass"))
) | raw_bytes.map(quote_from_bytes)
names = strategies.sampled_from(NAMES) | strategies.text(min_size=1, max_size=20).map(
    lambda name: quote_from_bytes(name.encode("utf-8", "surrogatepass"))
)
query_strings = strategies.lists(strategies.tuples(names, values), max_size=8).map(
    lambda pairs: "&".join(f"{name}={value}" for name, value in pairs)
)
cookies = strategies.dictionaries(
    strategies.sampled_from(["fanid", "wechat_flow", "sandbox_phone"]),
    strategies.text(
        alphabet=strategies.characters(codec="ascii", exclude_characters=";\r\n"), max_size=200
    ),
)
fuzz = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def refusing_wechat():
    """WeChat answers every API call with an error."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        for path in ("/sns/oauth2/access_token", "/sns/userinfo", "/cgi-bin/ticket/getticket"):
            mock.get(API + path, json={"errcode": 40029, "errmsg": "invalid code"})
        mock.post(API + "/cgi-bin/stable_token", json={"errcode": -1, "errmsg": "system error"})
        yield mock


@fuzz
@given(endpoint=strategies.sampled_from(ENDPOINTS), query=query_strings, jar=cookies)
def test_get_never_fails_or_hangs(refusing_wechat, endpoint, query, jar):
    client = Client(raise_request_exception=False)
    for name, value in jar.items():
        client.cookies[name] = value
    started = time.monotonic()
    response = client.get(f"{endpoint}?{query}")
    assert response.status_code < 500 or response.status_code == 502
    assert time.monotonic() - started < MAX_SECONDS


@fuzz
@given(query=query_strings, body=strategies.binary(max_size=3000))
def test_posts_to_the_server_endpoint_never_fail(refusing_wechat, query, body):
    client = Client(raise_request_exception=False)
    response = client.post(f"/wechat/?{query}", body, content_type="text/xml")
    assert response.status_code in (400, 403, 413)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_repeated_parameters_are_handled(refusing_wechat, endpoint):
    client = Client(raise_request_exception=False)
    query = "&".join(f"{name}=a&{name}=b&{name}=" for name in NAMES)
    assert client.get(f"{endpoint}?{query}").status_code < 500
