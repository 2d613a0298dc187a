"""Template tags of activities, for pages outside the app (the fan's home)."""

from __future__ import annotations

from django import template

from activities.models import Activity, Application

register = template.Library()


@register.inclusion_tag("activities/fan_applications.html")
def fan_applications(fan, limit: int = 3) -> dict:
    """Render the fan's latest applications and the links to activities."""
    # What the list shows, no more: every fan page pays for compiling and
    # converting each column, and the fan's phone number has no business here.
    applications = (
        Application.objects.filter(fan=fan)
        .select_related("activity")
        .only("status", "activity__title")
        .order_by("-created_at")
    )
    return {"applications": list(applications[:limit])}


@register.filter
def places_left(activity: Activity) -> int | None:
    """Return the free places of an activity from with_places_taken(); None: no limit."""
    return activity.places_left(activity.places_taken_count)
