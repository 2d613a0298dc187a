"""The sandbox answers as WeChat does where another client (wechatpy) looks.

Menu shape, wrong HTTP methods and unknown API paths; the rest of the
sandbox's API is in test_sandbox.py.
"""

import json
import re

import pytest

from django.urls.resolvers import RoutePattern, URLPattern

from xgc.sandbox import stats, urls
from xgc.sandbox.api import CGI_CONTENT_TYPE, SNS_CONTENT_TYPE
from xgc.sandbox.models import Menu

from .test_sandbox import api_get, platform_token

pytestmark = pytest.mark.django_db

RID = r" rid: [0-9a-f]{24}"
METHOD_ERRORS = {
    (43001, "require GET method"),
    (43002, "require POST method"),
}
API_ROUTES = sorted(stats.api_routes())
CONTENT_TYPES = {SNS_CONTENT_TYPE, CGI_CONTENT_TYPE}


def answer(response) -> dict:
    """Return a WeChat-style answer: HTTP 200 JSON, labelled as the sandbox's are."""
    assert response.status_code == 200
    # /sns/* is always text/plain; cgi-bin/media/get's errors are too.
    sns = response.wsgi_request.path.startswith("/sandbox/sns/")
    assert response["Content-Type"] in ({SNS_CONTENT_TYPE} if sns else CONTENT_TYPES)
    return json.loads(response.content.decode("utf-8"))


def method_error(data: dict) -> tuple[int, str] | None:
    """Return (errcode, errmsg without its rid) if data refuses the HTTP method."""
    errmsg = re.fullmatch(rf"(.*){RID}", str(data.get("errmsg", "")))
    found = (data.get("errcode"), errmsg and errmsg.group(1))
    return found if found in METHOD_ERRORS else None


# menu/get


def test_menu_get_gives_every_leaf_button_an_empty_sub_button_list(client):
    """Leaf buttons, top-level and nested, come back with "sub_button": []."""
    token = platform_token(client)
    menu = [
        {"type": "view", "name": "申请活动", "url": "https://xgc.example.com/"},
        {
            "name": "我的",
            "sub_button": [
                {"type": "view", "name": "主页", "url": "https://xgc.example.com/me/"},
                {"type": "click", "name": "客服", "key": "HELP"},
            ],
        },
        {"type": "click", "name": "关于", "key": "ABOUT"},
    ]
    body = json.dumps({"button": menu}, ensure_ascii=False).encode()
    created = client.post(
        f"/sandbox/cgi-bin/menu/create?access_token={token}", body, content_type="application/json"
    )
    assert json.loads(created.content) == {"errcode": 0, "errmsg": "ok"}

    assert api_get(client, "/cgi-bin/menu/get", access_token=token) == {
        "menu": {
            "button": [
                {
                    "type": "view",
                    "name": "申请活动",
                    "url": "https://xgc.example.com/",
                    "sub_button": [],
                },
                {
                    "name": "我的",
                    "sub_button": [
                        {
                            "type": "view",
                            "name": "主页",
                            "url": "https://xgc.example.com/me/",
                            "sub_button": [],
                        },
                        {"type": "click", "name": "客服", "key": "HELP", "sub_button": []},
                    ],
                },
                {"type": "click", "name": "关于", "key": "ABOUT", "sub_button": []},
            ]
        }
    }
    # What create stored is what it validated: the shape is menu/get's only.
    assert Menu.objects.get().button == menu


# Wrong HTTP methods


def test_post_to_menu_get_answers_43001_as_json(client):
    data = answer(client.post(f"/sandbox/cgi-bin/menu/get?access_token={platform_token(client)}"))
    assert method_error(data) == (43001, "require GET method")


@pytest.mark.parametrize(
    "route", ["cgi-bin/menu/create", "cgi-bin/stable_token", "cgi-bin/message/template/send"]
)
def test_get_to_a_post_api_answers_43002_as_json(client, route):
    data = answer(client.get(f"/sandbox/{route}", {"access_token": platform_token(client)}))
    assert method_error(data) == (43002, "require POST method")


@pytest.mark.parametrize("route", API_ROUTES)
def test_every_api_route_refuses_the_wrong_method_as_wechat_does(client, route):
    """Exactly one of GET and POST is refused in-band; any other method too."""
    by_get = method_error(answer(client.get(f"/sandbox/{route}")))
    by_post = method_error(answer(client.post(f"/sandbox/{route}")))
    assert (by_get is None) != (by_post is None), (by_get, by_post)
    refusal = by_get or by_post
    assert refusal == ((43002, "require POST method") if by_get else (43001, "require GET method"))
    assert method_error(answer(client.put(f"/sandbox/{route}"))) == refusal


@pytest.mark.parametrize("route", API_ROUTES)
def test_faults_still_apply_to_every_api_route(client, route):
    client.post("/sandbox/faults", {"error_share": "1"})
    for response in (client.get(f"/sandbox/{route}"), client.post(f"/sandbox/{route}")):
        assert answer(response)["errcode"] == -1


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/sandbox/stats", "put"),
        ("/sandbox/faults", "put"),
        ("/sandbox/phone", "put"),
        ("/sandbox/messages", "put"),
        ("/sandbox/jweixin.js", "post"),
        ("/sandbox/jssdk/preverify", "get"),
        ("/sandbox/jssdk/upload_image", "get"),
    ],
)
def test_the_sandboxs_own_pages_keep_djangos_405(client, path, method):
    assert getattr(client, method)(path).status_code == 405


# Unknown paths


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/sandbox/cgi-bin/nope", CGI_CONTENT_TYPE),
        ("/sandbox/cgi-bin/menu/get/extra", CGI_CONTENT_TYPE),
        ("/sandbox/sns/nope", SNS_CONTENT_TYPE),
    ],
)
def test_an_unknown_api_path_answers_json_with_an_errcode(client, path, content_type):
    for response in (client.get(path), client.post(path)):
        assert response["Content-Type"] == content_type
        data = answer(response)
        assert data["errcode"] == 48001
        assert re.fullmatch(rf"api unauthorized{RID}", data["errmsg"])


def test_other_unknown_sandbox_paths_keep_djangos_404(client):
    assert client.get("/sandbox/nope").status_code == 404
    assert client.get("/sandbox/connect/nope").status_code == 404


def test_api_routes_lists_exactly_the_api_endpoints(client):
    """The catch-all for unknown paths is not an endpoint, and is not counted."""
    api_paths = {
        str(pattern.pattern)
        for pattern in urls.urlpatterns
        if isinstance(pattern, URLPattern)
        and isinstance(pattern.pattern, RoutePattern)
        and str(pattern.pattern).startswith(("cgi-bin/", "sns/"))
    }
    assert set(stats.api_routes()) == api_paths
    assert len(api_paths) == 12
    client.get("/sandbox/cgi-bin/nope")
    calls = client.get("/sandbox/stats").json()["calls"]
    assert set(calls) == api_paths
    assert not any(calls.values())
