"""Photos on an application: from a browser (``photos``) or WeChat's JS-SDK (``media_id``).

Both end in the one pipeline; a failure anywhere leaves no file behind and
keeps what the fan typed.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import requests
from PIL import Image
from responses import matchers

from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError

from activities import photo_files
from activities.models import Application, Photo

from .conftest import API, sign_in, stored_files

STABLE = API + "/cgi-bin/stable_token"
MEDIA = API + "/cgi-bin/media/get"


pytestmark = pytest.mark.usefixtures("media_root")


def jpeg(colour: str = "red", size: tuple[int, int] = (640, 480)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "JPEG")
    return buffer.getvalue()


def upload(name: str, data: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="image/jpeg")


@pytest.fixture
def fan_client(client, make_fan):
    fan = make_fan()
    sign_in(client, fan)
    client.fan = fan
    return client


@pytest.fixture
def activity(make_activity):
    return make_activity()


def apply(client, activity, **extra):
    fields = {"name": "张三", "phone": "13812345678", "note": "带一本书"} | extra
    return client.post(f"/activities/{activity.pk}/apply/", fields)


def test_photos_from_a_browser_are_stored_re_encoded(fan_client, activity, media_root):
    response = apply(
        fan_client, activity, photos=[upload("a.jpg", jpeg("red")), upload("b.png", jpeg("blue"))]
    )
    assert response.status_code == 302
    application = Application.objects.get()
    photos = list(application.photos.all())
    assert [photo.source for photo in photos] == [Photo.Source.UPLOAD] * 2
    assert len(stored_files(media_root)) == 4  # a display copy and a thumbnail each
    # Stored under random names, never the fan's file names.
    assert not any(Path(name).stem in ("a", "b") for name in stored_files(media_root))
    page = fan_client.get(f"/applications/{application.pk}/").content.decode()
    for photo in photos:
        assert f"/photos/{photo.pk}/thumbnail/" in page


def test_the_same_photo_twice_is_stored_once(fan_client, activity, media_root):
    same = jpeg("green")
    apply(fan_client, activity, photos=[upload("1.jpg", same), upload("2.jpg", same)])
    assert Photo.objects.count() == 1
    apply(fan_client, activity, photos=[upload("again.jpg", same)])
    assert Photo.objects.count() == 1 and len(stored_files(media_root)) == 2


def test_a_bad_fifth_photo_stores_nothing_and_keeps_the_typed_fields(
    fan_client, activity, media_root
):
    photos = [upload(f"{n}.jpg", jpeg((n * 40, 0, 0))) for n in range(4)]
    photos.append(upload("fifth.jpg", b"<html><script>alert(1)</script></html>"))
    response = apply(fan_client, activity, photos=photos, note="我的备注")
    assert response.status_code == 200
    page = response.content.decode()
    assert "fifth.jpg" in page
    assert "我的备注" in page and "13812345678" in page
    assert not Application.objects.exists() and stored_files(media_root) == []


def test_the_database_refusing_a_photo_leaves_no_file(
    fan_client, activity, media_root, monkeypatch
):
    save_photo = photo_files.save_photo
    calls = []

    def fails_on_the_second(**kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise IntegrityError("the database refused")
        return save_photo(**kwargs)

    monkeypatch.setattr("activities.services.save_photo", fails_on_the_second)
    with pytest.raises(IntegrityError):
        apply(
            fan_client,
            activity,
            photos=[upload("1.jpg", jpeg("red")), upload("2.jpg", jpeg("blue"))],
        )
    assert not Application.objects.exists() and not Photo.objects.exists()
    assert stored_files(media_root) == []


def test_more_than_nine_photos_are_refused(fan_client, activity, media_root):
    photos = [upload(f"{n}.jpg", jpeg((n * 20, n, 0))) for n in range(10)]
    response = apply(fan_client, activity, photos=photos)
    assert response.status_code == 200
    assert "最多还能添加 9 张照片" in response.content.decode()
    assert stored_files(media_root) == []


def media_answer(wechat_api, media_id: str, body: bytes | Exception, content_type="image/jpeg"):
    return wechat_api.get(
        MEDIA,
        body=body,
        content_type=content_type,
        match=[matchers.query_param_matcher({"media_id": media_id}, strict_match=False)],
    )


def platform_token(wechat_api, *values: str):
    return [
        wechat_api.post(STABLE, json={"access_token": value, "expires_in": 7200})
        for value in values
    ]


def test_photos_from_wechat_are_downloaded_with_the_platform_token(
    fan_client, activity, wechat_api, media_root
):
    platform_token(wechat_api, "PLATFORM")
    first = media_answer(wechat_api, "MEDIA1", jpeg("red"))
    media_answer(wechat_api, "MEDIA2", jpeg("blue"))
    response = apply(fan_client, activity, media_id=["MEDIA1", "MEDIA2"])
    assert response.status_code == 302
    assert "access_token=PLATFORM" in first.calls[0].request.url
    photos = Photo.objects.all()
    assert [photo.source for photo in photos] == [Photo.Source.WECHAT] * 2
    assert len(stored_files(media_root)) == 4


def test_a_media_id_wechat_forgot_asks_for_that_photo_again(
    fan_client, activity, wechat_api, media_root
):
    platform_token(wechat_api, "PLATFORM")
    media_answer(wechat_api, "KEPT", jpeg("red"))
    expired = json.dumps({"errcode": 40007, "errmsg": "invalid media_id"}).encode()
    media_answer(wechat_api, "EXPIRED", expired, content_type="text/plain")
    response = apply(fan_client, activity, media_id=["KEPT", "EXPIRED"], note="留着")
    page = response.content.decode()
    assert response.status_code == 200
    assert "第 2 张照片已在微信过期，请重新选择这张照片" in page
    assert "留着" in page
    # The photo that did arrive stays in the form; the forgotten one does not.
    assert 'value="KEPT"' in page and 'value="EXPIRED"' not in page
    assert not Application.objects.exists() and stored_files(media_root) == []


def test_wechat_timing_out_on_a_photo_stores_nothing(fan_client, activity, wechat_api, media_root):
    platform_token(wechat_api, "PLATFORM")
    media_answer(wechat_api, "M1", jpeg("red"))
    media_answer(wechat_api, "M2", jpeg("blue"))
    media_answer(wechat_api, "M3", requests.Timeout("read timed out"))
    response = apply(fan_client, activity, media_id=["M1", "M2", "M3"])
    page = response.content.decode()
    assert "暂时无法从微信取回微信中选择的第 3 张照片" in page
    # A passing failure: every id is kept for the next submit.
    assert 'value="M3"' in page
    assert not Application.objects.exists() and stored_files(media_root) == []


def test_a_refused_platform_token_is_replaced_once(fan_client, activity, wechat_api, media_root):
    old, new = platform_token(wechat_api, "OLD", "NEW")
    refused = json.dumps({"errcode": 40001, "errmsg": "invalid credential"}).encode()
    media_answer(wechat_api, "M1", refused, content_type="text/plain")
    media_answer(wechat_api, "M1", jpeg("red"))
    assert apply(fan_client, activity, media_id=["M1"]).status_code == 302
    assert json.loads(new.calls[0].request.body)["force_refresh"] is True
    assert Photo.objects.count() == 1


def test_a_malformed_media_id_is_refused(fan_client, activity):
    response = apply(fan_client, activity, media_id=["../../etc/passwd"])
    assert "微信照片的标识无效" in response.content.decode()
    assert not Application.objects.exists()


def test_withdrawing_keeps_the_photos_and_deleting_removes_them(
    fan_client, activity, media_root, django_capture_on_commit_callbacks
):
    apply(fan_client, activity, photos=[upload("a.jpg", jpeg("red"))])
    application = Application.objects.get()
    fan_client.post(f"/applications/{application.pk}/withdraw/")
    assert len(stored_files(media_root)) == 2
    with django_capture_on_commit_callbacks(execute=True):
        application.delete()
    assert stored_files(media_root) == []
