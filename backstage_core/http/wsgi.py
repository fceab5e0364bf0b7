"""WSGI entry points: a Django handler bound to a backend, which starts the backend beside the server.

    # settings/wsgi.py
    application = get_wsgi_application()

The server answers at once (readiness says 503) while the plugins start in the background; requests
to a plugin that has not started yet wait for it, as in Backstage.
"""

from __future__ import annotations

import functools
import gc
import logging
import os
import threading
from typing import Any

from django.core import signals
from django.core.handlers.wsgi import WSGIHandler, get_script_name
from django.http import HttpResponse
from django.urls import (
    LocalePrefixPattern,
    ResolverMatch,
    get_resolver,
    get_script_prefix,
    set_script_prefix,
    set_urlconf,
)
from django.utils.log import log_response

from backstage_core.services.definitions import core_services

__all__ = [
    "BackendWSGIHandler",
    "get_wsgi_application",
    "router_for_request",
    "start_in_background",
]

log = logging.getLogger("backstage.backend")
BACKEND_KEY = "backstage.backend"
ROUTER_KEY = "backstage.router"


def root_router(backend: Any) -> Any:
    """The backend's root HTTP router (cached on the backend)."""
    router = backend.__dict__.get("_root_http_router")
    if router is None:
        router = backend.get_service(core_services.root_http_router)
        backend.__dict__["_root_http_router"] = router
    return router


def router_for_request(request: Any) -> Any:
    """The root router of the backend serving ``request`` (the project's, outside a handler)."""
    router = request.environ.get(ROUTER_KEY)
    if router is None:
        from backstage_core.runtime import get_default_backend

        router = root_router(get_default_backend())
        request.environ[ROUTER_KEY] = router
    return router


RESOLVED_PATHS = 1024


@functools.lru_cache(maxsize=RESOLVED_PATHS)
def _resolve(resolver: Any, path: str) -> ResolverMatch:
    return resolver.resolve(path)


@functools.lru_cache(maxsize=16)
def _path_only(resolver: Any) -> bool:
    """Whether ``resolver`` resolves by the path alone: not with ``i18n_patterns``, whose match
    depends on the active language (Django allows them only in a root URL conf)."""
    return not any(isinstance(p.pattern, LocalePrefixPattern) for p in resolver.url_patterns)


class BackendWSGIHandler(WSGIHandler):
    """Django's WSGI handler, serving one backend's routes.

    It remembers how the last 1,024 paths resolved (per URL resolver: a plugin that mounts its
    routes clears Django's URL caches, which gives a new one), so a request to a path seen before
    skips Django's walk through the URL patterns (a tenth of a create's time). Each request gets
    a match of its own, with its own ``kwargs``.
    """

    def __init__(self, backend: Any, urlconf: Any = None) -> None:
        super().__init__()
        self.backend = backend
        self.router = root_router(backend)
        self.urlconf = urlconf

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        """Django's ``WSGIHandler.__call__``, but for two things that cost 3 % of a create's
        instructions: the thread's script prefix is set only when it changes (setting one writes a
        thread-local, as Django does on every request), and the response's headers go to the
        server as Django's ``ResponseHeaders`` holds them (``response.items()`` looks each one
        up again by its lowercase name)."""
        environ[BACKEND_KEY] = self.backend
        environ[ROUTER_KEY] = self.router
        prefix = get_script_name(environ)
        if not prefix.endswith("/"):
            prefix += "/"
        if get_script_prefix() != prefix:
            set_script_prefix(prefix)
        signals.request_started.send(sender=self.__class__, environ=environ)
        request = self.request_class(environ)
        response = self.get_response(request)
        response._handler_class = self.__class__
        status = f"{response.status_code} {response.reason_phrase}"
        store = getattr(response.headers, "_store", None)
        headers = list(store.values()) if type(store) is dict else list(response.items())
        if response.cookies:
            headers += [("Set-Cookie", c.output(header="")) for c in response.cookies.values()]
        start_response(status, headers)
        if getattr(response, "file_to_stream", None) is not None and environ.get(
            "wsgi.file_wrapper"
        ):
            # As Django: the server closes the file wrapper, which closes the response.
            response.file_to_stream.close = response.close
            return environ["wsgi.file_wrapper"](response.file_to_stream, response.block_size)
        if isinstance(response, HttpResponse):
            # A body already in memory goes back as a list: the server sends it in one piece
            # instead of iterating the response (granian hands an iterator to another thread).
            # The response is closed here, as the server would close it (request_finished).
            try:
                return [response.content]
            finally:
                response.close()
        return response

    def get_response(self, request: Any) -> Any:
        """Django's ``get_response``, without first setting the thread's URL conf to
        ``ROOT_URLCONF``: with none set, URLs resolve and reverse by ``ROOT_URLCONF`` just the same
        (the thread-local write is 3 % of a create's time)."""
        if self.urlconf is not None:
            request.urlconf = self.urlconf
        response = self._middleware_chain(request)
        response._resource_closers.append(request.close)
        if response.status_code >= 400:
            log_response(
                "%s: %s", response.reason_phrase, request.path, response=response, request=request
            )
        return response

    def resolve_request(self, request: Any) -> ResolverMatch:
        """Django's ``resolve_request``, through the cache of resolved paths."""
        if hasattr(request, "urlconf"):
            urlconf = request.urlconf
            set_urlconf(urlconf)
            resolver = get_resolver(urlconf)
        else:
            resolver = get_resolver()
        if not _path_only(resolver):
            match = resolver.resolve(request.path_info)
        else:
            match = _copy(_resolve(resolver, request.path_info))
        request.resolver_match = match
        return match


def _copy(match: ResolverMatch) -> ResolverMatch:
    """A match like ``match`` that a request may change (its kwargs are its own)."""
    copy = ResolverMatch.__new__(ResolverMatch)
    copy.__dict__.update(match.__dict__)
    copy.kwargs = dict(match.kwargs)
    return copy


def start_in_background(backend: Any, *, exit_on_failure: bool = True) -> threading.Thread:
    """Start ``backend`` in a thread; a failed start ends the process with status 1, as Backstage's."""

    def run() -> None:
        try:
            backend.start()
            # Everything loaded so far lives as long as the process: keep it out of the garbage
            # collector's way, so collections only walk what requests allocate (shorter pauses).
            gc.collect()
            gc.freeze()
        except Exception as error:
            log.error("Backend failed to start: %s", error, exc_info=error)
            if exit_on_failure:
                logging.shutdown()
                os._exit(1)

    thread = threading.Thread(target=run, name="backstage-start", daemon=True)
    thread.start()
    return thread


def get_wsgi_application(backend: Any = None, *, start: bool = True) -> BackendWSGIHandler:
    """The WSGI application for ``backend`` (the project's by default), started in the background."""
    import django
    from django.apps import apps

    if not apps.ready:  # a worker of `manage.py serve` has it set up already (logging and all)
        django.setup(set_prefix=False)
    if backend is None:
        from backstage_core.runtime import get_default_backend

        backend = get_default_backend()
    handler = BackendWSGIHandler(backend)
    if start:
        from backstage_core.process import stop_at_exit

        stop_at_exit(backend)  # the server owns the signals; the hooks run as its workers exit
        start_in_background(backend)
    return handler
