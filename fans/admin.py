from django.contrib import admin
from django.utils.html import format_html

from .models import USERINFO_FIELDS, FansProfile

admin.site.site_header = "xgc 管理后台"
admin.site.site_title = "xgc"


def avatar_html(fan: FansProfile) -> str:
    """Return the fan's WeChat avatar as a 40 px image, or — without one."""
    if not fan.headimgurl:
        return "—"
    # The avatar is on WeChat's image host: don't tell it which admin page asked.
    return format_html(
        '<img src="{}" alt="" width="40" height="40" referrerpolicy="no-referrer">',
        fan.headimgurl,
    )


@admin.register(FansProfile)
class FansProfileAdmin(admin.ModelAdmin):
    list_display = ["avatar", "nickname", "openid", "subscribed", "created_at", "last_login_at"]
    list_display_links = ["avatar", "nickname"]
    list_filter = ["subscribed", "created_at", "last_login_at", "sex"]
    search_fields = ["nickname", "openid", "unionid"]
    ordering = ["-created_at"]
    date_hierarchy = "created_at"
    # Everything here comes from WeChat; an edit would be overwritten at the
    # fan's next consent, so the admin shows it as it came.
    readonly_fields = [
        "avatar",
        "openid",
        *USERINFO_FIELDS,
        "created_at",
        "updated_at",
        "last_login_at",
        "subscribed",
        "subscription_changed_at",
    ]
    fields = readonly_fields

    @admin.display(description="头像")
    def avatar(self, fan: FansProfile) -> str:
        return avatar_html(fan)

    def has_add_permission(self, request) -> bool:
        # Fans come from WeChat authorization only.
        return False
