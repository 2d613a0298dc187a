"""Activities that fans apply to, their applications, and the messages that answer them."""

from __future__ import annotations

import uuid
from datetime import datetime

from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.crypto import get_random_string

from fans.models import FansProfile


class Activity(models.Model):
    """Something an official account runs: a workshop, a trip, a volunteer day."""

    title = models.CharField("标题", max_length=100)
    description = models.TextField("介绍", blank=True)
    location = models.CharField("地点", max_length=200, blank=True)
    starts_at = models.DateTimeField("开始时间", null=True, blank=True)
    apply_until = models.DateTimeField(
        "报名截止", null=True, blank=True, help_text="留空：一直开放，直到取消发布"
    )
    capacity = models.PositiveIntegerField(
        "名额", null=True, blank=True, validators=[MinValueValidator(1)], help_text="留空：不限"
    )
    review_required = models.BooleanField(
        "需要审核", default=True, help_text="不勾选：申请提交后立即通过"
    )
    published = models.BooleanField("已发布", default=False, help_text="只有已发布的活动对粉丝可见")
    created_at = models.DateTimeField("创建时间", auto_now_add=True)
    updated_at = models.DateTimeField("更新时间", auto_now=True)

    class Meta:
        verbose_name = "活动"
        verbose_name_plural = "活动"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.title

    def accepts_applications(self, now: datetime | None = None) -> bool:
        """Return whether the activity is published and its deadline not passed."""
        return self.published and not self.deadline_passed(now)

    def deadline_passed(self, now: datetime | None = None) -> bool:
        return self.apply_until is not None and (now or timezone.now()) >= self.apply_until

    def places_taken(self) -> int:
        return self.applications.filter(status__in=Application.HOLDS_PLACE).count()

    def places_left(self, places_taken: int) -> int | None:
        """Return the free places when places_taken are taken; None: no limit."""
        if self.capacity is None:
            return None
        # Below zero only when the capacity was lowered after approvals.
        return max(self.capacity - places_taken, 0)


def accepting_applications(now: datetime) -> Q:
    """Return the filter of activities whose deadline has not passed at now."""
    return Q(apply_until__isnull=True) | Q(apply_until__gt=now)


def with_places_taken(queryset: models.QuerySet[Activity]) -> models.QuerySet[Activity]:
    """Annotate each activity with ``places_taken_count``, in the same query."""
    return queryset.annotate(
        places_taken_count=Count(
            "applications", filter=Q(applications__status__in=Application.HOLDS_PLACE)
        )
    )


class Application(models.Model):
    """A fan's application to an activity; one per fan and activity."""

    class Status(models.TextChoices):
        PENDING = "pending", "待审核"
        APPROVED = "approved", "已通过"
        REJECTED = "rejected", "未通过"
        WITHDRAWN = "withdrawn", "已撤回"

    # An application holds one of the activity's places while it is in these.
    HOLDS_PLACE = (Status.PENDING, Status.APPROVED)
    # The organiser's decisions, each announced to the fan by a template message.
    DECISIONS = (Status.APPROVED, Status.REJECTED)

    activity = models.ForeignKey(
        Activity, on_delete=models.PROTECT, related_name="applications", verbose_name="活动"
    )
    fan = models.ForeignKey(
        FansProfile, on_delete=models.PROTECT, related_name="applications", verbose_name="粉丝"
    )
    name = models.CharField("姓名", max_length=50)
    phone = models.CharField("手机号", max_length=11)
    note = models.TextField("备注", max_length=500, blank=True)
    status = models.CharField("状态", max_length=10, choices=Status, default=Status.PENDING)
    review_note = models.CharField(
        "审核说明", max_length=200, blank=True, help_text="未通过时展示给粉丝"
    )
    created_at = models.DateTimeField("提交时间", auto_now_add=True)
    updated_at = models.DateTimeField("更新时间", auto_now=True)
    reviewed_at = models.DateTimeField("审核时间", null=True, blank=True)

    class Meta:
        verbose_name = "申请"
        verbose_name_plural = "申请"
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["activity", "fan"], name="one_application_per_fan")
        ]
        indexes = [
            models.Index(fields=["fan", "-created_at"], name="application_fan_newest"),
            models.Index(fields=["activity", "status"], name="application_activity_status"),
        ]
        permissions = [
            ("review_application", "Can approve or reject applications"),
            ("export_application", "Can export applications"),
        ]

    def __str__(self) -> str:
        return f"{self.name} · {self.activity}"

    @property
    def holds_place(self) -> bool:
        return self.status in self.HOLDS_PLACE

    @property
    def editable(self) -> bool:
        """Return whether the fan may still change it: pending, activity open."""
        return self.status == self.Status.PENDING and self.activity.accepts_applications()


def new_client_msg_id() -> str:
    return uuid.uuid4().hex


class Notification(models.Model):
    """The template message that tells a fan one decision: an outbox row.

    Written in the same transaction as the decision, so that no decision goes
    unannounced; a worker claims it with a conditional UPDATE, so that no
    decision is announced twice (activities/notifications.py).
    """

    class State(models.TextChoices):
        QUEUED = "queued", "排队中"
        SENDING = "sending", "发送中"
        SENT = "sent", "已发送"
        DELIVERED = "delivered", "已送达"
        FAILED = "failed", "失败"

    application = models.ForeignKey(
        Application, on_delete=models.CASCADE, related_name="notifications", verbose_name="申请"
    )
    decision = models.CharField("结果", max_length=10, choices=Application.Status)
    state = models.CharField("通知状态", max_length=10, choices=State, default=State.QUEUED)
    # WeChat sends one message per openid and client_msg_id within 10 minutes:
    # a resend after a lost answer reuses it.
    client_msg_id = models.CharField(max_length=32, unique=True, default=new_client_msg_id)
    attempts = models.PositiveSmallIntegerField("尝试次数", default=0)
    next_attempt_at = models.DateTimeField("下次尝试", default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    # A 64-bit number on WeChat's side; text here, whatever its sign.
    msgid = models.CharField("msgid", max_length=32, blank=True, db_index=True)
    error = models.CharField("原因", max_length=300, blank=True)
    created_at = models.DateTimeField("创建时间", auto_now_add=True)
    sent_at = models.DateTimeField("发送时间", null=True, blank=True)
    finished_at = models.DateTimeField("完成时间", null=True, blank=True)

    class Meta:
        verbose_name = "通知"
        verbose_name_plural = "通知"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.get_decision_display()} → {self.get_state_display()}"


class DeliveryReport(models.Model):
    """A TEMPLATESENDJOBFINISH event that came before its msgid was recorded.

    WeChat may report delivery before the worker has stored WeChat's answer to
    the send. The report waits here, in the database so that every process
    sees it, for the worker to apply it (activities/notifications.py).
    """

    msgid = models.CharField(max_length=32, unique=True)
    status = models.CharField(max_length=100)
    received_at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return f"{self.msgid}: {self.status}"


def photo_name(extension: str) -> str:
    """Return a new random storage name: never the client's file name."""
    now = timezone.now()
    return f"photos/{now:%Y/%m}/{get_random_string(32)}.{extension}"


class Photo(models.Model):
    """A photo a fan attached to an application, as xgc re-encoded it.

    Both files are made once, when the photo arrives, without any of the
    original's metadata (activities/photos.py). The same bytes attached twice
    to one application are one photo.
    """

    class Source(models.TextChoices):
        UPLOAD = "upload", "浏览器上传"
        WECHAT = "wechat", "微信 JS-SDK"

    # The most photos one application may have.
    MAX_PER_APPLICATION = 9

    application = models.ForeignKey(
        Application, on_delete=models.CASCADE, related_name="photos", verbose_name="申请"
    )
    display = models.FileField("展示图", max_length=200)
    thumbnail = models.FileField("缩略图", max_length=200)
    content_type = models.CharField("格式", max_length=30)
    width = models.PositiveIntegerField("宽")
    height = models.PositiveIntegerField("高")
    thumbnail_width = models.PositiveIntegerField()
    thumbnail_height = models.PositiveIntegerField()
    display_bytes = models.PositiveIntegerField("展示图大小")
    original_bytes = models.PositiveIntegerField("原图大小")
    # SHA-256 of the bytes the fan sent.
    sha256 = models.CharField("SHA-256", max_length=64)
    source = models.CharField("来源", max_length=10, choices=Source)
    created_at = models.DateTimeField("上传时间", auto_now_add=True)

    class Meta:
        verbose_name = "照片"
        verbose_name_plural = "照片"
        ordering = ["application", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["application", "sha256"], name="one_copy_per_photo")
        ]

    def __str__(self) -> str:
        return f"{self.application} · {self.pk}"
