"""The sandbox's JS-SDK: wx.config's check, uploadImage and cgi-bin/media/get."""

import json
from datetime import timedelta

import pytest

from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from fans.jssdk import JSSDK_SCRIPT, jssdk_script_url
from xgc import wechat
from xgc.sandbox.models import PlatformToken, SandboxMedia

from .conftest import API
from .test_sandbox import APP, api_get, platform_token

pytestmark = pytest.mark.django_db

PAGE = "https://xgc.example.com/activities/1/apply/?code=CODE&state=STATE"
NONCE, TIMESTAMP = "Wm3WZYTPz0wzccnW", 1414587457
PHOTO = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 4 + b"\xff\xd9"


def jsapi_ticket(client) -> str:
    token = platform_token(client)
    return api_get(client, "/cgi-bin/ticket/getticket", access_token=token, type="jsapi")["ticket"]


def preverify(client, **overrides: str) -> dict:
    response = client.post("/sandbox/jssdk/preverify", overrides)
    assert response.status_code == 200
    return response.json()


def signed(ticket: str, url: str = PAGE) -> dict[str, str]:
    signature = wechat.jsapi_signature(ticket=ticket, noncestr=NONCE, timestamp=TIMESTAMP, url=url)
    return {
        "appId": APP["appid"],
        "timestamp": str(TIMESTAMP),
        "nonceStr": NONCE,
        "signature": signature,
        "url": url,
    }


def upload(client, content: bytes = PHOTO, content_type: str = "image/jpeg") -> dict:
    photo = SimpleUploadedFile("IMG_0001.JPG", content, content_type=content_type)
    response = client.post("/sandbox/jssdk/upload_image", {"media": photo})
    assert response.status_code == 200
    return response.json()


def media_get(client, **params: str):
    response = client.get("/sandbox/cgi-bin/media/get", params)
    assert response.status_code == 200  # WeChat reports errors in the body
    return response


def errcode(response) -> int:
    # Errors come as JSON labelled text/plain, as WeChat's do.
    assert response["Content-Type"] == "text/plain"
    return json.loads(response.content.decode("utf-8"))["errcode"]


# The script


def test_pages_load_the_stand_in_where_the_sandbox_is_mounted(client, settings):
    assert jssdk_script_url() == "/sandbox/jweixin.js"
    response = client.get("/sandbox/jweixin.js")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/javascript"
    assert b"window.wx = window.jWeixin" in b"".join(response.streaming_content)
    settings.WECHAT_SANDBOX = False
    assert jssdk_script_url() == JSSDK_SCRIPT


# wx.config


def test_config_with_the_right_signature_is_ok(client):
    assert preverify(client, **signed(jsapi_ticket(client))) == {"errMsg": "config:ok"}


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"signature": "0" * 40}, "signature"),
        # Signed for the page's URL with its #fragment, or for another page.
        ({"url": PAGE + "#photos"}, "signature"),
        ({"url": "https://xgc.example.com/"}, "signature"),
        ({"nonceStr": "another-nonce"}, "signature"),
        ({"timestamp": str(TIMESTAMP + 1)}, "signature"),
        ({"timestamp": "soon"}, "timestamp"),
        ({"appId": "wx0000000000000000"}, "appId"),
    ],
)
def test_config_with_a_wrong_signature_is_invalid(client, overrides, reason):
    answer = preverify(client, **(signed(jsapi_ticket(client)) | overrides))
    assert answer["errMsg"] == "config:invalid signature"
    assert reason in answer["reason"]


def test_config_needs_the_latest_ticket(client):
    """A ticket fetched again makes signatures with the old one invalid."""
    old = jsapi_ticket(client)
    jsapi_ticket(client)
    assert preverify(client, **signed(old))["errMsg"] == "config:invalid signature"


def test_config_without_any_ticket_is_invalid(client):
    answer = preverify(client, **signed("no-ticket-was-issued"))
    assert answer["errMsg"] == "config:invalid signature"
    assert "jsapi_ticket" in answer["reason"]


# uploadImage, then media/get


def test_an_uploaded_photo_comes_back_from_media_get(client):
    answer = upload(client, content_type="image/png")
    assert answer["errMsg"] == "uploadImage:ok"
    media_id = answer["serverId"]
    response = media_get(client, access_token=platform_token(client), media_id=media_id)
    assert response.content == PHOTO
    assert response["Content-Type"] == "image/png"
    assert response["Content-disposition"] == f'attachment; filename="{media_id}.jpg"'
    assert response["Cache-Control"] == "no-cache, must-revalidate"
    # A media id can be downloaded more than once within its lifetime.
    again = media_get(client, access_token=platform_token(client), media_id=media_id)
    assert again.content == PHOTO


def test_xgcs_client_reads_the_sandboxs_answers(client, wechat_api):
    """wechat.get_media tells the photo from the 40007 JSON, as the sandbox sends them."""
    media_id = upload(client)["serverId"]
    token = platform_token(client)
    for sent in (media_id, "unknown"):
        answer = media_get(client, access_token=token, media_id=sent)
        wechat_api.get(
            API + "/cgi-bin/media/get", body=answer.content, content_type=answer["Content-Type"]
        )
    assert wechat.get_media(token, media_id, max_bytes=len(PHOTO)) == PHOTO
    with pytest.raises(wechat.WeChatError) as raised:
        wechat.get_media(token, "unknown", max_bytes=len(PHOTO))
    assert raised.value.media_expired


@pytest.mark.parametrize(
    ("name", "content", "content_type", "errmsg"),
    [
        ("media", b"", "image/jpeg", "no image"),
        ("media", b"%PDF-1.7", "application/pdf", "not an image"),
        ("file", PHOTO, "image/jpeg", "no image"),
    ],
)
def test_upload_refuses_what_is_not_a_photo(client, name, content, content_type, errmsg):
    sent = SimpleUploadedFile("x", content, content_type=content_type)
    answer = client.post("/sandbox/jssdk/upload_image", {name: sent}).json()
    assert answer["errMsg"] == f"uploadImage:fail, {errmsg}"
    assert SandboxMedia.objects.count() == 0


def test_an_unknown_media_id_is_40007(client):
    response = media_get(client, access_token=platform_token(client), media_id="unknown")
    assert errcode(response) == 40007
    assert json.loads(response.content)["errmsg"].startswith("invalid media_id")


def test_a_media_id_dies_after_three_days(client):
    media_id = upload(client)["serverId"]
    token = platform_token(client)
    media = SandboxMedia.objects.get(media_id=media_id)
    media.created_at = timezone.now() - timedelta(days=3, minutes=-1)
    media.save()
    assert media_get(client, access_token=token, media_id=media_id).content == PHOTO
    media.created_at = timezone.now() - timedelta(days=3, seconds=1)
    media.save()
    assert errcode(media_get(client, access_token=token, media_id=media_id)) == 40007


def test_old_media_is_forgotten_when_a_new_photo_arrives(client):
    media_id = upload(client)["serverId"]
    SandboxMedia.objects.update(created_at=timezone.now() - timedelta(days=4))
    upload(client)
    assert not SandboxMedia.objects.filter(media_id=media_id).exists()


def test_media_get_needs_a_media_id(client):
    assert errcode(media_get(client, access_token=platform_token(client))) == 41006


@pytest.mark.parametrize(("age", "expected"), [(timedelta(hours=2), 42001), (None, 40001)])
def test_a_stale_platform_token_is_refused(client, age, expected):
    """Expired: 42001; superseded by a newer cgi-bin/token beyond the overlap: 40001."""
    media_id = upload(client)["serverId"]
    token = platform_token(client)
    stale = PlatformToken.objects.get(access_token=token)
    if age is None:
        platform_token(client)
        stale.refresh_from_db()
        stale.superseded_at = timezone.now() - timedelta(minutes=6)
    else:
        stale.expires_at = timezone.now() - timedelta(seconds=1)
    stale.save()
    assert errcode(media_get(client, access_token=token, media_id=media_id)) == expected


def test_an_unknown_token_is_40014(client):
    media_id = upload(client)["serverId"]
    assert errcode(media_get(client, access_token="nonsense", media_id=media_id)) == 40014


def test_an_injected_fault_answers_system_error(client):
    media_id = upload(client)["serverId"]
    token = platform_token(client)
    client.post("/sandbox/faults", {"error_share": "1"})
    assert errcode(media_get(client, access_token=token, media_id=media_id)) == -1


def test_media_get_counts_as_an_api_call(client):
    token = platform_token(client)
    client.post("/sandbox/stats")
    media_get(client, access_token=token, media_id="unknown")
    assert client.get("/sandbox/stats").json()["calls"]["cgi-bin/media/get"] == 1


def test_an_injected_fault_fails_an_upload(client):
    client.post("/sandbox/faults", {"error_share": "1"})
    assert upload(client)["errMsg"] == "uploadImage:fail, system error"
    assert SandboxMedia.objects.count() == 0
