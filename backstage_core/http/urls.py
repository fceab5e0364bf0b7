"""The URL-conf generator: Django URL patterns made from what the backend has mounted.

    # settings/urls.py
    urlpatterns = backend_urlpatterns(backend, extra=[path("admin/", admin.site.urls)])

The patterns are live: a plugin that mounts its routes while the backend starts is routable as
soon as it has. Health endpoints come first, then every root route and plugin mount, then
``extra``; anything else is a 404 with an empty body, as Backstage answers.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, URLResolver, path, re_path
from django.views.decorators.csrf import csrf_exempt

from backstage_core.http.errors import json_response
from backstage_core.services.definitions import core_services

__all__ = ["BackendURLConf", "backend_urlpatterns", "not_found"]


@csrf_exempt  # nothing here acts on the request: a POST to no route is a 404, not a CSRF 403
def not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """404 with an empty body and no content type, as Express's ``res.status(404).end()``."""
    response = HttpResponse(status=404)
    del response["Content-Type"]
    return response


class BackendURLPatterns(Sequence[URLPattern | URLResolver]):
    """A live list of URL patterns, rebuilt whenever the backend's root router changes."""

    def __init__(self, backend: Any, extra: Sequence[URLPattern | URLResolver] = ()) -> None:
        self.backend = backend
        self.extra = list(extra)
        self._version = -1
        self._patterns: list[URLPattern | URLResolver] = []
        self._lock = threading.Lock()

    def _router(self) -> Any:
        router = self.__dict__.get("_root_router")
        if router is None:  # once: asking the backend for a service is not free
            router = self.__dict__["_root_router"] = self.backend.get_service(
                core_services.root_http_router
            )
        return router

    def _current(self) -> list[URLPattern | URLResolver]:
        router = self._router()
        if router.version != self._version:
            with self._lock:
                if router.version != self._version:
                    version = router.version
                    self._patterns = [
                        *self._health_patterns(router),
                        *router.url_patterns(),
                        *self.extra,
                        re_path(r"", not_found, name="backstage-not-found"),
                    ]
                    self._version = version
        return self._patterns

    @staticmethod
    def _health_patterns(router: Any) -> list[URLPattern]:
        health = router.health

        def respond(status_and_body: tuple[int, dict[str, Any]]) -> HttpResponse:
            status, body = status_and_body
            response = json_response(body, status)
            for name, value in router.health_headers:
                response[name] = value
            return response

        def liveness(request: HttpRequest) -> HttpResponse:
            return respond(health.get_liveness())

        def readiness(request: HttpRequest) -> HttpResponse:
            request.backstage_quiet = True  # type: ignore[attr-defined] - a 503 here is not an error
            return respond(health.get_readiness())

        return [
            path(".backstage/health/v1/liveness", liveness, name="backstage-liveness"),
            path(".backstage/health/v1/readiness", readiness, name="backstage-readiness"),
        ]

    def __iter__(self) -> Iterator[URLPattern | URLResolver]:
        return iter(self._current())

    def __len__(self) -> int:
        return len(self._current())

    def __getitem__(self, index: Any) -> Any:
        return self._current()[index]


class BackendURLConf:
    """A URL conf object (what ``request.urlconf`` may hold) for one backend."""

    def __init__(self, backend: Any, extra: Sequence[URLPattern | URLResolver] = ()) -> None:
        self.urlpatterns = BackendURLPatterns(backend, extra)


def backend_urlpatterns(
    backend: Any, extra: Sequence[URLPattern | URLResolver] = ()
) -> BackendURLPatterns:
    """The live URL patterns of ``backend``, for a project's ``urls.py``."""
    return BackendURLPatterns(backend, extra)
