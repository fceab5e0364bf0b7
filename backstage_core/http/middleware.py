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

import base64
import hashlib
from collections.abc import Callable
from typing import Any

from django.contrib.auth.middleware import (
    AuthenticationMiddleware as DjangoAuthenticationMiddleware,
)
from django.contrib.messages.middleware import MessageMiddleware as DjangoMessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware as DjangoSessionMiddleware
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import CsrfViewMiddleware as DjangoCsrfViewMiddleware
from django.middleware.http import ConditionalGetMiddleware as DjangoConditionalGetMiddleware

from backstage_core.http.errors import error_response
from backstage_core.http.wsgi import router_for_request

__all__ = [
    "AuthenticationMiddleware",
    "ConditionalGetMiddleware",
    "CsrfViewMiddleware",
    "MessageMiddleware",
    "PluginChainMiddleware",
    "SecurityHeadersMiddleware",
    "SessionMiddleware",
    "express_etag",
]


def express_etag(content: bytes) -> str:
    """Express's weak ETag of a body: ``W/"<length hex>-<sha1, base64, 27 chars>"``."""
    digest = base64.b64encode(hashlib.sha1(content, usedforsecurity=False).digest())
    return f'W/"{len(content):x}-{digest[:27].decode()}"'


class ConditionalGetMiddleware(DjangoConditionalGetMiddleware):
    """Django's conditional GETs (304 for a matching ``If-None-Match``), with the ETag Express
    sends: the same value for the same body as the Backstage backend, and a cheaper hash than
    Django's MD5."""

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if request.method != "GET":
            return response
        if not response.streaming and response.content and not response.has_header("ETag"):
            if self.needs_etag(response):
                response.headers["ETag"] = express_etag(response.content)
        meta = request.META
        if "HTTP_IF_NONE_MATCH" not in meta and "HTTP_IF_MODIFIED_SINCE" not in meta:
            return response  # nothing to compare: the answer is the response itself
        return super().process_response(request, response)


class _DjangoViewsOnly:
    """Passes plugin API requests by: they authenticate with tokens, not sessions and CSRF
    cookies, and run no Django messages. The admin and other Django views get the full middleware."""

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if getattr(request, "backstage_api", False):
            return self.get_response(request)  # type: ignore[attr-defined]
        return super().__call__(request)  # type: ignore[misc]


class SessionMiddleware(_DjangoViewsOnly, DjangoSessionMiddleware):
    pass


class CsrfViewMiddleware(_DjangoViewsOnly, DjangoCsrfViewMiddleware):
    def process_view(self, request: HttpRequest, callback: Any, args: Any, kwargs: Any) -> Any:
        if getattr(request, "backstage_api", False):
            return None
        return super().process_view(request, callback, args, kwargs)


class AuthenticationMiddleware(_DjangoViewsOnly, DjangoAuthenticationMiddleware):
    pass


class MessageMiddleware(_DjangoViewsOnly, DjangoMessageMiddleware):
    pass


class SecurityHeadersMiddleware:
    """Adds the backend's security headers (CSP, HSTS, nosniff, ...) to every response."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        headers = response.headers
        router = router_for_request(request)
        store = getattr(headers, "_store", None)
        entries = getattr(router, "security_header_entries", None)
        if type(store) is dict and entries is not None:
            # Straight into the mapping (keyed by lowercase name): the checks and encoding that
            # setting a header does (a tenth of a readiness check's time) were done once.
            for key, entry in entries:
                if key not in store:
                    store[key] = entry
        else:
            for name, value in router.security_headers:
                if name not in headers:
                    headers[name] = value
        return response


HEALTH_PREFIX = "/.backstage/health/"


class PluginChainMiddleware:
    """The request gate, the credentials barrier and the error envelope for plugin requests."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path_info
        router = router_for_request(request)
        mount = router.find_mount(path)
        if mount is None:
            if path.startswith(HEALTH_PREFIX):
                request.backstage_api = True  # type: ignore[attr-defined]
                return self.get_response(request)
            if router.starting:
                # Its plugin may not have mounted yet: wait, as for a plugin that is starting.
                try:
                    router.start_gate.check()
                except Exception as exc:
                    return error_response(request, exc, logger=router.logger, show_stack=False)
                mount = router.find_mount(path)
            if mount is None:
                return self.get_response(request)
        request.backstage_api = True  # type: ignore[attr-defined]
        request.backstage_mount = mount  # type: ignore[attr-defined]
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
