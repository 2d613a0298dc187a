"""Photos in an S3-compatible bucket: a real S3 HTTP API on 127.0.0.1 (moto's server).

moto answers as S3 does for storing, listing, deleting and presigned GETs, but
checks neither signatures nor expiry: the tests assert on the presigned URL's
parameters instead (../shared/photos.md, "Object storage").
"""

from __future__ import annotations

import copy
import io
import uuid
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer

from django.core.files.storage import default_storage
from django.core.management import call_command
from django.db import IntegrityError

from activities.checks import check_s3_settings
from activities.models import Application, Photo
from activities.photo_files import save_photo
from activities.photo_views import photo_url
from xgc import settings as xgc_settings

from .conftest import sign_in
from .test_photo_files import jpeg, processed_photo

pytestmark = pytest.mark.django_db

REGION = "us-east-1"
ACCESS_KEY, SECRET_KEY = "moto-access-key", "moto-secret-key"
URL_SECONDS = 120
ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"


@pytest.fixture(scope="module")
def s3_endpoint():
    """Serve moto's S3 on a free loopback port for this module; yield its URL."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def bucket(settings, tmp_path, s3_endpoint):
    """Create an empty bucket and make it the default storage; return its client and name."""
    name = f"xgc-photos-{uuid.uuid4().hex[:12]}"
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )
    client.create_bucket(Bucket=name)
    settings.S3_BUCKET = name
    settings.S3_ENDPOINT_URL = s3_endpoint
    settings.S3_REGION = REGION
    settings.S3_ACCESS_KEY_ID, settings.S3_SECRET_ACCESS_KEY = ACCESS_KEY, SECRET_KEY
    settings.S3_URL_SECONDS = URL_SECONDS
    # The options xgc/settings.py uses when S3_BUCKET is set, pointed at moto.
    # Django's setting_changed handler rebuilds default_storage from them.
    storage = copy.deepcopy(xgc_settings._s3_storage)
    storage["OPTIONS"] |= {
        "bucket_name": name,
        "endpoint_url": s3_endpoint,
        "region_name": REGION,
        "access_key": ACCESS_KEY,
        "secret_key": SECRET_KEY,
        "querystring_expire": URL_SECONDS,
    }
    settings.STORAGES = settings.STORAGES | {"default": storage}
    # Nothing may land on disk: an empty MEDIA_ROOT of the test's own.
    settings.MEDIA_ROOT = tmp_path / "media"
    return client, name


@pytest.fixture
def application(make_fan, make_activity) -> Application:
    return Application.objects.create(
        activity=make_activity(), fan=make_fan(), name="张三", phone="13812345678"
    )


def keys(client, name: str) -> list[str]:
    return sorted(item["Key"] for item in client.list_objects_v2(Bucket=name).get("Contents", []))


def test_the_default_storage_is_the_bucket(bucket):
    assert default_storage.__class__.__name__ == "S3Storage"
    assert default_storage.bucket_name == bucket[1]


def test_save_photo_stores_private_jpeg_objects(bucket, application, tmp_path):
    client, name = bucket
    processed = processed_photo()

    photo = save_photo(application=application, photo=processed, source="upload")

    assert keys(client, name) == sorted([photo.display.name, photo.thumbnail.name])
    for key, image in [
        (photo.display.name, processed.display),
        (photo.thumbnail.name, processed.thumbnail),
    ]:
        stored = client.get_object(Bucket=name, Key=key)
        assert stored["ContentType"] == "image/jpeg"
        assert stored["Body"].read() == image.data
        grantees = [
            grant["Grantee"] for grant in client.get_object_acl(Bucket=name, Key=key)["Grants"]
        ]
        assert all(grantee.get("URI") != ALL_USERS for grantee in grantees)
    assert not (tmp_path / "media").exists()


def test_the_photo_view_redirects_to_a_short_lived_presigned_url(client, bucket, application):
    photo = save_photo(application=application, photo=processed_photo(), source="upload")
    sign_in(client, application.fan)

    response = client.get(photo_url(photo, "display"))

    assert response.status_code == 302
    assert response["Cache-Control"] == "private, no-store"
    assert response["X-Content-Type-Options"] == "nosniff"
    location = urlsplit(response["Location"])
    query = {key: values[0] for key, values in parse_qs(location.query).items()}
    assert (location.hostname, location.path) == ("127.0.0.1", f"/{bucket[1]}/{photo.display.name}")
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert query["X-Amz-Signature"]
    assert query["X-Amz-Expires"] == str(URL_SECONDS)
    assert query["response-content-type"] == "image/jpeg"
    assert query["response-cache-control"] == f"private, max-age={URL_SECONDS}"

    fetched = requests.get(response["Location"], timeout=10)
    assert fetched.status_code == 200
    assert fetched.content == processed_photo().display.data
    assert fetched.headers["Content-Type"] == "image/jpeg"


def test_another_fan_gets_no_url(client, bucket, application, make_fan):
    photo = save_photo(application=application, photo=processed_photo(), source="upload")
    sign_in(client, make_fan("别人"))
    response = client.get(photo_url(photo))
    assert response.status_code == 404
    assert "Location" not in response


def test_deleting_the_application_deletes_the_objects(
    bucket, application, django_capture_on_commit_callbacks
):
    client, name = bucket
    save_photo(application=application, photo=processed_photo(1), source="upload")
    save_photo(application=application, photo=processed_photo(2), source="upload")
    assert len(keys(client, name)) == 4

    with django_capture_on_commit_callbacks(execute=True):
        application.delete()

    assert keys(client, name) == []


def test_the_same_photo_twice_leaves_no_object_behind(bucket, application):
    client, name = bucket
    photo = save_photo(application=application, photo=processed_photo(), source="upload")
    with pytest.raises(IntegrityError):
        save_photo(application=application, photo=processed_photo(), source="upload")
    assert keys(client, name) == sorted([photo.display.name, photo.thumbnail.name])


def clean(*args: str) -> str:
    out = io.StringIO()
    call_command("clean_photo_files", *args, stdout=out)
    return out.getvalue()


def test_clean_photo_files_finds_and_deletes_an_orphan_object(bucket, application):
    client, name = bucket
    photo = save_photo(application=application, photo=processed_photo(), source="upload")
    orphan = "photos/2026/01/crashed.jpg"
    client.put_object(Bucket=name, Key=orphan, Body=jpeg((8, 8)), ContentType="image/jpeg")
    client.put_object(Bucket=name, Key="elsewhere.txt", Body=b"not a photo")

    # Just written: within the default hour, it may be a photo being saved.
    assert "Left alone 1 unreferenced file(s) younger than 60 minutes." in clean("--delete")
    assert orphan in keys(client, name)

    assert clean("--min-age-minutes", "0").splitlines()[:2] == [
        orphan,
        "Found 1 orphaned photo file(s).",
    ]
    assert orphan in keys(client, name)

    assert clean("--delete", "--min-age-minutes", "0").splitlines() == [
        orphan,
        "Deleted 1 orphaned photo file(s).",
    ]
    assert keys(client, name) == sorted([photo.display.name, photo.thumbnail.name, "elsewhere.txt"])
    assert Photo.objects.get() == photo


# The S3 settings check (activities.E003)


def s3_options(settings, **options) -> None:
    settings.S3_BUCKET = "xgc-photos"
    storage = copy.deepcopy(xgc_settings._s3_storage)
    storage["OPTIONS"] |= {"bucket_name": "xgc-photos"} | options
    settings.STORAGES = settings.STORAGES | {"default": storage}


def test_check_s3_is_quiet_without_a_bucket(settings):
    settings.S3_BUCKET = ""
    assert check_s3_settings() == []


@pytest.mark.parametrize(("access_key", "secret_key"), [("AKID", "secret"), (None, None)])
def test_check_s3_accepts_both_keys_or_neither(settings, access_key, secret_key):
    """Neither: boto3's own credentials chain (environment, ~/.aws, instance role)."""
    s3_options(settings, access_key=access_key, secret_key=secret_key)
    assert check_s3_settings() == []


@pytest.mark.parametrize(
    ("access_key", "secret_key", "missing"),
    [("AKID", None, "S3_SECRET_ACCESS_KEY"), (None, "secret", "S3_ACCESS_KEY_ID")],
)
def test_check_s3_names_the_missing_half_of_the_keys(settings, access_key, secret_key, missing):
    s3_options(settings, access_key=access_key, secret_key=secret_key)
    [error] = check_s3_settings()
    assert error.id == "activities.E003"
    assert f"{missing} is empty" in error.msg
    assert missing in error.hint and ".env.example" in error.hint


def test_check_s3_wants_a_region_with_an_endpoint(settings):
    s3_options(settings, endpoint_url="https://s3.example.com", region_name=None)
    [error] = check_s3_settings()
    assert error.id == "activities.E003"
    assert "S3_REGION" in error.msg and "S3_REGION" in error.hint
