"""Django admin: admins browse fans; WeChat's data is read-only."""

import pytest

from fans.models import FansProfile

from .conftest import userinfo_answer

pytestmark = pytest.mark.django_db


@pytest.fixture
def fans():
    return [
        FansProfile.create_fan(userinfo_answer("oFAN1", nickname="小鸡炖蘑菇🍄", unionid="oU1")),
        FansProfile.create_fan(userinfo_answer("oFAN2", nickname="大白菜", headimgurl="")),
    ]


def test_changelist_shows_avatar_nickname_and_openid(admin_client, fans):
    body = admin_client.get("/admin/fans/fansprofile/").content.decode()
    assert 'src="https://thirdwx.qlogo.cn/mmopen/vi_32/avatar/132"' in body
    assert "小鸡炖蘑菇🍄" in body and "大白菜" in body
    assert "oFAN1" in body and "oFAN2" in body


@pytest.mark.parametrize("term", ["蘑菇", "oFAN1", "oU1"])
def test_search_by_nickname_openid_or_unionid(admin_client, fans, term):
    body = admin_client.get("/admin/fans/fansprofile/", {"q": term}).content.decode()
    assert "小鸡炖蘑菇🍄" in body
    assert "大白菜" not in body


def test_filter_by_follow_state(admin_client, fans):
    FansProfile.record_subscription("oFAN1", subscribed=True)
    assert (
        'href="?subscribed__exact=1"'
        in admin_client.get("/admin/fans/fansprofile/").content.decode()
    )
    body = admin_client.get("/admin/fans/fansprofile/", {"subscribed__exact": "1"}).content.decode()
    assert "小鸡炖蘑菇🍄" in body
    assert "大白菜" not in body


def test_wechat_fields_are_read_only(admin_client, fans):
    url = f"/admin/fans/fansprofile/{fans[0].pk}/change/"
    body = admin_client.get(url).content.decode()
    assert 'name="nickname"' not in body
    assert 'name="subscribed"' not in body
    admin_client.post(url, {"nickname": "改过的", "subscribed": "true"})
    fans[0].refresh_from_db()
    assert fans[0].nickname == "小鸡炖蘑菇🍄"
    assert fans[0].subscribed is None


def test_fans_cannot_be_added_by_hand(admin_client):
    assert admin_client.get("/admin/fans/fansprofile/add/").status_code == 403


def test_anonymous_visitor_is_sent_to_admin_login(client):
    response = client.get("/admin/fans/fansprofile/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
