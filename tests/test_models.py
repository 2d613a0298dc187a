"""FansProfile.create_fan: an idempotent upsert on openid."""

import threading

import pytest

from django.db import connection

from fans.models import FansProfile

from .conftest import userinfo_answer

pytestmark = pytest.mark.django_db


def test_create_fan_stores_every_field_as_it_came():
    info = userinfo_answer("oFAN1", sex="2", privilege=["chinaunicom"], nickname="张三😀")
    fan = FansProfile.create_fan(info)
    fan.refresh_from_db()
    assert fan.nickname == "张三😀"
    assert fan.sex == FansProfile.Sex.FEMALE
    assert fan.privilege == ["chinaunicom"]
    assert fan.userinfo == info
    assert (fan.province, fan.city, fan.country) == ("", "", "")
    assert str(fan) == "张三😀"


def test_create_fan_twice_updates_one_row():
    first = FansProfile.create_fan(userinfo_answer("oFAN1", nickname="旧"))
    second = FansProfile.create_fan(userinfo_answer("oFAN1", nickname="新"))
    assert first.pk == second.pk
    assert FansProfile.objects.get().nickname == "新"


def test_create_fan_tolerates_missing_and_odd_fields():
    fan = FansProfile.create_fan({"openid": "oBARE", "sex": "unknown", "nickname": "长" * 300})
    fan.refresh_from_db()
    assert fan.sex == FansProfile.Sex.UNKNOWN
    assert fan.unionid is None
    assert fan.nickname == "长" * 255
    assert fan.userinfo["nickname"] == "长" * 300


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_first_visits_of_one_fan_leave_one_row():
    """Eight callbacks of the same new fan at once still make one row."""
    workers = 8
    barrier = threading.Barrier(workers, timeout=10)
    errors, fans = [], []

    def first_visit():
        try:
            barrier.wait()
            fans.append(FansProfile.create_fan(userinfo_answer("oSAME")).pk)
        except Exception as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=first_visit) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert len(set(fans)) == 1 and len(fans) == workers
    assert FansProfile.objects.filter(openid="oSAME").count() == 1
