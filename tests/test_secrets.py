"""The app secret and every token stay out of logs and pages, DEBUG on or off."""

import logging
import re

import pytest

from xgc.sandbox import credentials
from xgc.sandbox.models import JsapiTicket, PlatformToken

from .test_sandbox_flow import browse, sandboxed  # noqa: F401  (a fixture)


class Recorder(logging.Handler):
    """Keeps every log line that the configured loggers let through."""

    def __init__(self):
        super().__init__()
        self.lines = []

    def emit(self, record):
        self.lines.append(self.format(record))


@pytest.fixture
def log_lines():
    recorder = Recorder()
    recorder.setFormatter(logging.Formatter("%(name)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(recorder)
    yield recorder.lines
    root.removeHandler(recorder)


@pytest.fixture
def issued_grants(monkeypatch):
    """Record every OAuth grant the sandbox issues, as they live in its cache only."""
    grants = []
    save_grant = credentials.save_grant

    def recording(*args):
        grants.append(save_grant(*args))
        return grants[-1]

    monkeypatch.setattr(credentials, "save_grant", recording)
    return grants


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.django_db(transaction=True)
def test_no_secret_in_any_log_line_or_page(
    client,
    sandboxed,  # noqa: F811
    settings,
    log_lines,
    issued_grants,
    debug,
):
    settings.DEBUG = debug
    pages = []

    def visit(url, method="get", data=None):
        response, _ = browse(client, url, method, data)
        pages.append(response.content.decode())
        return response

    chooser = visit("/")
    register = visit(chooser.wsgi_request.get_full_path(), "post", {"openid": "new"})
    register_url = re.search(r'href="([^"]+)">去认证', register.content.decode()).group(1)
    consent = visit(register_url.replace("&amp;", "&"))
    visit(consent.wsgi_request.get_full_path(), "post", {"decision": "allow"})
    visit(f"/wechat/jssdk/config?url={sandboxed.url}/")
    # A replayed callback: the code was used, the state spent.
    visit("/wechat/authorize/?code=used&state=spent")
    visit("/wechat/authorize/?code=used&state=spent&restarted=1")

    secrets = {"APP_SECRET": settings.APP_SECRET}
    for number, grant in enumerate(issued_grants):
        secrets[f"access_token {number}"] = grant.access_token
        secrets[f"refresh_token {number}"] = grant.refresh_token
    secrets |= {f"platform token {t.pk}": t.access_token for t in PlatformToken.objects.all()}
    secrets |= {f"jsapi_ticket {t.pk}": t.ticket for t in JsapiTicket.objects.all()}
    assert len(secrets) >= 5  # the flow really issued tokens and a ticket
    assert any("sign-in outcome=signed_in" in line for line in log_lines)
    for name, secret in secrets.items():
        assert not [line for line in log_lines if secret in line], f"{name} logged"
        assert not [page for page in pages if secret in page], f"{name} shown"


def test_a_fans_name_and_phone_stay_out_of_every_log_line(
    client, admin_client, make_fan, make_activity, log_lines, settings, wechat_api
):
    """Apply with a typo, apply, get approved and messaged, be exported: no log line has them."""
    from activities.models import Application
    from activities.notifications import deliver

    from .conftest import API, sign_in

    settings.WECHAT_TEMPLATE_APPLICATION_RESULT = "tmplApplicationResult"
    wechat_api.post(API + "/cgi-bin/stable_token", json={"access_token": "T", "expires_in": 7200})
    wechat_api.post(
        API + "/cgi-bin/message/template/send", json={"errcode": 0, "errmsg": "ok", "msgid": 1}
    )
    activity = make_activity()
    sign_in(client, make_fan())
    form = {"name": "隐私测试名", "phone": "139 8765 4321", "note": "备注里的私事"}
    client.post(f"/activities/{activity.pk}/apply/", form | {"phone": "139"})
    client.post(f"/activities/{activity.pk}/apply/", form)
    application = Application.objects.get()
    admin_client.post(
        "/admin/activities/application/",
        {"action": "approve", "_selected_action": [application.pk]},
    )
    deliver(application.notifications.get().pk)
    admin_client.post(
        "/admin/activities/application/",
        {"action": "export_csv", "_selected_action": [application.pk]},
    )
    assert any("exported" in line for line in log_lines)
    assert any("sent (msgid" in line for line in log_lines)
    for private in ("隐私测试名", "13987654321", "139 8765 4321", "备注里的私事"):
        assert [line for line in log_lines if private in line] == []
