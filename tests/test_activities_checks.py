"""System checks of the template message settings."""

import pytest

from activities.checks import check_template_settings


def test_the_default_keywords_pass():
    assert check_template_settings() == []


@pytest.mark.parametrize("value", ["{{thing1.DATA}}", "thing1.DATA", "活动", ""])
def test_a_keyword_that_is_not_a_template_keyword_is_an_error(settings, value):
    settings.WECHAT_TEMPLATE_KEY_ACTIVITY = value
    (message,) = check_template_settings()
    assert message.id == "activities.E001"
    assert "WECHAT_TEMPLATE_KEY_ACTIVITY" in message.msg


def test_two_settings_naming_one_keyword_is_an_error(settings):
    settings.WECHAT_TEMPLATE_KEY_TIME = settings.WECHAT_TEMPLATE_KEY_RESULT
    assert [message.id for message in check_template_settings()] == ["activities.E002"]
