"""Middleware: security headers on every response, and each plugin's chain in front of its routes.

    MIDDLEWARE = [
        "backstage_core.http.middleware.SecurityHeadersMiddleware",
        "corsheaders.middleware.CorsMiddleware",          # when backend.cors is set
        "backstage_core.http.middleware.PluginChainMiddleware",
        ...Django's session, CSRF, auth and messages middleware for the admin...
    ]

For a request under a plugin's path, :class:`PluginChainMiddleware` runs the plugin's request gate
and credentials barrier before any routing, and turns any exception the plugin's view raises into
Backstage's error envelope.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse

from backstage_core.http.wsgi import router_for_request

__all__ = ["PluginChainMiddleware", "SecurityHeadersMiddleware"]


class SecurityHeadersMiddleware:
    """Adds the backend's security headers (CSP, HSTS, nosniff, ...) to every response."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        headers = response.headers
        for name, value in router_for_request(request).security_headers:
            if name not in headers:
                headers[name] = value
        return response


class PluginChainMiddleware:
    """The request gate, the credentials barrier and the error envelope for plugin requests."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        mount = router_for_request(request).find_mount(request.path_info)
        if mount is None:
            return self.get_response(request)
        request.backstage_mount = mount  # type: ignore[attr-defined]
        request.backstage_errors = lambda exc: mount.error_response(request, exc)  # type: ignore[attr-defined]
        # Plugin APIs authenticate with tokens, not session cookies: Django's CSRF check is not theirs.
        request._dont_enforce_csrf_checks = True  # type: ignore[attr-defined]
        try:
            mount.guard(request)
        except Exception as exc:
            return mount.error_response(request, exc)
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        mount: Any = getattr(request, "backstage_mount", None)
        return mount.error_response(request, exception) if mount is not None else None
