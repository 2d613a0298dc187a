"""The menu link opened outside WeChat: xgc's own page with a QR code of it."""

import html
import re

import pytest
import zxingcpp
from PIL import Image, ImageDraw

from django.test import RequestFactory

from fans.auth import is_wechat_browser
from fans.views import qr_svg

from .conftest import redirect_query

pytestmark = pytest.mark.django_db

WECHAT_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.50(0x1800323d) NetType/WIFI"
)
WECHAT_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/81.0.4044.138 Safari/537.36 NetType/WIFI MicroMessenger/7.0.20.1781(0x6700143B) "
    "WindowsWechat(0x63090a13) XWEB/9129 Flue"
)
WECOM = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/116.0.0.0 Mobile Safari/537.36 wxwork/4.1.22 MicroMessenger/7.0.1 Language/zh"
)
DEVTOOLS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/108.0.0.0 Safari/537.36 wechatdevtools/1.06.2412050 Language/zh_CN webview/"
)
DESKTOP_CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
IPHONE_SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
# tests.settings: REDIRECT_URL's host, which is not the test client's.
PUBLIC = "https://xgc.example.com"


@pytest.fixture
def outside_sandbox(settings):
    """Real WeChat (no sandbox), with the page on, as .env.example has it."""
    settings.WECHAT_SANDBOX = False
    settings.WECHAT_BROWSER_PAGE = True


def login(client, query: str = "", user_agent: str | None = DESKTOP_CHROME):
    headers = {} if user_agent is None else {"User-Agent": user_agent}
    return client.get(f"/wechat/login/{query}", headers=headers)


def shown_link(response) -> str:
    match = re.search(r'<p class="open-in-wechat__link">([^<]*)</p>', response.content.decode())
    return html.unescape(match[1])


def shown_svg(response) -> str:
    return re.search(r"<svg.*?</svg>", response.content.decode(), re.DOTALL)[0]


def decode_svg(svg: str) -> str:
    """Draw segno's SVG (one path of horizontal runs) and read it back with zxing."""
    width, height = (int(n) for n in re.search(r'viewBox="0 0 (\d+) (\d+)"', svg).groups())
    path = re.search(r'stroke="#000" d="([^"]+)"', svg)[1]
    scale = 8
    image = Image.new("L", (width * scale, height * scale), 255)
    draw = ImageDraw.Draw(image)
    x = y = 0.0
    for command, *numbers in re.findall(r"([Mmh])(-?[\d.]+)(?: (-?[\d.]+))?", path):
        if command == "M":
            x, y = float(numbers[0]), float(numbers[1])
        elif command == "m":
            x, y = x + float(numbers[0]), y + float(numbers[1])
        else:
            top = int((y - 0.5) * scale)
            end = x + float(numbers[0])
            draw.rectangle([int(x * scale), top, int(end * scale) - 1, top + scale - 1], fill=0)
            x = end
    (barcode,) = zxingcpp.read_barcodes(image)
    return barcode.text


@pytest.mark.parametrize("user_agent", [WECHAT_IPHONE, WECHAT_WINDOWS, WECOM, DEVTOOLS])
def test_wechat_and_its_devtools_go_to_the_authorize_page_as_before(
    client, outside_sandbox, user_agent
):
    response = login(client, "?next=/activities/", user_agent)
    assert response.status_code == 302
    assert response["Location"].startswith("https://open.weixin.qq.com/connect/oauth2/authorize?")
    assert redirect_query(response)["scope"] == "snsapi_base"
    assert "wechat_flow" in response.cookies


def test_the_user_agent_check_ignores_case():
    request = RequestFactory().get("/", headers={"User-Agent": "x micromessenger/8.0"})
    assert is_wechat_browser(request)
    assert not is_wechat_browser(RequestFactory().get("/"))


@pytest.mark.parametrize("user_agent", [DESKTOP_CHROME, IPHONE_SAFARI, None])
def test_another_browser_gets_xgcs_page_with_the_link_as_a_qr_code(
    client, outside_sandbox, user_agent
):
    """No redirect and no state: the page says what to do, with the link to scan or copy."""
    response = login(client, "?next=/activities/&scope=snsapi_userinfo", user_agent)
    body = response.content.decode()
    assert response.status_code == 200
    assert "请在微信中打开" in body
    assert "公众号" in body and "扫一扫" in body and "文件传输助手" in body
    assert not response.cookies
    assert "wechat_flow" not in client.cookies
    # The link fans were given, on the public host, not the one it came in on.
    link = f"{PUBLIC}/wechat/login/?next=/activities/&scope=snsapi_userinfo"
    assert shown_link(response) == link
    assert decode_svg(shown_svg(response)) == link
    assert shown_svg(response) == qr_svg(link)
    assert response["Cache-Control"].startswith("max-age=0")
    assert "User-Agent" in response["Vary"]


def test_the_qr_code_carries_no_style_the_csp_would_block(outside_sandbox):
    svg = qr_svg(f"{PUBLIC}/wechat/login/")
    assert "style" not in svg and "<script" not in svg


def test_a_link_too_long_for_a_qr_code_offers_the_plain_one(client, outside_sandbox):
    response = login(client, "?next=/" + "a" * 5000)
    assert response.status_code == 200
    assert shown_link(response) == f"{PUBLIC}/wechat/login/"
    assert decode_svg(shown_svg(response)) == f"{PUBLIC}/wechat/login/"


def test_the_link_is_escaped_in_the_page(client, outside_sandbox):
    response = login(client, '?next=/"><script>alert(1)</script>')
    assert "<script>alert" not in response.content.decode()
    assert shown_link(response).endswith(
        "/wechat/login/?next=/%22%3E%3Cscript%3Ealert(1)%3C/script%3E"
    )


def test_an_unknown_scope_is_still_refused(client, outside_sandbox):
    assert login(client, "?scope=snsapi_login").status_code == 400


def test_with_the_page_off_every_browser_goes_to_wechat(client, outside_sandbox, settings):
    settings.WECHAT_BROWSER_PAGE = False
    response = login(client)
    assert response.status_code == 302
    assert response["Location"].startswith("https://open.weixin.qq.com/")


def test_with_the_sandbox_on_every_browser_is_the_sandbox_phone(client):
    """tests.settings has the sandbox on: a desktop browser plays the phone."""
    response = login(client)
    assert response.status_code == 302
    assert "wechat_flow" in response.cookies


def test_the_callback_is_not_affected(client, outside_sandbox):
    response = client.get(
        "/wechat/authorize/", {"code": "C", "state": "S"}, headers={"User-Agent": DESKTOP_CHROME}
    )
    assert response.status_code == 302
    assert response["Location"].startswith("https://open.weixin.qq.com/")
