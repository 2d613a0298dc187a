"""Security middleware and helpers: the Content-Security-Policy, and who is asking."""

import csp.middleware

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase

# Answers whose body no browser renders: it follows the Location instead.
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


class CSPMiddleware(csp.middleware.CSPMiddleware):
    """django-csp's middleware, except on redirects.

    A policy protects the document a browser renders, and a redirect renders
    none. django-csp builds the header from settings on every response,
    about a quarter of a trivial request's CPU, and two of the three
    requests of a returning fan's sign-in are redirects.
    """

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        if response.status_code in REDIRECT_STATUSES:
            return response
        return super().process_response(request, response)


def client_ip(request: HttpRequest) -> str:
    """Return the client's address; behind a trusted proxy, the one it saw.

    The proxy appends the address it saw to X-Forwarded-For, so the last entry
    is the only one a client cannot forge.
    """
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if settings.TRUST_X_FORWARDED and forwarded:
        return forwarded.rsplit(",", 1)[-1].strip()
    return request.META.get("REMOTE_ADDR", "")
