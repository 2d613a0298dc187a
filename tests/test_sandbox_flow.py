"""xgc's whole login flow against the sandbox, over real HTTP on 127.0.0.1."""

import re
from urllib.parse import urlsplit

import pytest

from fans.models import FansProfile

MAX_HOPS = 10


@pytest.fixture
def sandboxed(live_server, settings):
    """Point xgc at the sandbox served by a live server on loopback."""
    settings.ALLOWED_HOSTS = ["testserver", urlsplit(live_server.url).hostname]
    settings.REDIRECT_URL = f"{live_server.url}/wechat/authorize/"
    settings.WECHAT_OPEN_BASE_URL = settings.WECHAT_API_BASE_URL = f"{live_server.url}/sandbox"
    settings.WECHAT_SANDBOX_OAUTH_DOMAIN = urlsplit(live_server.url).netloc
    return live_server


def browse(client, url, method="get", data=None):
    """Follow redirects like a browser; return the last response and the paths seen."""
    seen = []
    response = getattr(client, method)(url, data)
    for _ in range(MAX_HOPS):
        seen.append(url)
        if response.status_code != 302:
            return response, seen
        url = response["Location"]
        response = client.get(url)
    pytest.fail(f"redirect loop: {seen}")


@pytest.mark.django_db(transaction=True)
def test_new_fan_then_returning_fan_through_the_sandbox(client, sandboxed):
    chooser, _ = browse(client, "/")
    assert "谁在使用这部手机" in chooser.content.decode()
    register, _ = browse(client, chooser.wsgi_request.get_full_path(), "post", {"openid": "new"})
    assert "你还未进行信息认证" in register.content.decode()

    register_url = re.search(r'href="([^"]+)">去认证', register.content.decode()).group(1)
    consent, _ = browse(client, register_url.replace("&amp;", "&"))
    assert "xgc 申请获得以下权限" in consent.content.decode()
    home, _ = browse(client, consent.wsgi_request.get_full_path(), "post", {"decision": "allow"})
    fan = FansProfile.objects.get()
    assert f"你好，{fan.nickname}" in home.content.decode()
    assert fan.nickname.startswith("新用户") and fan.headimgurl.startswith(sandboxed.url)

    del client.cookies["fanid"]
    again, seen = browse(client, "/")
    assert f"你好，{fan.nickname}" in again.content.decode()
    assert not any("phone" in url for url in seen)  # silent: no page on the way
    assert FansProfile.objects.count() == 1
