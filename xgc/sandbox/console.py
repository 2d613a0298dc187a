"""The sandbox's own pages: its index and the fault-injection control."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from .api import Faults
from .messages import TEMPLATE_CATALOGUE
from .models import Menu, SandboxFan, SandboxMedia, SandboxMessage
from .oauth import phone_holder
from .push import server_url

FAULT_FIELDS = {
    "latency_ms": (int, 0, 60_000),
    "error_share": (float, 0.0, 1.0),
    "hang_share": (float, 0.0, 1.0),
    "hang_seconds": (float, 0.0, 300.0),
}


def index(request: HttpRequest) -> HttpResponse:
    context = {
        "fans": SandboxFan.objects.all(),
        "holder": phone_holder(request),
        "faults": Faults.current(),
        "menu": Menu.objects.first(),
        "templates": TEMPLATE_CATALOGUE.values(),
        "message_count": SandboxMessage.objects.count(),
        "media_count": SandboxMedia.objects.count(),
        # What WeChat's 服务器配置 would hold: the sandbox signs its pushes with it.
        "server_url": server_url(),
        "token": settings.TOKEN,
    }
    return render(request, "sandbox/index.html", context)


# Scripts and benchmarks set faults without a CSRF token; the sandbox only
# ever runs while developing (see sandbox.E001).
@csrf_exempt
@require_http_methods(["GET", "POST"])
def faults(request: HttpRequest) -> JsonResponse:
    """Show or change the latency and failures added to API calls.

    POST form fields: latency_ms, error_share, hang_share, hang_seconds.
    """
    current = Faults.current()
    if request.method == "POST":
        for name, (kind, low, high) in FAULT_FIELDS.items():
            if name not in request.POST:
                continue
            try:
                value = kind(request.POST[name])
            except ValueError:
                value = None
            if value is None or not low <= value <= high:
                return JsonResponse(
                    {"error": f"{name} must be between {low} and {high}"}, status=400
                )
            setattr(current, name, value)
        current.save()
    return JsonResponse({name: getattr(current, name) for name in FAULT_FIELDS})
