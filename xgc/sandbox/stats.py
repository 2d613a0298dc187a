"""What benchmarks ask the sandbox: API calls by endpoint and new connections.

Counts live in the cache, so that every sandbox process adds to the same ones
when REDIS_URL is set. A connection is new the first time an API call comes
from its client address and port (gunicorn passes REMOTE_PORT; runserver does
not, and its calls are not counted as connections).
"""

from __future__ import annotations

from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

CALLS_KEY = "sandbox:calls:{}"
NEW_CONNECTIONS_KEY = "sandbox:new-connections"
PEER_KEY = "sandbox:peer:{}:{}"
# Longer than any benchmark; a client port is not reused while it is open.
PEER_SECONDS = 3600


def _count(key: str) -> None:
    try:
        cache.incr(key)
    except ValueError:  # the first count since a reset
        if not cache.add(key, 1, timeout=None):
            cache.incr(key)


def record_call(endpoint: str, request: HttpRequest) -> None:
    """Count an API call to endpoint (a view name), and its connection if new."""
    _count(CALLS_KEY.format(endpoint))
    port = request.META.get("REMOTE_PORT")
    if port and cache.add(PEER_KEY.format(request.META["REMOTE_ADDR"], port), 1, PEER_SECONDS):
        _count(NEW_CONNECTIONS_KEY)


def api_routes() -> dict[str, str]:
    """Return {route: view name} for every API endpoint, e.g. sns/userinfo."""
    from .urls import urlpatterns

    return {
        str(pattern.pattern): pattern.callback.__name__
        for pattern in urlpatterns
        if getattr(pattern.callback, "wechat_api", False)
    }


# Benchmarks read and reset the counts without a CSRF token; the sandbox only
# ever runs while developing (see sandbox.E001).
@csrf_exempt
@require_http_methods(["GET", "POST"])
def stats(request: HttpRequest) -> JsonResponse:
    """Show API calls by route and new connections; a POST then starts again at 0.

    Connections already seen stay known, so that after a reset only
    connections opened since count as new.
    """
    keys = {route: CALLS_KEY.format(name) for route, name in api_routes().items()}
    counts = cache.get_many([*keys.values(), NEW_CONNECTIONS_KEY])
    if request.method == "POST":
        cache.delete_many([*keys.values(), NEW_CONNECTIONS_KEY])
    return JsonResponse(
        {
            "calls": {route: counts.get(key, 0) for route, key in keys.items()},
            "new_connections": counts.get(NEW_CONNECTIONS_KEY, 0),
        }
    )


def ping(request: HttpRequest) -> HttpResponse:
    """Answer at once: a benchmark's floor for a request to WeChat."""
    return HttpResponse(b"ok", content_type="text/plain")
