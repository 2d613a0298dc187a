"""Who is asking, as far as xgc can tell: for the admin's login limits."""

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str:
    """Return the client's address; behind a trusted proxy, the one it saw.

    The proxy appends the address it saw to X-Forwarded-For, so the last entry
    is the only one a client cannot forge.
    """
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if settings.TRUST_X_FORWARDED and forwarded:
        return forwarded.rsplit(",", 1)[-1].strip()
    return request.META.get("REMOTE_ADDR", "")
