"""``manage.py wechat_menu``: check locally, expand {login}, send raw UTF-8."""

import json
from io import StringIO
from urllib.parse import urlsplit

import pytest

from django.core.management import CommandError, call_command

from xgc.sandbox.models import Menu

from .conftest import API, PROJECT

EXAMPLE = PROJECT / "menu.example.json"


@pytest.fixture
def platform_token(wechat_api):
    wechat_api.post(
        API + "/cgi-bin/stable_token", json={"access_token": "TOKEN", "expires_in": 7200}
    )


def menu_command(*args: str) -> str:
    out = StringIO()
    call_command("wechat_menu", *args, stdout=out)
    return out.getvalue()


def write_menu(tmp_path, buttons) -> str:
    path = tmp_path / "menu.json"
    path.write_text(json.dumps({"button": buttons}, ensure_ascii=False), encoding="utf-8")
    return str(path)


def test_push_expands_login_links_and_sends_raw_utf8(wechat_api, platform_token):
    create = wechat_api.post(API + "/cgi-bin/menu/create", json={"errcode": 0, "errmsg": "ok"})
    output = menu_command("push", str(EXAMPLE))
    body = create.calls[0].request.body
    sent = json.loads(body)
    assert "access_token=TOKEN" in create.calls[0].request.url
    assert "申请活动".encode() in body and b"\\u" not in body
    assert sent["button"][0] == {
        "type": "view",
        "name": "申请活动",
        "url": "https://xgc.example.com/wechat/login/?next=%2Factivities%2F",
    }
    assert sent["button"][1]["sub_button"][0]["url"] == (
        "https://xgc.example.com/wechat/login/?next=%2F"
    )
    assert "申请活动 [view] https://xgc.example.com/wechat/login/?next=%2Factivities%2F" in output


def test_a_login_placeholder_with_a_path_keeps_it_as_next(wechat_api, platform_token, tmp_path):
    create = wechat_api.post(API + "/cgi-bin/menu/create", json={"errcode": 0, "errmsg": "ok"})
    path = write_menu(tmp_path, [{"type": "view", "name": "订单", "url": "{login:/orders/?tab=2}"}])
    menu_command("push", path)
    sent = json.loads(create.calls[0].request.body)
    assert sent["button"][0]["url"] == (
        "https://xgc.example.com/wechat/login/?next=%2Forders%2F%3Ftab%3D2"
    )


@pytest.mark.parametrize(
    ("buttons", "reason"),
    [
        ([], "a menu has 1 to 3 buttons"),
        ([{"type": "click", "name": "a", "key": "k"}] * 4, "a menu has 1 to 3 buttons"),
        (
            [{"type": "view", "name": "这个名字超过十六个字节"}],
            "button 1: name of 33 bytes, not 1-16",
        ),
        ([{"type": "view", "name": "看"}], "button 1: a view button needs a url"),
        (
            [{"name": "更多", "sub_button": [{"name": "x", "key": "k"}] * 6}],
            "button 1: 1 to 5 sub-buttons",
        ),
        ([{"name": "更多", "sub_button": [{"name": "x"}]}], "button 1.1: no type"),
    ],
)
def test_push_refuses_a_menu_wechat_would_refuse_without_calling_it(
    wechat_api, tmp_path, buttons, reason
):
    with pytest.raises(CommandError, match="breaks WeChat's menu rules") as raised:
        menu_command("push", write_menu(tmp_path, buttons))
    assert reason in str(raised.value)
    assert len(wechat_api.calls) == 0


def test_push_explains_an_unreadable_file(tmp_path):
    (tmp_path / "menu.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(CommandError, match="cannot read"):
        menu_command("push", str(tmp_path / "menu.json"))


def test_show_prints_the_menu_as_a_tree(wechat_api, platform_token):
    menu = {
        "button": [
            {"name": "我的", "sub_button": [{"type": "view", "name": "主页", "url": "https://x/"}]}
        ]
    }
    wechat_api.get(API + "/cgi-bin/menu/get", json={"menu": menu})
    assert menu_command("show") == "我的 [menu]\n  └ 主页 [view] https://x/\n"


def test_show_without_a_menu(wechat_api, platform_token):
    wechat_api.get(API + "/cgi-bin/menu/get", json={"errcode": 46003, "errmsg": "menu no exist"})
    assert menu_command("show") == "No menu is published.\n"


def test_delete(wechat_api, platform_token):
    delete = wechat_api.get(API + "/cgi-bin/menu/delete", json={"errcode": 0, "errmsg": "ok"})
    assert menu_command("delete") == "Menu deleted.\n"
    assert delete.call_count == 1


def test_a_wechat_error_is_a_command_error(wechat_api, platform_token):
    wechat_api.get(
        API + "/cgi-bin/menu/delete", json={"errcode": 48001, "errmsg": "api unauthorized"}
    )
    with pytest.raises(CommandError, match="WeChat error 48001"):
        menu_command("delete")


@pytest.mark.django_db(transaction=True)
def test_the_example_menu_is_accepted_by_the_sandbox(live_server, settings):
    settings.WECHAT_API_BASE_URL = f"{live_server.url}/sandbox"
    settings.REDIRECT_URL = f"{live_server.url}/wechat/authorize/"
    menu_command("push", str(EXAMPLE))
    published = Menu.objects.get().button
    assert published[0]["name"] == "申请活动"
    assert urlsplit(published[0]["url"]).path == "/wechat/login/"
    assert urlsplit(published[0]["url"]).query == "next=%2Factivities%2F"
    assert "申请活动 [view]" in menu_command("show")
