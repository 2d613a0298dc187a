"""Django admin for organisers: activities, the applications to them, and their export.

Every decision goes through services.application_decide, which queues the
fan's template message; reviewers need only the permissions of the group
"活动审核员" (migration 0002).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import ValidationError
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.defaultfilters import filesizeformat
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.http import content_disposition_header

from fans.admin import avatar_html

from . import exports
from .models import Activity, Application, Notification, Photo, accepting_applications
from .photo_views import VIEW_PERMISSION, photo_url
from .services import ApplicationRefused, application_decide, decision_refusal

logger = logging.getLogger(__name__)

Status = Application.Status


def status_counts() -> dict[str, Count]:
    """Return one annotation per status: ``pending_count``, ``approved_count``..."""
    return {
        f"{status}_count": Count("applications", filter=Q(applications__status=status))
        for status in Status
    }


class OpenFilter(admin.SimpleListFilter):
    title = "报名"
    parameter_name = "open"

    def lookups(self, request, model_admin):
        return [("yes", "接受报名中"), ("no", "已截止")]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "yes":
            return queryset.filter(accepting_applications(now), published=True)
        if self.value() == "no":
            return queryset.filter(apply_until__lte=now)
        return queryset


class ApplicationInline(admin.TabularInline):
    """The activity's applications, each linking to its own page to review it."""

    model = Application
    fields = readonly_fields = ["name", "phone", "status", "created_at"]
    ordering = ["created_at"]
    show_change_link = True
    extra = 0
    can_delete = False

    def get_queryset(self, request):
        # Each row's title is Application.__str__, which names the activity.
        return super().get_queryset(request).select_related("activity")

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Activity)
class ActivityAdmin(admin.ModelAdmin):
    # The paginator counts the filtered rows; a second count of the whole
    # table for "N total" costs as much again on a big table.
    show_full_result_count = False
    list_display = [
        "title",
        "published",
        "starts_at",
        "apply_until",
        "capacity_display",
        "pending_count",
        "approved_count",
        "rejected_count",
        "withdrawn_count",
        "places_left",
    ]
    list_filter = ["published", OpenFilter]
    search_fields = ["title", "location", "description"]
    ordering = ["-created_at"]
    inlines = [ApplicationInline]
    actions = ["export_xlsx", "export_csv"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(**status_counts())

    @admin.display(description="名额", ordering="capacity")
    def capacity_display(self, activity: Activity) -> int | str:
        return "不限" if activity.capacity is None else activity.capacity

    @admin.display(description=Status.PENDING.label, ordering="pending_count")
    def pending_count(self, activity: Activity) -> int:
        return activity.pending_count

    @admin.display(description=Status.APPROVED.label, ordering="approved_count")
    def approved_count(self, activity: Activity) -> int:
        return activity.approved_count

    @admin.display(description=Status.REJECTED.label, ordering="rejected_count")
    def rejected_count(self, activity: Activity) -> int:
        return activity.rejected_count

    @admin.display(description=Status.WITHDRAWN.label, ordering="withdrawn_count")
    def withdrawn_count(self, activity: Activity) -> int:
        return activity.withdrawn_count

    @admin.display(description="剩余名额")
    def places_left(self, activity: Activity) -> int | str:
        left = activity.places_left(activity.pending_count + activity.approved_count)
        return "不限" if left is None else left

    @admin.action(description="导出所选活动的申请 Excel", permissions=["export"])
    def export_xlsx(self, request: HttpRequest, queryset: QuerySet[Activity]) -> HttpResponse:
        return self._export(request, queryset, "xlsx")

    @admin.action(description="导出所选活动的申请 CSV", permissions=["export"])
    def export_csv(self, request: HttpRequest, queryset: QuerySet[Activity]) -> HttpResponse:
        return self._export(request, queryset, "csv")

    def _export(self, request, queryset, file_format: str) -> HttpResponse:
        activity_ids = list(queryset.values_list("pk", flat=True))
        applications = Application.objects.filter(activity_id__in=activity_ids)
        return export_response(request, applications, file_format, activity_ids)

    def has_export_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("activities.export_application")


class NotificationInline(admin.TabularInline):
    """The template messages that told the fan each decision, and WeChat's answers."""

    model = Notification
    fields = readonly_fields = [
        "decision",
        "state",
        "msgid",
        "attempts",
        "error",
        "created_at",
        "sent_at",
        "finished_at",
    ]
    verbose_name_plural = "模板消息通知"
    extra = 0
    can_delete = False

    def has_view_permission(self, request, obj=None) -> bool:
        # Part of the application's history: whoever sees the application sees them.
        return request.user.has_perm("activities.view_application") or request.user.has_perm(
            "activities.change_application"
        )

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class ApplicationForm(forms.ModelForm):
    """An organiser's edit: the status offers the current one and the decisions."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "status" in self.fields:
            current = self.instance.status
            self.fields["status"].choices = [
                (value, label)
                for value, label in Status.choices
                if value == current or value in Application.DECISIONS
            ]

    def clean(self):
        cleaned_data = super().clean()
        decision = cleaned_data.get("status")
        if "status" in self.changed_data and decision in Application.DECISIONS:
            self._check_decidable(decision)
        return cleaned_data

    def _check_decidable(self, decision: str) -> None:
        # The rows are locked as application_decide locks them, until the
        # admin view's transaction ends (ModelAdmin.changeform_view is atomic):
        # save_model's call then finds what this check found, and a refusal is
        # an error on this form instead of a 500.
        activity = Activity.objects.select_for_update().get(pk=self.instance.activity_id)
        current = Application.objects.select_for_update().get(pk=self.instance.pk)
        reason = decision_refusal(activity, current, decision)
        if reason == ApplicationRefused.WITHDRAWN:
            raise ValidationError({"status": "粉丝已撤回这份申请，不能再审核。"})
        if reason == ApplicationRefused.FULL:
            raise ValidationError(
                {"status": f"活动名额已满（共 {activity.capacity} 个），不能通过这份申请。"}
            )


# Thumbnails on an application's page are shown this high, at most.
ADMIN_THUMBNAIL_HEIGHT = 96


def photo_rows_html(photos: Iterable[Photo]) -> str:
    """Return a table row per photo: its thumbnail, linking to the display copy, and facts.

    The images come from the photo URL, so the same access check applies to them.
    """
    rows = []
    for photo in photos:
        scale = min(1, ADMIN_THUMBNAIL_HEIGHT / max(photo.thumbnail_height, 1))
        rows.append(
            (
                photo_url(photo, "display"),
                photo_url(photo, "thumbnail"),
                round(photo.thumbnail_width * scale),
                round(photo.thumbnail_height * scale),
                photo.pk,
                f"{photo.width}×{photo.height}",
                filesizeformat(photo.display_bytes),
                filesizeformat(photo.original_bytes),
                photo.get_source_display(),
            )
        )
    return format_html_join(
        "",
        '<tr><td><a href="{}" target="_blank" rel="noopener">'
        '<img src="{}" width="{}" height="{}" alt="照片 {}"></a></td>'
        "<td>{}</td><td>{}（原图 {}）</td><td>{}</td></tr>",
        rows,
    )


class RejectForm(forms.Form):
    review_note = forms.CharField(
        label="审核说明",
        max_length=Application._meta.get_field("review_note").max_length,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="可不填；会展示给粉丝，最多 200 字。",
    )


@admin.register(Application)
class ApplicationAdmin(admin.ModelAdmin):
    # The paginator counts the filtered rows; a second count of the whole
    # table for "N total" costs as much again on a big table.
    show_full_result_count = False
    form = ApplicationForm
    list_display = [
        "avatar",
        "nickname",
        "name",
        "phone",
        "activity",
        "status",
        "created_at",
        "reviewed_at",
        "notification",
        "photo_count",
    ]
    list_display_links = ["name"]
    list_filter = ["activity", "status"]
    list_select_related = ["fan", "activity"]
    search_fields = ["name", "phone", "fan__nickname"]
    ordering = ["-created_at"]
    inlines = [NotificationInline]
    actions = ["approve", "reject", "export_xlsx", "export_csv"]
    fieldsets = [
        ("粉丝（来自微信）", {"fields": ["avatar", "nickname", "openid"]}),
        ("申请", {"fields": ["activity", "name", "phone", "note", "created_at"]}),
        ("审核", {"fields": ["status", "review_note", "reviewed_at"]}),
    ]
    # The fan's WeChat data comes from WeChat; the activity is what they applied to.
    readonly_fields = [
        "avatar",
        "nickname",
        "openid",
        "activity",
        "created_at",
        "reviewed_at",
        "photo_list",
    ]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .prefetch_related("notifications")
            .annotate(photo_count=Count("photos"))
        )

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        # The images would answer 403 to whoever may not see photos.
        if obj is not None and request.user.has_perm(VIEW_PERMISSION):
            fieldsets = [*fieldsets, ("照片", {"fields": ["photo_list"]})]
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        readonly = list(self.readonly_fields)
        if not self.has_review_permission(request) or (obj and obj.status == Status.WITHDRAWN):
            readonly += ["status", "review_note"]
        return readonly

    def has_add_permission(self, request) -> bool:
        # Fans apply themselves, from the activity's page.
        return False

    def has_review_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("activities.review_application")

    def has_export_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("activities.export_application")

    @admin.display(description="头像")
    def avatar(self, application: Application) -> str:
        return avatar_html(application.fan)

    @admin.display(description="微信昵称", ordering="fan__nickname")
    def nickname(self, application: Application) -> str:
        return application.fan.nickname

    @admin.display(description="OpenID")
    def openid(self, application: Application) -> str:
        return application.fan.openid

    @admin.display(description="通知")
    def notification(self, application: Application) -> str:
        return exports.notification_text(exports.latest_notification(application))

    @admin.display(description="照片", ordering="photo_count")
    def photo_count(self, application: Application) -> int:
        return application.photo_count

    @admin.display(description="照片（点击看大图）")
    def photo_list(self, application: Application) -> str:
        photos = application.photos.all()
        if not photos:
            return "无"
        return format_html(
            "<table><thead><tr><th>缩略图</th><th>尺寸</th><th>大小</th><th>来源</th></tr>"
            "</thead><tbody>{}</tbody></table>",
            photo_rows_html(photos),
        )

    def save_model(self, request, obj, form, change):
        # Only what the organiser changed is written, so that a decision
        # taken meanwhile (an action, another reviewer) is not overwritten.
        edited = [
            name for name in ("name", "phone", "note", "review_note") if name in form.changed_data
        ]
        if edited:
            obj.save(update_fields=[*edited, "updated_at"])
        if "status" in form.changed_data:
            # The service sets reviewed_at and queues the fan's template message.
            decided, _ = application_decide(
                application_id=obj.pk, decision=obj.status, review_note=obj.review_note
            )
            obj.status, obj.review_note = decided.status, decided.review_note
            obj.reviewed_at = decided.reviewed_at

    @admin.action(description="通过所选申请", permissions=["review"])
    def approve(self, request: HttpRequest, queryset: QuerySet[Application]) -> None:
        self._decide(request, queryset, Status.APPROVED)

    @admin.action(description="不通过所选申请", permissions=["review"])
    def reject(self, request: HttpRequest, queryset: QuerySet[Application]):
        """Ask for the note shown to the fans, then reject every selected application."""
        form = RejectForm(request.POST if "post" in request.POST else None)
        if form.is_valid():
            self._decide(request, queryset, Status.REJECTED, form.cleaned_data["review_note"])
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "不通过所选申请",
            "opts": self.opts,
            "queryset": queryset,
            "form": form,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "media": self.media,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(
            request, "admin/activities/application/reject_confirmation.html", context
        )

    def _decide(self, request, queryset, decision: str, review_note: str = "") -> None:
        tally = Counter()
        # The earliest applications get the last places.
        ids = queryset.prefetch_related(None).order_by("created_at", "pk")
        for application_id in ids.values_list("pk", flat=True):
            try:
                application, changed = application_decide(
                    application_id=application_id, decision=decision, review_note=review_note
                )
            except ApplicationRefused:
                tally["full"] += 1  # A decision is refused for no other reason.
                continue
            if changed:
                tally["changed"] += 1
                # Who decided, in the application's history, as the change page records it.
                self.log_change(request, application, f"批量操作：{Status(decision).label}")
            elif application.status == Status.WITHDRAWN:
                tally["withdrawn"] += 1
            else:
                tally["already"] += 1
        label = Status(decision).label
        parts = [f"{tally['changed']} 份申请改为{label}"]
        if tally["already"]:
            parts.append(f"{tally['already']} 份本来就是{label}")
        if tally["full"]:
            parts.append(f"{tally['full']} 份因活动名额已满未能通过")
        if tally["withdrawn"]:
            parts.append(f"{tally['withdrawn']} 份已被粉丝撤回，未处理")
        if tally["full"] or tally["withdrawn"]:
            level = messages.WARNING
        else:
            level = messages.SUCCESS if tally["changed"] else messages.INFO
        self.message_user(request, "；".join(parts) + "。", level)

    @admin.action(description="导出所选申请 Excel", permissions=["export"])
    def export_xlsx(self, request: HttpRequest, queryset: QuerySet[Application]) -> HttpResponse:
        return self._export(request, queryset, "xlsx")

    @admin.action(description="导出所选申请 CSV", permissions=["export"])
    def export_csv(self, request: HttpRequest, queryset: QuerySet[Application]) -> HttpResponse:
        return self._export(request, queryset, "csv")

    def _export(self, request, queryset, file_format: str) -> HttpResponse:
        applications = Application.objects.filter(pk__in=queryset.values("pk"))
        activity_ids = set(applications.values_list("activity_id", flat=True))
        return export_response(request, applications, file_format, activity_ids)


def export_response(
    request: HttpRequest,
    applications: QuerySet[Application],
    file_format: str,
    activity_ids: Iterable[int],
) -> HttpResponse:
    """Return the applications as an .xlsx or .csv download.

    The file is named after the activity when there is one, e.g.
    ``applications-3-2026-05-01.xlsx``, else ``applications-selected-...``.
    """
    applications = (
        applications.select_related("activity", "fan")
        .prefetch_related("notifications")
        .order_by("activity__created_at", "activity_id", "created_at", "pk")
    )
    rows = list(exports.application_rows(applications))
    if file_format == "xlsx":
        content, content_type = exports.xlsx_bytes(exports.HEADERS, rows), exports.XLSX_CONTENT_TYPE
    else:
        content, content_type = exports.csv_bytes(exports.HEADERS, rows), exports.CSV_CONTENT_TYPE
    activity_ids = set(activity_ids)
    label = str(next(iter(activity_ids))) if len(activity_ids) == 1 else "selected"
    today = timezone.localdate(timezone=exports.ORGANISER_TIME_ZONE)
    filename = f"applications-{label}-{today:%Y-%m-%d}.{file_format}"
    # Phone numbers and names leave the system here: record who took them.
    logger.info("%s exported %d applications as %s", request.user, len(rows), filename)
    return HttpResponse(
        content,
        content_type=content_type,
        headers={"Content-Disposition": content_disposition_header(True, filename)},
    )
