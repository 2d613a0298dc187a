"""What the sandbox remembers for long, in the database so that every process sees it.

Short-lived credentials of web authorization are in credentials.py, and the
injected faults in api.py: both live in the cache.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import models
from django.utils import timezone
from django.utils.crypto import get_random_string

# Lifetimes WeChat documents (shared/wechat-protocol.md sections 2 and 4).
CODE_LIFETIME = timedelta(minutes=5)
TOKEN_LIFETIME = timedelta(seconds=7200)
REFRESH_TOKEN_LIFETIME = timedelta(days=30)
# After a new platform token is fetched the old one still works this long.
PLATFORM_TOKEN_OVERLAP = timedelta(minutes=5)
# A temporary media_id, such as a JS-SDK serverId (protocol notes section 11).
MEDIA_LIFETIME = timedelta(days=3)


def random_value(length: int = 64) -> str:
    return get_random_string(length)


class SandboxFan(models.Model):
    """A WeChat user that can hold the sandbox's phone."""

    openid = models.CharField(max_length=64, unique=True)
    unionid = models.CharField(max_length=64, blank=True)
    nickname = models.CharField(max_length=100)
    # Shown behind the nickname's first character on the generated avatar.
    colour = models.CharField(max_length=7, default="#07c160")
    # Whether the fan follows the account: template messages reach followers only.
    follows = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return self.nickname

    @classmethod
    def create_new(cls) -> SandboxFan:
        suffix = get_random_string(22)
        # Numbered by the openid, not by counting rows: benchmarks add thousands.
        return cls.objects.create(
            openid=f"oSBX{suffix}", unionid=f"uSBX{suffix}", nickname=f"新用户{suffix[:4]}🙂"
        )


class PlatformToken(models.Model):
    """A global access_token (cgi-bin/token or cgi-bin/stable_token)."""

    class Kind(models.TextChoices):
        TOKEN = "token"  # noqa: S105 (a kind of token, not a secret)
        STABLE = "stable"

    access_token = models.CharField(max_length=512, unique=True, default=random_value)
    kind = models.CharField(max_length=8, choices=Kind)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    superseded_at = models.DateTimeField(null=True)

    def __str__(self) -> str:
        return f"{self.kind} platform token of {self.created_at:%Y-%m-%d %H:%M:%S}"

    def usable_until(self):
        if self.superseded_at is None:
            return self.expires_at
        return min(self.expires_at, self.superseded_at + PLATFORM_TOKEN_OVERLAP)


class JsapiTicket(models.Model):
    ticket = models.CharField(max_length=128, unique=True, default=random_value)
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"jsapi_ticket until {self.expires_at:%Y-%m-%d %H:%M:%S}"


class Menu(models.Model):
    """The account's custom menu; at most one row."""

    button = models.JSONField()
    created_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"menu of {len(self.button)} buttons"


class SandboxMessage(models.Model):
    """A template message the sandbox accepted, as the fan's phone shows it."""

    fan = models.ForeignKey(SandboxFan, on_delete=models.CASCADE, related_name="messages")
    template_id = models.CharField(max_length=64)
    data = models.JSONField()
    url = models.TextField(blank=True)
    # 64-bit on WeChat's side, 19 digits in current traffic.
    msgid = models.BigIntegerField(unique=True)
    client_msg_id = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # What became of the TEMPLATESENDJOBFINISH push to xgc.
    push_result = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["fan", "-created_at"])]

    def __str__(self) -> str:
        return f"template message {self.msgid}"


class SandboxMedia(models.Model):
    """A photo a phone sent with wx.uploadImage: temporary media, as WeChat keeps it."""

    media_id = models.CharField(max_length=64, unique=True, default=random_value)
    content = models.BinaryField()
    content_type = models.CharField(max_length=100)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "sandbox media"

    def __str__(self) -> str:
        return f"media {self.media_id[:8]}… of {self.created_at:%Y-%m-%d %H:%M:%S}"

    def expired(self) -> bool:
        return self.created_at + MEDIA_LIFETIME <= timezone.now()
