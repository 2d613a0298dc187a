"""JS-SDK configuration: signed like WeChat's official example, for our pages only."""

import pytest

from django.core.cache import cache

from fans import jssdk
from xgc import tokens, wechat

from .conftest import API

# The official vector (protocol notes section 0).
TICKET = "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg"
NONCE, TIMESTAMP = "Wm3WZYTPz0wzccnW", 1414587457


@pytest.mark.parametrize(
    ("url", "signature"),
    [
        ("http://mp.weixin.qq.com?params=value", "0f9de62fce790f9a083d5c99e95740ceb90c27ed"),
        ("http://mp.weixin.qq.com", "f4d90daf4b3bca3078ab155816175ba34c443a7b"),
    ],
)
def test_signature_matches_the_official_vectors(url, signature):
    assert (
        wechat.jsapi_signature(ticket=TICKET, noncestr=NONCE, timestamp=TIMESTAMP, url=url)
        == signature
    )


@pytest.fixture
def official_example(settings, monkeypatch):
    """Make the endpoint sign with the official vector's ticket, nonce and time."""
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "mp.weixin.qq.com"]
    cache.set(tokens.jsapi_ticket.cache_key, TICKET, 600)
    monkeypatch.setattr(jssdk, "get_random_string", lambda length: NONCE)
    monkeypatch.setattr(jssdk.time, "time", lambda: TIMESTAMP)


@pytest.mark.parametrize(
    "page",
    ["http://mp.weixin.qq.com?params=value", "http://mp.weixin.qq.com?params=value#share"],
)
def test_config_signs_the_page_without_its_fragment(client, official_example, page):
    response = client.get("/wechat/jssdk/config", {"url": page})
    assert response.status_code == 200
    assert response.json() == {
        "appId": "wx1234567890abcdef",
        "timestamp": TIMESTAMP,
        "nonceStr": NONCE,
        "signature": "0f9de62fce790f9a083d5c99e95740ceb90c27ed",
    }
    assert response["Cache-Control"].startswith("max-age=0")


@pytest.mark.parametrize(
    "page",
    [
        "",
        "https://evil.example/",
        "javascript:alert(1)",
        "//xgc.example.com/",
        "ftp://xgc.example.com/",
    ],
)
def test_config_signs_only_pages_of_this_site(client, official_example, page):
    response = client.get("/wechat/jssdk/config", {"url": page})
    assert response.status_code == 400
    assert "signature" not in response.json()


def test_config_fetches_and_caches_the_ticket(client, wechat_api):
    wechat_api.post(
        API + "/cgi-bin/stable_token", json={"access_token": "TOKEN", "expires_in": 7200}
    )
    ticket = wechat_api.get(
        API + "/cgi-bin/ticket/getticket",
        json={"errcode": 0, "errmsg": "ok", "ticket": "TICKET", "expires_in": 7200},
    )
    for _ in range(2):
        assert (
            client.get("/wechat/jssdk/config", {"url": "https://xgc.example.com/"}).status_code
            == 200
        )
    assert ticket.call_count == 1


def test_config_without_a_ticket_is_a_502_not_a_crash(client, wechat_api):
    wechat_api.post(API + "/cgi-bin/stable_token", json={"errcode": -1, "errmsg": "system error"})
    response = client.get("/wechat/jssdk/config", {"url": "https://xgc.example.com/"})
    assert response.status_code == 502
    assert response.json() == {"error": "WeChat is not answering"}
