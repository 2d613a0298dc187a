from __future__ import annotations

from typing import Any

from django.db import models
from django.utils import timezone


class FansProfile(models.Model):
    """A WeChat user who signed in through web authorization."""

    class Sex(models.IntegerChoices):
        UNKNOWN = 0, "未知"
        MALE = 1, "男"
        FEMALE = 2, "女"

    openid = models.CharField("OpenID", max_length=64, unique=True)
    # Only sent when the account is bound to an Open Platform account; NULL,
    # not "", so that "no unionid" never looks like a shared one.
    unionid = models.CharField(  # noqa: DJ001
        "UnionID", max_length=64, null=True, blank=True, db_index=True
    )
    nickname = models.CharField("昵称", max_length=255, blank=True)
    # WeChat has sent 0 and empty regions since 2021-10; kept as they come.
    sex = models.PositiveSmallIntegerField("性别", choices=Sex, default=Sex.UNKNOWN)
    province = models.CharField("省份", max_length=64, blank=True)
    city = models.CharField("城市", max_length=64, blank=True)
    country = models.CharField("国家", max_length=64, blank=True)
    headimgurl = models.URLField("头像", max_length=1024, blank=True)
    privilege = models.JSONField("特权", default=list, blank=True)
    userinfo = models.JSONField("原始用户信息", default=dict, blank=True)
    created_at = models.DateTimeField("首次授权", auto_now_add=True)
    updated_at = models.DateTimeField("资料更新", auto_now=True)
    last_login_at = models.DateTimeField("最近登录", null=True, blank=True)
    # NULL until WeChat pushes a follow or unfollow event for this fan.
    subscribed = models.BooleanField("已关注", null=True, blank=True)
    subscription_changed_at = models.DateTimeField("关注状态变更", null=True, blank=True)

    class Meta:
        verbose_name = "粉丝"
        verbose_name_plural = "粉丝"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.nickname or self.openid

    @classmethod
    def create_fan(cls, info: dict[str, Any]) -> FansProfile:
        """Create or update the fan described by a /sns/userinfo answer.

        Idempotent on openid: a second call, or a concurrent first visit of
        the same fan, updates the one row instead of adding another. It is a
        single INSERT ... ON CONFLICT statement, so the returned fan carries
        the answer's fields and its pk; the follow state and created_at of a
        row that existed are left as they are in the database, not loaded.
        """
        fan = cls(
            openid=info["openid"],
            unionid=_text(info.get("unionid"), 64) or None,
            nickname=_text(info.get("nickname"), 255),
            sex=_sex(info.get("sex")),
            province=_text(info.get("province"), 64),
            city=_text(info.get("city"), 64),
            country=_text(info.get("country"), 64),
            headimgurl=_text(info.get("headimgurl"), 1024),
            privilege=info.get("privilege") or [],
            userinfo=info,
            last_login_at=timezone.now(),
        )
        cls.objects.bulk_create(
            [fan],
            update_conflicts=True,
            unique_fields=["openid"],
            update_fields=[*USERINFO_FIELDS, "updated_at", "last_login_at"],
        )
        return fan

    @classmethod
    def record_subscription(cls, openid: str, subscribed: bool) -> FansProfile:
        """Record a follow or unfollow event, adding a bare row for a new openid.

        A bare row has no userinfo, so the fan still has to consent before
        signing in (``fans.services.fan_for_token``).
        """
        now = timezone.now()
        fan, created = cls.objects.get_or_create(
            openid=openid, defaults={"subscribed": subscribed, "subscription_changed_at": now}
        )
        if not created:
            fan.subscribed, fan.subscription_changed_at = subscribed, now
            # Following is not a profile change: leave updated_at alone.
            fan.save(update_fields=["subscribed", "subscription_changed_at"])
        return fan

    def record_login(self) -> None:
        self.last_login_at = timezone.now()
        FansProfile.objects.filter(pk=self.pk).update(last_login_at=self.last_login_at)


# The columns that a /sns/userinfo answer fills.
USERINFO_FIELDS = [
    "unionid",
    "nickname",
    "sex",
    "province",
    "city",
    "country",
    "headimgurl",
    "privilege",
    "userinfo",
]


def _text(value: Any, max_length: int) -> str:
    # The complete answer is kept in ``userinfo``; the columns hold what fits.
    return str(value or "")[:max_length]


def _sex(value: Any) -> int:
    # Old docs and fixtures send "1" as a string, current answers send 0.
    try:
        sex = int(value or 0)
    except (TypeError, ValueError):
        return FansProfile.Sex.UNKNOWN
    return sex if sex in FansProfile.Sex.values else FansProfile.Sex.UNKNOWN
