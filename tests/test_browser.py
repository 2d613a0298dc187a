"""End to end in headless Chromium: a phone in WeChat, xgc and the sandbox.

xgc runs in its own process on 127.0.0.1 with the sandbox standing in for
WeChat. Each test saves a screenshot of every page it reaches under
test-artifacts/screenshots/.
"""

from __future__ import annotations

import io
import os
import re
import shutil
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from xgc.sandbox.process import SANDBOX_APP, sandbox_server, wait_until

from .bench_fans import WECHAT_USER_AGENT
from .conftest import IN_CI, PROJECT

playwright_api = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.browser

SCREENSHOTS = PROJECT / "test-artifacts" / "screenshots"
CHROMIUM = os.environ.get("XGC_CHROMIUM", "/usr/bin/chromium")
# Without these Chromium reaches for Google's hosts, which this network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SANDBOX_FANS = {
    "first": "小鸡炖蘑菇🍄",
    "refuses": "阿强😎",
    "loses cookies": "Lily 莉莉🌸",
    "replays": "一只特别特别长昵称的测试用户🐢🐢",
}


ADMIN = ("admin", "a-long-admin-password")


@pytest.fixture(scope="module")
def xgc_server():
    """Serve xgc with the sandbox on 127.0.0.1, in a process of its own."""
    with sandbox_server(superuser=ADMIN) as base:
        yield base


@pytest.fixture(scope="module")
def browser():
    if not shutil.which(CHROMIUM):
        reason = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
        if IN_CI:
            pytest.fail(f"Chromium must be available when CI=true: {reason}")
        pytest.skip(reason)
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Phone:
    """One phone: a browser context with WeChat's user agent and a phone screen."""

    # How the context looks to pages: here a phone in WeChat.
    CONTEXT = {
        "viewport": {"width": 390, "height": 844},
        "device_scale_factor": 2,
        "is_mobile": True,
        "has_touch": True,
        "user_agent": WECHAT_USER_AGENT,
    }

    def __init__(self, browser, base: str, name: str):
        self.context = browser.new_context(base_url=base, locale="zh-CN", **self.CONTEXT)
        self.page = self.context.new_page()
        self.name = name
        self.shots = 0
        # Every page must work under xgc's Content-Security-Policy.
        self.csp_violations = []
        self.page.on(
            "console",
            lambda message: (
                "Content Security Policy" in message.text
                and self.csp_violations.append(message.text)
            ),
        )

    def shot(self, what: str) -> None:
        self.shots += 1
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=SCREENSHOTS / f"{self.name}-{self.shots:02d}-{what}.png")

    def text(self) -> str:
        return self.page.inner_text("body")

    def shows(self, text: str) -> None:
        """Wait until the page, once loaded, shows text (a few seconds at most)."""
        playwright_api.expect(self.page.locator("body")).to_contain_text(text)

    def hold_as(self, nickname: str) -> None:
        """Answer the sandbox's question: this test fan holds the phone."""
        assert "谁在使用这部手机" in self.text()
        self.shot("sandbox-choose-fan")
        self.page.get_by_role("button", name=nickname).first.click()

    def consent_and_register(self) -> None:
        assert "你还未进行信息认证" in self.text()
        self.shot("register")
        self.page.get_by_role("link", name="去认证").click()
        assert "xgc 申请获得以下权限" in self.text()
        self.shot("sandbox-consent")

    def sign_up(self, nickname: str) -> str:
        """Walk a fan from the home link through consent to their page.

        nickname is a seeded test fan's, or "新用户" for a new one; return the
        nickname the home page greets.
        """
        self.page.goto("/")
        self.hold_as(nickname)
        self.consent_and_register()
        self.page.get_by_role("button", name="允许").click()
        greeting = self.page.locator(".profile__name").inner_text()
        assert greeting.startswith("你好，")
        assert nickname in greeting or nickname == "新用户"
        return greeting.removeprefix("你好，")


@pytest.fixture
def phone(request, browser, xgc_server):
    phone = Phone(browser, xgc_server, request.node.name)
    yield phone
    phone.context.close()
    assert phone.csp_violations == []


# Stands in for WeChat's JS-SDK script, which is only on WeChat's CDN: it
# records what the page hands to wx.config and to the share API.
FAKE_JSSDK = """
window.recorded = {};
window.wx = {
  config: function (config) { window.recorded.config = config; },
  ready: function (callback) { callback(); },
  updateAppMessageShareData: function (share) { window.recorded.share = share; },
};
"""


def test_first_visit_with_consent_then_a_silent_return(phone):
    phone.page.route(
        "https://res.wx.qq.com/**",
        lambda route: route.fulfill(body=FAKE_JSSDK, content_type="text/javascript"),
    )
    nickname = SANDBOX_FANS["first"]
    phone.sign_up(nickname)
    avatar = phone.page.locator("img.profile__avatar")
    assert avatar.evaluate("image => image.complete && image.naturalWidth > 0")
    phone.shot("home")
    phone.page.wait_for_function("() => window.recorded && window.recorded.share")
    recorded = phone.page.evaluate("() => window.recorded")
    assert recorded["config"]["appId"] == SANDBOX_APP["APP_ID"]
    assert re.fullmatch(r"[0-9a-f]{40}", recorded["config"]["signature"])
    assert recorded["config"]["jsApiList"] == ["updateAppMessageShareData"]
    assert recorded["share"]["title"] == f"{nickname}的主页"
    assert recorded["share"]["link"] == phone.page.url.split("#")[0]

    phone.context.clear_cookies(name="fanid")
    pages_shown = []
    phone.page.on("load", lambda page: pages_shown.append(urlsplit(page.url).path))
    phone.page.goto("/")
    assert f"你好，{nickname}" in phone.text()
    assert pages_shown == ["/"]  # every other hop was a redirect
    phone.shot("home-again")


def test_a_fan_who_refuses_sees_a_friendly_page(phone):
    phone.page.goto("/")
    phone.hold_as(SANDBOX_FANS["refuses"])
    phone.consent_and_register()
    phone.page.get_by_role("button", name="拒绝").click()
    assert "你已取消授权" in phone.text()
    assert urlsplit(phone.page.url).path == "/wechat/authorize/"
    phone.shot("refused")


def test_cookies_lost_during_consent_restart_the_flow_silently(phone):
    phone.page.goto("/wechat/login/?scope=snsapi_userinfo")
    phone.hold_as(SANDBOX_FANS["loses cookies"])
    assert "xgc 申请获得以下权限" in phone.text()
    phone.context.clear_cookies(name="wechat_flow")
    phone.page.get_by_role("button", name="允许").click()
    # The callback could not be tied to this browser: one silent restart.
    assert "你还未进行信息认证" in phone.text()
    assert "登录未完成" not in phone.text()
    phone.shot("register-after-restart")


def test_a_code_used_elsewhere_restarts_once_and_signs_in(phone, xgc_server):
    nickname = SANDBOX_FANS["replays"]
    phone.sign_up(nickname)
    phone.context.clear_cookies(name="fanid")

    # Consent again, but let someone else exchange the code first, as a
    # double redirect or a shared link would.
    phone.page.goto("/wechat/login/?scope=snsapi_userinfo")
    burnt = []

    def use_the_code_first(route):
        answer = route.fetch(max_redirects=0)
        callback = answer.headers["location"]
        code = parse_qs(urlsplit(callback).query)["code"][0]
        burnt.append(exchange(xgc_server, code))
        route.fulfill(response=answer)

    phone.page.route(re.compile(r"/sandbox/connect/oauth2/authorize\?"), use_the_code_first)
    phone.page.get_by_role("button", name="允许").click()
    assert "access_token" in burnt[0]
    # xgc got 40163, restarted once with snsapi_base, and signed the fan in.
    assert f"你好，{nickname}" in phone.text()
    phone.shot("home-after-replayed-code")


def exchange(base: str, code: str) -> dict:
    """Exchange a code at the sandbox directly, as a second party would."""
    answer = requests.get(
        f"{base}/sandbox/sns/oauth2/access_token",
        params={
            "appid": SANDBOX_APP["APP_ID"],
            "secret": SANDBOX_APP["APP_SECRET"],
            "code": code,
            "grant_type": "authorization_code",
        },
        timeout=10,
    )
    return answer.json()


def test_an_admin_signs_in_and_browses_fans(phone):
    nickname = phone.sign_up("新用户")
    phone.page.goto("/admin/")
    phone.page.fill("#id_username", ADMIN[0])
    phone.page.fill("#id_password", ADMIN[1])
    phone.page.get_by_role("button", name="登录").click()
    phone.page.goto("/admin/fans/fansprofile/")
    assert nickname in phone.text()
    avatar = phone.page.locator("#result_list img").first
    assert avatar.evaluate("image => image.complete && image.naturalWidth > 0")
    phone.shot("admin-fans")


def sign_in_to_admin(page) -> None:
    page.goto("/admin/")
    page.fill("#id_username", ADMIN[0])
    page.fill("#id_password", ADMIN[1])
    page.get_by_role("button", name="登录").click()


def test_a_fan_applies_from_the_menu_and_hears_the_organisers_answer(browser, xgc_server):
    """Menu link → activities → apply (a typo, then fixed) → my applications;
    the organiser approves in admin; the phone's 服务通知 shows the message."""
    organiser = DesktopBrowser(browser, xgc_server, "organiser")
    fan = Phone(browser, xgc_server, "applicant")
    try:
        sign_in_to_admin(organiser.page)
        organiser.page.goto("/admin/activities/activity/add/")
        organiser.page.fill("#id_title", "周末读书会")
        organiser.page.fill("#id_description", "一起读书。\n带一本你喜欢的书。")
        organiser.page.fill("#id_location", "图书馆三楼")
        organiser.page.fill("#id_capacity", "10")
        organiser.page.check("#id_published")
        organiser.shot("admin-add-activity")
        organiser.page.get_by_role("button", name="保存", exact=True).click()
        organiser.shows("成功添加了 活动“周末读书会”")

        # The menu's 申请活动 button: sign in, then the activities.
        fan.page.goto("/wechat/login/?next=/activities/")
        fan.hold_as("新用户（第一次使用本公众号）")
        fan.consent_and_register()
        fan.page.get_by_role("button", name="允许").click()
        assert urlsplit(fan.page.url).path == "/activities/"
        fan.shot("activities")
        fan.page.get_by_role("link", name=re.compile("周末读书会")).click()
        assert "图书馆三楼" in fan.text()
        fan.shot("activity")
        fan.page.get_by_role("link", name="申请参加").click()
        fan.page.fill("#id_name", "张三")
        fan.page.fill("#id_phone", "138 1234 567")
        fan.page.fill("#id_note", "带一本《红楼梦》")
        fan.page.get_by_role("button", name="提交申请").click()
        # The typo is named, and everything typed is still there.
        fan.shows("手机号")
        assert "手机号" in fan.page.locator(".field--invalid").inner_text()
        assert fan.page.input_value("#id_name") == "张三"
        assert fan.page.input_value("#id_note") == "带一本《红楼梦》"
        fan.shot("apply-typo")
        fan.page.fill("#id_phone", "+86 138 1234 5678")
        fan.page.get_by_role("button", name="提交申请").click()
        fan.shows("待审核")
        assert re.fullmatch(r"/applications/\d+/", urlsplit(fan.page.url).path)
        assert "13812345678" in fan.text()
        fan.shot("application-pending")
        fan.page.goto("/applications/")
        assert "周末读书会" in fan.text() and "待审核" in fan.text()
        fan.shot("my-applications")

        organiser.page.goto("/admin/activities/application/")
        assert "张三" in organiser.text()
        organiser.page.locator("#result_list input.action-select").first.check()
        organiser.page.select_option("select[name=action]", "approve")
        organiser.page.get_by_role("button", name="执行").click()
        organiser.shows("1 份申请改为已通过")
        organiser.shot("admin-approved")

        def message_arrived() -> bool:
            fan.page.goto("/sandbox/messages")
            return "已通过" in fan.text()

        # The worker beside the server sends it; the phone's page shows it.
        wait_until(message_arrived, what="the template message", seconds=30)
        assert "周末读书会" in fan.text() and "已推送" in fan.text()
        fan.shot("service-notice")
        fan.page.get_by_role("link", name="详情").click()
        fan.shows("已通过")
        assert re.fullmatch(r"/applications/\d+/", urlsplit(fan.page.url).path)
        assert "已通过" in fan.text()
        fan.shot("application-approved")

        organiser.page.goto("/admin/activities/application/")
        assert "已送达" in organiser.text()
        organiser.shot("admin-delivered")
    finally:
        organiser.context.close()
        fan.context.close()
    assert organiser.csp_violations == [] and fan.csp_violations == []


# Photos in the application form: WeChat's picker through the sandbox's
# stand-in for the JS-SDK, or the file input anywhere else.


class DesktopBrowser(Phone):
    """A browser outside WeChat: Chromium's own user agent, a laptop's screen."""

    CONTEXT = {"viewport": {"width": 1280, "height": 900}}


def publish_activity(browser, base: str, title: str) -> None:
    """Add a published activity through the admin, as an organiser does."""
    organiser = DesktopBrowser(browser, base, f"organiser-{title}")
    try:
        sign_in_to_admin(organiser.page)
        organiser.page.goto("/admin/activities/activity/add/")
        organiser.page.fill("#id_title", title)
        organiser.page.fill("#id_description", "带上照片。")
        organiser.page.fill("#id_location", "操场")
        organiser.page.fill("#id_capacity", "10")
        organiser.page.check("#id_published")
        organiser.page.get_by_role("button", name="保存", exact=True).click()
        organiser.shows(f"成功添加了 活动“{title}”")
    finally:
        organiser.context.close()
    assert organiser.csp_violations == []


def open_apply_page(fan: Phone, title: str) -> None:
    """Sign a new test fan in from the menu link and open the activity's form."""
    fan.page.goto("/wechat/login/?next=/activities/")
    fan.hold_as("新用户（第一次使用本公众号）")
    fan.consent_and_register()
    fan.page.get_by_role("button", name="允许").click()
    fan.page.get_by_role("link", name=re.compile(title)).click()
    fan.page.get_by_role("link", name="申请参加").click()
    fan.shows("照片")


@pytest.fixture
def photo_files(tmp_path):
    """Two small JPEG files of different colours; return their paths."""
    from PIL import Image

    paths = []
    for number, colour in enumerate(["#07c160", "#fa9d3b"], 1):
        path = tmp_path / f"photo-{number}.jpg"
        Image.new("RGB", (640, 480), colour).save(path, "JPEG", quality=90)
        paths.append(path)
    return paths


def sandbox_media(base: str, media_id: str) -> requests.Response:
    """Fetch a media id from the sandbox's cgi-bin/media/get, as xgc's server does."""
    token = requests.post(
        f"{base}/sandbox/cgi-bin/stable_token",
        json={
            "grant_type": "client_credential",
            "appid": SANDBOX_APP["APP_ID"],
            "secret": SANDBOX_APP["APP_SECRET"],
        },
        timeout=10,
    ).json()["access_token"]
    return requests.get(
        f"{base}/sandbox/cgi-bin/media/get",
        params={"access_token": token, "media_id": media_id},
        timeout=10,
    )


def shown_thumbnails(page) -> int:
    return page.evaluate(
        """() => Array.from(document.querySelectorAll(".photo-picker__thumb")).filter(
            (image) => image.src.startsWith("data:image/") && image.naturalWidth > 0
        ).length"""
    )


def test_in_wechat_photos_are_chosen_and_uploaded_one_at_a_time(
    browser, phone, xgc_server, photo_files
):
    """wx.config passes the sandbox's check; two photos chosen in WeChat's picker
    show as previews and come back from media/get as the same bytes."""
    sdk_messages = []
    phone.page.on(
        "console",
        lambda message: "Sandbox JS-SDK" in message.text and sdk_messages.append(message.text),
    )
    publish_activity(browser, xgc_server, "拍照打卡")
    open_apply_page(phone, "拍照打卡")
    choose = phone.page.get_by_role("button", name="选择照片")
    playwright_api.expect(choose).to_be_visible()
    playwright_api.expect(phone.page.locator("input[name=photos]")).to_be_hidden()
    phone.shot("apply-in-wechat")

    with phone.page.expect_file_chooser() as chooser:
        choose.click()
    chooser.value.set_files(photo_files)
    media_ids = phone.page.locator("input[type=hidden][name=media_id]")
    playwright_api.expect(media_ids).to_have_count(2)
    wait_until(lambda: shown_thumbnails(phone.page) == 2, what="two previews", seconds=10)
    phone.shows("照片已上传")
    phone.shot("photos-chosen-in-wechat")

    sent = {path.read_bytes() for path in photo_files}
    for media_id in media_ids.evaluate_all("fields => fields.map((field) => field.value)"):
        answer = sandbox_media(xgc_server, media_id)
        assert answer.headers["Content-Type"] == "image/jpeg"
        assert answer.content in sent
        sent.discard(answer.content)
    assert sent == set()

    # Sent while a slow WeChat still uploads: the form waits, then goes.
    phone.page.fill("#id_name", "王五")
    phone.page.fill("#id_phone", "13812345678")
    set_latency(xgc_server, 400)
    try:
        with phone.page.expect_file_chooser() as chooser:
            choose.click()
        chooser.value.set_files(photo_files[:1])
        playwright_api.expect(phone.page.locator(".photo-picker__item--waiting")).to_have_count(1)
        phone.page.get_by_role("button", name="提交申请").click()
        phone.shows("照片上传完后自动提交")
        phone.shot("submitted-while-uploading")
        phone.shows("待审核")
    finally:
        set_latency(xgc_server, 0)
    assert re.fullmatch(r"/applications/\d+/", urlsplit(phone.page.url).path)
    # The photo sent again is the same bytes: stored once.
    wait_until(lambda: stored_thumbnails(phone.page) == 2, what="the thumbnails", seconds=10)
    phone.shot("application-with-wechat-photos")
    # No wx.config failure, and never two uploads at once.
    assert sdk_messages == []


def stored_thumbnails(page) -> int:
    """Count the application page's photo thumbnails that loaded from xgc."""
    return page.evaluate(
        """() => Array.from(document.querySelectorAll("img.photos__thumbnail")).filter(
            (image) => image.complete && image.naturalWidth > 0
        ).length"""
    )


def set_latency(base: str, latency_ms: int) -> None:
    requests.post(
        f"{base}/sandbox/faults", {"latency_ms": latency_ms}, timeout=10
    ).raise_for_status()


def test_outside_wechat_the_file_input_sends_photos_with_a_progress_bar(
    browser, xgc_server, photo_files
):
    """No MicroMessenger: the file input is the picker, previews show, and a
    form with files goes by XMLHttpRequest: the form comes back with its
    errors, then the application page opens."""
    publish_activity(browser, xgc_server, "户外写生")
    fan = DesktopBrowser(browser, xgc_server, "photos-outside-wechat")
    try:
        open_apply_page(fan, "户外写生")
        photos = fan.page.locator("input[name=photos]")
        playwright_api.expect(photos).to_be_visible()
        playwright_api.expect(fan.page.get_by_role("button", name="选择照片")).to_be_hidden()
        progress = fan.page.locator("progress.photo-picker__progress")
        assert progress.count() == 1 and progress.is_hidden()
        fan.shot("apply-outside-wechat")

        photos.set_input_files(photo_files)
        wait_until(lambda: shown_thumbnails(fan.page) == 2, what="two previews", seconds=10)
        fan.shows("已选 2 张照片")
        fan.shot("photos-chosen")

        # A typo: the form comes back, in place, with the error and what was typed.
        fan.page.fill("#id_name", "李四")
        fan.page.fill("#id_phone", "138")
        fan.page.get_by_role("button", name="提交申请").click()
        playwright_api.expect(fan.page.locator(".field--invalid")).to_contain_text("手机号")
        assert fan.page.input_value("#id_name") == "李四"
        fan.shot("apply-typo-with-photos")

        # The page that came back works: previews again, then the upload.
        fan.page.locator("input[name=photos]").set_input_files(photo_files)
        wait_until(lambda: shown_thumbnails(fan.page) == 2, what="two previews", seconds=10)
        # The progress bar's last state survives the navigation in sessionStorage.
        fan.page.evaluate(
            """() => {
              const bar = document.querySelector("progress.photo-picker__progress");
              new MutationObserver(() => sessionStorage.setItem(
                "progress", JSON.stringify([bar.hidden, bar.value, bar.max])
              )).observe(bar, {attributes: true});
            }"""
        )
        fan.page.fill("#id_phone", "13812345678")
        fan.page.get_by_role("button", name="提交申请").click()
        fan.shows("待审核")
        assert re.fullmatch(r"/applications/\d+/", urlsplit(fan.page.url).path)
        hidden, value, total = fan.page.evaluate(
            "() => JSON.parse(sessionStorage.getItem('progress'))"
        )
        assert not hidden and total > sum(path.stat().st_size for path in photo_files)
        assert value == total
        wait_until(lambda: stored_thumbnails(fan.page) == 2, what="the thumbnails", seconds=10)
        fan.shot("application-with-photos")
        application_path = urlsplit(fan.page.url).path
    finally:
        fan.context.close()
    assert fan.csp_violations == []

    # The organiser sees the thumbnails in the admin, each opening its display copy.
    organiser = DesktopBrowser(browser, xgc_server, "organiser-photos")
    try:
        sign_in_to_admin(organiser.page)
        application_id = application_path.strip("/").split("/")[-1]
        organiser.page.goto(f"/admin/activities/application/{application_id}/change/")
        thumbnails = organiser.page.locator("img[src*='/thumbnail/']")
        playwright_api.expect(thumbnails).to_have_count(2)
        wait_until(
            lambda: thumbnails.evaluate_all("images => images.every((i) => i.naturalWidth > 0)"),
            what="the admin's thumbnails",
            seconds=10,
        )
        organiser.shot("admin-application-photos")
        with organiser.context.expect_page() as opened:
            organiser.page.locator("a[href*='/display/']").first.click()
        display = opened.value
        display.wait_for_load_state()
        assert display.evaluate("() => document.contentType") == "image/jpeg"
        assert display.evaluate("() => document.images[0].naturalWidth") == 640
    finally:
        organiser.context.close()
    assert organiser.csp_violations == []


def test_in_wechat_a_refused_signature_leaves_the_file_input(browser, phone, xgc_server):
    """wx.config fails (the sandbox checks the signature): fans keep the file input."""

    def wrong_signature(route):
        answer = route.fetch()
        route.fulfill(response=answer, json=answer.json() | {"signature": "0" * 40})

    phone.page.route(re.compile(r"/wechat/jssdk/config\?"), wrong_signature)
    publish_activity(browser, xgc_server, "签名出错")
    # Silent for fans; in sandbox mode photos.js says why on the console.
    with phone.page.expect_console_message(
        lambda message: "WeChat's picker is off (config:invalid signature)" in message.text
    ):
        open_apply_page(phone, "签名出错")
    playwright_api.expect(phone.page.locator("input[name=photos]")).to_be_visible()
    playwright_api.expect(phone.page.get_by_role("button", name="选择照片")).to_be_hidden()
    phone.shot("apply-after-config-failed")


# First impressions: the icon, a clean address after signing in, and the page
# a browser outside WeChat gets.

# Browsers fetch the icon on their own, out of the page's sight (no request


def page_icon(browser, base: str, path: str) -> dict:
    """Open path in a fresh browser; fetch the icon as the browser would find it.

    Chromium's own favicon fetch is invisible to Playwright, so the page asks
    for what its <link rel="icon"> names, or /favicon.ico where it has none.
    """
    visitor = DesktopBrowser(browser, base, "icon")
    try:
        visitor.page.goto(path)
        icon = visitor.page.evaluate(
            """async () => {
              const link = document.querySelector("link[rel=icon]");
              const answer = await fetch(link ? link.href : "/favicon.ico");
              return {linked: Boolean(link), status: answer.status,
                      type: answer.headers.get("Content-Type")};
            }"""
        )
    finally:
        visitor.context.close()
    assert visitor.csp_violations == []
    return icon


@pytest.mark.parametrize(
    ("path", "linked"), [("/wechat/login/?scope=bad", True), ("/admin/login/", False)]
)
def test_pages_and_the_admin_have_an_icon(browser, xgc_server, path, linked):
    """xgc's pages link the icon; the admin's leave the browser to ask for /favicon.ico."""
    assert page_icon(browser, xgc_server, path) == {
        "linked": linked,
        "status": 200,
        "type": "image/svg+xml",
    }


def test_after_signing_in_the_address_has_no_wechat_fragment(phone):
    """WeChat's #wechat_redirect rides along the redirects; the page drops it."""
    phone.page.goto("/")
    phone.hold_as("新用户（第一次使用本公众号）")
    phone.consent_and_register()
    phone.page.get_by_role("button", name="允许").click()
    phone.shows("第一次见面")
    phone.context.clear_cookies(name="fanid")
    phone.page.goto("/activities/?from=menu")
    phone.shows("活动")
    playwright_api.expect(phone.page).to_have_url(re.compile(r"/activities/\?from=menu$"))
    assert urlsplit(phone.page.url).fragment == ""


@pytest.fixture(scope="module")
def xgc_without_sandbox():
    """Serve xgc as for real WeChat: the sandbox off, DEBUG on, on 127.0.0.1."""
    with sandbox_server(WECHAT_SANDBOX="0") as base:
        yield base


class PhoneBrowser(Phone):
    """A phone's own browser (Safari on an iPhone): a phone, but not WeChat."""

    CONTEXT = Phone.CONTEXT | {
        "user_agent": (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
        )
    }


@pytest.mark.parametrize("kind", [DesktopBrowser, PhoneBrowser])
def test_outside_wechat_the_menu_link_shows_its_own_qr_code(browser, xgc_without_sandbox, kind):
    """The QR code on the screen reads back as the very link that was opened."""
    from PIL import Image
    from zxingcpp import read_barcodes

    visitor = kind(browser, xgc_without_sandbox, f"open-in-wechat-{kind.__name__}")
    link = f"{xgc_without_sandbox}/wechat/login/?next=/activities/"
    try:
        visitor.page.goto(link)
        visitor.shows("请在微信中打开")
        assert visitor.page.url == link  # no redirect to WeChat
        assert visitor.context.cookies() == []
        assert visitor.page.locator(".open-in-wechat__link").inner_text() == link
        visitor.shot("open-in-wechat")
        shot = visitor.page.locator("svg.open-in-wechat__code").screenshot()
        (barcode,) = read_barcodes(Image.open(io.BytesIO(shot)))
        assert barcode.text == link
    finally:
        visitor.context.close()
    assert visitor.csp_violations == []
