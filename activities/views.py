"""Fan pages: the activities, the application form, and the fan's applications.

Every page is the signed-in fan's own: ``fan_required`` and ``never_cache``.
An activity or application a fan may not see is "not found", whatever its id.
"""

from __future__ import annotations

from django.db.models import Case, F, When
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from fans.auth import fan_required
from fans.jssdk import jssdk_script_url
from fans.views import message

from . import services
from .forms import ApplicationForm
from .models import Activity, Application, Photo, accepting_applications, with_places_taken
from .services import ApplicationRefused

# Each refusal's page: status, title, explanation.
REFUSALS = {
    ApplicationRefused.NOT_PUBLISHED: (404, "活动不存在", "这个活动不存在或已下线。"),
    ApplicationRefused.CLOSED: (403, "报名已截止", "这个活动已停止接受申请。"),
    ApplicationRefused.FULL: (409, "名额已满", "这个活动的名额已经报满了，有人撤回后会空出名额。"),
    ApplicationRefused.DECIDED: (409, "申请已审核", "你的申请已经审核，不能再修改。"),
}


def published_activities():
    return with_places_taken(Activity.objects.filter(published=True))


def apply_refusal(activity: Activity, application: Application | None) -> str | None:
    """Return why the fan cannot apply, to say so before they type.

    ``activity`` must come from with_places_taken().
    """
    return services.refusal(activity, application, places_taken=activity.places_taken_count)


def own_application(request: HttpRequest, pk: int) -> Application | None:
    """Return the signed-in fan's application pk; another fan's is None, like a missing one."""
    applications = Application.objects.select_related("activity")
    return applications.filter(pk=pk, fan=request.fan).first()


def refused(request: HttpRequest, reason: str, application: Application | None) -> HttpResponse:
    status, title, text = REFUSALS[reason]
    if application is not None and reason == ApplicationRefused.DECIDED:
        link = format_html(
            '{} <a href="{}">查看我的申请</a>',
            text,
            reverse("application-detail", args=[application.pk]),
        )
    else:
        link = format_html('{} <a href="{}">看看其他活动</a>', text, reverse("activity-list"))
    return message(request, title=title, text=link, status=status)


def not_found(request: HttpRequest, what: str) -> HttpResponse:
    text = format_html('{} <a href="{}">看看其他活动</a>', what, reverse("activity-list"))
    return message(request, title="没有找到", text=text, status=404)


@never_cache
@require_GET
@fan_required
def activity_list(request: HttpRequest) -> HttpResponse:
    """List published activities, open ones first, with this fan's status on each."""
    is_open = accepting_applications(timezone.now())
    activities = (
        published_activities()
        .annotate(is_open=Case(When(is_open, then=True), default=False))
        .order_by(
            "-is_open",
            # Open: the soonest first; closed: the latest first.
            Case(When(is_open, then=F("starts_at"))).asc(nulls_last=True),
            F("starts_at").desc(nulls_last=True),
            "-created_at",
        )
    )
    mine = {a.activity_id: a for a in Application.objects.filter(fan=request.fan)}
    rows = [(activity, mine.get(activity.pk)) for activity in activities]
    return render(request, "activities/activity_list.html", {"rows": rows})


@never_cache
@require_GET
@fan_required
def activity_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """Show one published activity and what this fan can do about it."""
    activity = published_activities().filter(pk=pk).first()
    if activity is None:
        return not_found(request, "这个活动不存在或已下线。")
    application = Application.objects.filter(activity=activity, fan=request.fan).first()
    context = {
        "activity": activity,
        "application": application,
        "refusal": apply_refusal(activity, application),
    }
    return render(request, "activities/activity_detail.html", context)


@never_cache
@require_http_methods(["GET", "POST"])
@fan_required
def activity_apply(request: HttpRequest, pk: int) -> HttpResponse:
    """Show the application form; on POST submit it, then show the application."""
    activity = published_activities().filter(pk=pk).first()
    if activity is None:
        return refused(request, ApplicationRefused.NOT_PUBLISHED, None)
    application = Application.objects.filter(activity=activity, fan=request.fan).first()
    photo_limit = Photo.MAX_PER_APPLICATION - (application.photos.count() if application else 0)
    if request.method == "POST":
        form = ApplicationForm(request.POST, request.FILES, photo_limit=photo_limit)
        if form.is_valid():
            response = submit(request, activity, form)
            if response is not None:
                return response
    else:
        reason = apply_refusal(activity, application)
        if reason:
            return refused(request, reason, application)
        form = ApplicationForm(initial=prefill(request.fan, application), photo_limit=photo_limit)
    editing = application is not None and application.status == Application.Status.PENDING
    context = {
        "activity": activity,
        "application": application,
        "form": form,
        "editing": editing,
        "photo_limit": photo_limit,
        "media_ids": form.cleaned_data.get("media_id", []) if form.is_bound else [],
        "jssdk_script": jssdk_script_url(),
        "jssdk_config_url": reverse("wechat-jssdk-config"),
    }
    return render(request, "activities/apply.html", context)


def submit(request: HttpRequest, activity: Activity, form: ApplicationForm) -> HttpResponse | None:
    """Receive the photos and submit; return where to go, or None to show the form's errors."""
    data = dict(form.cleaned_data)
    uploads, media_ids = data.pop("photos"), data.pop("media_id")
    try:
        photos = services.photos_receive(uploads=uploads, media_ids=media_ids)
        application = services.application_submit(
            activity_id=activity.pk, fan=request.fan, photos=photos, **data
        )
    except services.PhotoProblem as problem:
        # Keep the WeChat photos that did arrive; the fan chooses the others again.
        form.cleaned_data["media_id"] = [i for i in media_ids if i != problem.media_id]
        form.add_error("photos", problem.message)
        return None
    except ApplicationRefused as refusal:
        if refusal.reason == ApplicationRefused.TOO_MANY_PHOTOS:
            form.add_error("photos", f"一份申请最多 {Photo.MAX_PER_APPLICATION} 张照片")
            return None
        application = Application.objects.filter(activity=activity, fan=request.fan).first()
        if refusal.reason == ApplicationRefused.DECIDED and same_answers(application, data):
            # A resent POST (a double tap, a refresh) of what was approved at once.
            return redirect("application-detail", application.pk)
        return refused(request, refusal.reason, application)
    return redirect("application-detail", application.pk)


def same_answers(application: Application | None, data: dict) -> bool:
    return application is not None and all(getattr(application, k) == v for k, v in data.items())


def prefill(fan, application: Application | None) -> dict:
    """Return the form's first values: the application being edited, else the last one."""
    if application is not None and application.status == Application.Status.PENDING:
        return {"name": application.name, "phone": application.phone, "note": application.note}
    last = Application.objects.filter(fan=fan).order_by("-created_at").first()
    return {"name": last.name, "phone": last.phone} if last else {}


@never_cache
@require_GET
@fan_required
def application_list(request: HttpRequest) -> HttpResponse:
    """List this fan's applications, newest first."""
    applications = (
        Application.objects.filter(fan=request.fan)
        .select_related("activity")
        .order_by("-created_at")
    )
    return render(request, "activities/application_list.html", {"applications": applications})


@never_cache
@require_GET
@fan_required
def application_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """Show one of this fan's applications: its status and what was submitted."""
    application = own_application(request, pk)
    if application is None:
        return not_found(request, "没有找到这份申请。")
    reapply = (
        application.status == Application.Status.WITHDRAWN
        and application.activity.accepts_applications()
    )
    context = {"application": application, "activity": application.activity, "reapply": reapply}
    return render(request, "activities/application_detail.html", context)


@never_cache
@require_http_methods(["GET", "POST"])
@fan_required
def application_withdraw(request: HttpRequest, pk: int) -> HttpResponse:
    """Ask to confirm; on POST withdraw the application, freeing its place."""
    application = own_application(request, pk)
    if application is None:
        return not_found(request, "没有找到这份申请。")
    if request.method == "POST":
        services.application_withdraw(application_id=application.pk, fan=request.fan)
        return redirect("application-detail", application.pk)
    if not application.holds_place:
        # Nothing to withdraw: already withdrawn or rejected.
        return redirect("application-detail", application.pk)
    context = {"application": application, "activity": application.activity}
    return render(request, "activities/withdraw.html", context)
