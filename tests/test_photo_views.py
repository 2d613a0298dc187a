"""Who may see a photo, and how /photos/<pk>/<kind>/ answers from disk."""

from __future__ import annotations

import re

import pytest

from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.template.loader import render_to_string
from django.test.utils import CaptureQueriesContext

from activities.models import Application, Photo
from activities.photo_files import save_photo
from activities.photo_views import photo_url

from .conftest import sign_in
from .test_photo_files import processed_photo

pytestmark = pytest.mark.django_db

APPLICATIONS = "/admin/activities/application/"


@pytest.fixture
def photo(media_root, make_fan, make_activity) -> Photo:
    application = Application.objects.create(
        activity=make_activity(), fan=make_fan("照片的主人"), name="张三", phone="13812345678"
    )
    return save_photo(application=application, photo=processed_photo(), source="upload")


@pytest.fixture
def staff(client, django_user_model):
    """Return make(*permissions): the client, signed in as staff with those permissions."""

    def make(*codenames: str):
        user = django_user_model.objects.create_user("clerk", password="x", is_staff=True)
        user.user_permissions.add(
            *Permission.objects.filter(content_type__app_label="activities", codename__in=codenames)
        )
        client.force_login(user)
        return client

    return make


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def assert_private_image(response) -> None:
    assert response["Content-Type"] == "image/jpeg"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cache-Control"] == "private, max-age=300"
    assert "Cookie" in response["Vary"]


# Who may see it


@pytest.mark.parametrize("kind", ["display", "thumbnail"])
def test_the_fan_gets_their_own_photo(client, photo, media_root, kind):
    sign_in(client, photo.application.fan)

    response = client.get(f"/photos/{photo.pk}/{kind}/")

    assert response.status_code == 200
    assert body(response) == (media_root / getattr(photo, kind).name).read_bytes()
    assert_private_image(response)


def test_photo_url_names_the_route(photo):
    assert photo_url(photo, "thumbnail") == f"/photos/{photo.pk}/thumbnail/"
    assert photo_url(photo) == f"/photos/{photo.pk}/display/"


def test_another_fan_gets_404_as_for_a_missing_photo(client, photo, make_fan):
    sign_in(client, make_fan("别人"))
    assert client.get(photo_url(photo)).status_code == 404
    assert client.get(f"/photos/{photo.pk + 1}/display/").status_code == 404


def test_an_anonymous_visitor_gets_404_not_a_sign_in_redirect(client, photo):
    response = client.get(photo_url(photo))
    assert response.status_code == 404
    assert "Location" not in response


def test_staff_without_view_photo_gets_403_photo_or_not(staff, photo):
    client = staff("view_application", "change_application")
    assert client.get(photo_url(photo)).status_code == 403
    assert client.get(f"/photos/{photo.pk + 1}/display/").status_code == 403


def test_staff_with_view_photo_gets_the_photo(staff, photo, media_root):
    client = staff("view_photo")
    response = client.get(photo_url(photo, "thumbnail"))
    assert response.status_code == 200
    assert body(response) == (media_root / photo.thumbnail.name).read_bytes()
    assert_private_image(response)
    assert client.get(f"/photos/{photo.pk + 1}/display/").status_code == 404


def test_a_reviewer_may_see_photos(client, django_user_model, photo):
    """Migration 0005 gives the group 活动审核员 view_photo."""
    user = django_user_model.objects.create_user("reviewer", password="x", is_staff=True)
    user.groups.add(Group.objects.get(name="活动审核员"))
    client.force_login(user)
    assert client.get(photo_url(photo)).status_code == 200


def test_a_signed_in_non_staff_user_gets_404(client, django_user_model, photo):
    client.force_login(django_user_model.objects.create_user("someone", password="x"))
    assert client.get(photo_url(photo)).status_code == 404


def test_an_unknown_kind_is_404(client, photo):
    sign_in(client, photo.application.fan)
    for kind in ["original", "DISPLAY", "..", "display.jpg"]:
        assert client.get(f"/photos/{photo.pk}/{kind}/").status_code == 404


def test_only_get_and_head(client, photo):
    sign_in(client, photo.application.fan)
    assert client.head(photo_url(photo)).status_code == 200
    assert client.post(photo_url(photo)).status_code == 405


def test_media_root_is_served_at_no_url(client, photo):
    sign_in(client, photo.application.fan)
    for url in [f"/media_root/{photo.display.name}", f"/{photo.display.name}"]:
        assert client.get(url).status_code == 404


def test_a_photo_whose_file_is_gone_is_404(client, photo, media_root):
    (media_root / photo.display.name).unlink()
    sign_in(client, photo.application.fan)
    assert client.get(photo_url(photo)).status_code == 404


# Behind nginx


def test_x_accel_redirect_hands_the_file_to_nginx(client, photo, settings):
    settings.PHOTO_X_ACCEL_REDIRECT = "/protected-media_root/"
    sign_in(client, photo.application.fan)

    response = client.get(photo_url(photo, "thumbnail"))

    assert response.status_code == 200
    assert response["X-Accel-Redirect"] == f"/protected-media_root/{photo.thumbnail.name}"
    assert response.content == b""
    # nginx keeps this Content-Type: it must be the photo's, not text/html.
    assert_private_image(response)


def test_x_accel_redirect_only_after_the_access_check(client, photo, settings, make_fan):
    settings.PHOTO_X_ACCEL_REDIRECT = "/protected-media_root/"
    sign_in(client, make_fan("别人"))
    response = client.get(photo_url(photo))
    assert response.status_code == 404
    assert "X-Accel-Redirect" not in response


# The fan's page partial and the admin


def test_the_partial_links_each_thumbnail_to_its_display_copy(photo):
    html = render_to_string("activities/_photos.html", {"application": photo.application})
    assert f'href="/photos/{photo.pk}/display/"' in html
    assert f'src="/photos/{photo.pk}/thumbnail/"' in html
    assert 'width="32" height="24"' in html


def test_the_partial_is_empty_without_photos(make_fan, make_activity):
    application = Application.objects.create(
        activity=make_activity(), fan=make_fan(), name="张三", phone="13812345678"
    )
    assert render_to_string("activities/_photos.html", {"application": application}).strip() == ""


def test_the_application_page_shows_thumbnails_linking_to_display_copies(admin_client, photo):
    html = admin_client.get(f"{APPLICATIONS}{photo.application.pk}/change/").content.decode()

    link = re.search(rf'<a href="/photos/{photo.pk}/display/"[^>]*>\s*<img [^>]*>', html)
    assert link, "no thumbnail linking to the display copy"
    assert 'target="_blank"' in link.group(0)
    assert f'src="/photos/{photo.pk}/thumbnail/"' in link.group(0)
    assert "64×48" in html


def test_staff_without_view_photo_see_no_photos_on_the_application_page(staff, photo):
    client = staff("view_application")
    html = client.get(f"{APPLICATIONS}{photo.application.pk}/change/").content.decode()
    assert "/photos/" not in html


def test_the_application_list_counts_photos_without_a_query_per_row(
    admin_client, photo, make_fan, make_activity
):
    def query_count() -> tuple[int, str]:
        with CaptureQueriesContext(connection) as queries:
            html = admin_client.get(APPLICATIONS).content.decode()
        return len(queries), html

    before, html = query_count()
    cells = re.findall(r'<td class="field-photo_count">(\d+)</td>', html)
    assert cells == ["1"]
    for number in range(3):
        application = Application.objects.create(
            activity=make_activity(), fan=make_fan(f"粉丝{number}"), name="李四", phone="1"
        )
        save_photo(application=application, photo=processed_photo(number), source="upload")
    after, html = query_count()
    assert after == before
    assert sorted(re.findall(r'<td class="field-photo_count">(\d+)</td>', html)) == ["1"] * 4
