"""The HTTP router services: each plugin's routes mounted at ``/api/<pluginId>``, behind its chain.

    http_router.use(router)                       # a DRF router, URL patterns or a urlconf module
    http_router.add_auth_policy(path="/health", allow="unauthenticated")

Each plugin's chain, as Backstage's: a request gate that holds requests until the plugin has
started (503 after ``backend.lifecycle.startupRequestPauseTimeout``, 5 s) and refuses them once it
is shutting down; the credentials barrier (401 ``Missing credentials`` unless a policy opens the
path); the plugin's routes; one error handler writing Backstage's error envelope.
"""

from __future__ import annotations

import asyncio
import functools
import re
import threading
from collections.abc import Callable, Sequence
from datetime import timedelta
from importlib import import_module
from typing import Any

from django.urls import URLPattern, URLResolver, clear_url_caches, include, re_path
from django.urls.resolvers import RoutePattern

from backstage_core.config.duration import read_duration_from_config
from backstage_core.environment import is_development
from backstage_core.errors import ServiceUnavailableError
from backstage_core.http.errors import error_response
from backstage_core.http.headers import security_headers
from backstage_core.http.policies import normalize_path, path_policy_predicate
from backstage_core.services.definitions import core_services
from backstage_core.wiring.features import ServiceFactory, create_service_factory

__all__ = [
    "CredentialsBarrier",
    "HttpRouter",
    "PluginMount",
    "RequestGate",
    "RootHttpRouter",
    "as_patterns",
    "http_router_factory",
    "root_http_router_factory",
]

Patterns = list[URLPattern | URLResolver]
DEFAULT_STARTUP_PAUSE = timedelta(seconds=5)
JWKS_PATH = "/.backstage/auth/v1/jwks.json"
COOKIE_PATH = "/.backstage/auth/v1/cookie"


def default_get_path(plugin_id: str) -> str:
    return f"/api/{plugin_id}"


def as_patterns(urls: Any) -> Patterns:
    """URL patterns from a DRF router, a list of patterns, a urlconf module (or its path), or a view."""
    if isinstance(urls, str):
        urls = import_module(urls)
    if hasattr(urls, "urls") and not callable(urls.urls):
        return list(urls.urls)
    if hasattr(urls, "urlpatterns"):
        return list(urls.urlpatterns)
    if isinstance(urls, list | tuple):
        return list(urls)
    if callable(urls):
        return [re_path(r"^.*$", urls)]
    raise TypeError(f"Can not mount {urls!r}: expected URL patterns, a router or a view")


class RequestGate:
    """Holds a plugin's requests until it is up; refuses them when it is down."""

    def __init__(self, timeout: timedelta) -> None:
        self.timeout = timeout.total_seconds()
        self.state = "init"
        self._condition = threading.Condition()

    def set_state(self, state: str) -> None:
        with self._condition:
            self.state = state
            self._condition.notify_all()

    def check(self) -> None:
        if self.state == "up":
            return
        if self.state == "init":
            with self._condition:
                self._condition.wait_for(lambda: self.state != "init", timeout=self.timeout)
            if self.state == "up":
                return
            if self.state == "init":
                raise ServiceUnavailableError("Service has not started up yet")
        raise ServiceUnavailableError("Service is shutting down")


class CredentialsBarrier:
    """Denies by default: a request needs user or service credentials unless a policy opens its path."""

    def __init__(self, http_auth: Any, disabled: bool) -> None:
        self._http_auth = http_auth
        self.disabled = disabled
        self._unauthenticated: list[Callable[[str], bool]] = []
        self._cookie: list[Callable[[str], bool]] = []

    def add_auth_policy(self, path: str, allow: str) -> None:
        if allow == "unauthenticated":
            self._unauthenticated.append(path_policy_predicate(path))
        elif allow == "user-cookie":
            self._cookie.append(path_policy_predicate(path))
        else:
            raise ValueError("Invalid auth policy")

    @staticmethod
    def _covers(predicates: list[Callable[[str], bool]], path: str) -> bool:
        """A policy covers a path only if it covers both its raw and its normalized spelling."""
        normalized = normalize_path(path)
        return any(p(path) and p(normalized) for p in predicates)

    def check(self, request: Any, path: str) -> None:
        if self.disabled or self._covers(self._unauthenticated, path):
            return
        allow_cookie = self._covers(self._cookie, path)
        self._http_auth.credentials(
            request, allow=["user", "service"], allow_limited_access=allow_cookie
        )


class PluginMount:
    """One plugin's place in the root router: its path, routes, gate, barrier and error handler."""

    def __init__(
        self, plugin_id: str, path: str, barrier: CredentialsBarrier, gate: RequestGate, logger: Any
    ) -> None:
        self.plugin_id = plugin_id
        self.path = path.rstrip("/")
        self.barrier = barrier
        self.gate = gate
        self.logger = logger
        self.patterns: Patterns = []
        self.show_stack = is_development()

    def relative_path(self, path_info: str) -> str:
        return path_info[len(self.path) :] or "/"

    def guard(self, request: Any) -> None:
        """The chain before the routes: the request gate, then the credentials barrier."""
        self.gate.check()
        self.barrier.check(request, self.relative_path(request.path_info))

    def error_response(self, request: Any, exc: BaseException) -> Any:
        return error_response(
            request, exc, logger=self.logger, show_stack=self.show_stack, mount_path=self.path
        )


class HttpRouter:
    """A plugin's HTTP router service."""

    def __init__(self, mount: PluginMount, root: RootHttpRouter) -> None:
        self._mount = mount
        self._root = root

    @property
    def path(self) -> str:
        return self._mount.path

    def use(self, urls: Any) -> None:
        """Add routes, relative to the plugin's path."""
        self._mount.patterns.extend(as_patterns(urls))
        self._root.changed()

    def add_auth_policy(
        self,
        policy: dict[str, str] | None = None,
        *,
        path: str | None = None,
        allow: str | None = None,
    ) -> None:
        """Open ``path`` (and what is under it) to ``allow``: 'unauthenticated' or 'user-cookie'."""
        if policy is not None:
            path, allow = policy.get("path"), policy.get("allow")
        if not path or not allow:
            raise ValueError("An auth policy needs a path and an allow")
        self._mount.barrier.add_auth_policy(path, allow)


def auth_integration_urls(auth: Any, http_auth: Any) -> Patterns:
    """Routes every plugin has: its public keys (open to all) and the user cookie."""
    from django.http import HttpResponse
    from django.urls import path

    from backstage_core.http.errors import json_response
    from backstage_core.http.urls import not_found

    def jwks(request: Any) -> Any:
        if request.method != "GET":
            return not_found(request)
        return json_response(auth.list_public_service_keys())

    def cookie(request: Any) -> Any:
        if request.method == "GET":
            response = HttpResponse(status=200)
            expires_at = http_auth.issue_user_cookie(request, response)
            body = json_response({"expiresAt": iso_timestamp(expires_at)})
            for name, value in response.cookies.items():
                body.cookies[name] = value
            return body
        if request.method == "DELETE":
            response = HttpResponse(status=204)
            del response["Content-Type"]
            http_auth.issue_user_cookie(request, response, credentials=auth.get_none_credentials())
            return response
        return not_found(request)

    return [
        path(JWKS_PATH.lstrip("/"), jwks, name="auth-jwks"),
        path(COOKIE_PATH.lstrip("/"), cookie, name="auth-cookie"),
    ]


def iso_timestamp(moment: Any) -> str:
    from backstage_core.auth.plugin_keys import iso_ms

    return iso_ms(moment)


def _normalize_root_path(path: str) -> str:
    return f"{path.rstrip('/')}/".lower()


class RootHttpRouter:
    """The root router: what is mounted where, the URL conf generated from it and the headers."""

    def __init__(self, config: Any, logger: Any, health: Any, lifecycle: Any = None) -> None:
        self.config = config
        self.logger = logger
        self.health = health
        self.lifecycle = lifecycle
        #: Holds a request that matched no route while the backend starts (see ``starting``).
        self.start_gate = RequestGate(startup_pause(config))
        if lifecycle is not None and hasattr(lifecycle, "on_state_change"):
            self.start_gate.set_state(lifecycle.state)
            lifecycle.on_state_change(self.start_gate.set_state)
        self.security_headers = security_headers(config.get_optional_config("backend"))
        self.health_headers = _health_headers(config)
        self.version = 0
        self._paths: list[str] = []
        self._routes: list[tuple[str, Patterns]] = []
        self._mounts: dict[str, PluginMount] = {}

    def _claim(self, path: str) -> None:
        if re.fullmatch(r"[/\s]*", path):
            raise ValueError("Root router path may not be empty")
        normalized = _normalize_root_path(path)
        for existing in self._paths:
            other = _normalize_root_path(existing)
            if other.startswith(normalized) or normalized.startswith(other):
                raise ValueError(f"Path {path} conflicts with the existing path {existing}")
        self._paths.append(path)

    def use(self, path: str, urls: Any) -> None:
        """Mount routes at a root path (no plugin chain in front of them)."""
        self._claim(path)
        self._routes.append((path.rstrip("/"), as_patterns(urls)))
        self.changed()

    def mount(self, mount: PluginMount) -> None:
        self._claim(mount.path)
        self._mounts[mount.path] = mount
        self.changed()

    def changed(self) -> None:
        self.version += 1
        clear_url_caches()

    @functools.cached_property
    def security_header_entries(self) -> list[tuple[str, tuple[str, str]]]:
        """``security_headers`` as Django's ``ResponseHeaders`` stores them (lowercase name ->
        (name, value)), checked and encoded once instead of on every response."""
        from django.http.response import ResponseHeaders

        converted = ResponseHeaders({})
        for name, value in self.security_headers:
            converted[name] = value
        return list(converted._store.items())

    @property
    def starting(self) -> bool:
        """Whether the backend is still starting (its plugins may not have mounted yet): with
        several worker processes, another worker's readiness may already say 200."""
        return bool(getattr(self.lifecycle, "starting", False))

    @property
    def mounts(self) -> list[PluginMount]:
        return list(self._mounts.values())

    def find_mount(self, path_info: str) -> PluginMount | None:
        """The plugin mount a request path falls under (segment-wise prefix), if any."""
        mounts = self._mounts
        if not mounts:
            return None
        end = len(path_info)
        while end > 0:
            mount = mounts.get(path_info[:end])
            if mount is not None:
                return mount
            end = path_info.rfind("/", 0, end)
        return None

    def url_patterns(self) -> Patterns:
        """The backend's routes: root routes, then every plugin at its path."""
        patterns: Patterns = []
        for path, routes in self._routes:
            patterns.append(re_path(rf"^{re.escape(path.lstrip('/'))}/", include(routes)))
        for mount in self._mounts.values():
            patterns.append(
                re_path(
                    rf"^{re.escape(mount.path.lstrip('/'))}/",
                    include(
                        (_dot_routes_grouped(list(mount.patterns)), mount.plugin_id),
                        namespace=mount.plugin_id,
                    ),
                )
            )
        return patterns


def _starts_with_a_dot(pattern: Any) -> bool:
    """Whether a pattern only matches paths that start with ``.`` (``.backstage/...``)."""
    text = str(pattern.pattern).removeprefix("^")
    if isinstance(pattern.pattern, RoutePattern):
        return text.startswith(".")
    return text.startswith("\\.")


def _dot_routes_grouped(patterns: Patterns) -> Patterns:
    """A plugin's routes, with the leading run that only matches ``.backstage/...`` and
    ``.well-known/...`` (what the core services add before the plugin's own) behind one check.

    Django tries a plugin's patterns in order; a request for one of the plugin's own routes would
    otherwise be matched against each of those first. Same order, same names (the group has no
    namespace of its own); the group's prefix is a lookahead, so the routes see the same path."""
    lead = 0
    while lead < len(patterns) and _starts_with_a_dot(patterns[lead]):
        lead += 1
    if lead < 2:
        return patterns
    return [re_path(r"^(?=\.)", include(patterns[:lead])), *patterns[lead:]]


def _health_headers(config: Any) -> list[tuple[str, str]]:
    headers = config.get_optional("backend.health.headers") or {}
    result = []
    for name, value in headers.items():
        if not isinstance(name, str) or not name:
            raise ValueError(
                "Invalid header name in at backend.health.headers, must be a non-empty string"
            )
        if not isinstance(value, str) or not value:
            raise ValueError(
                "Invalid header value in at backend.health.headers, must be a non-empty string"
            )
        result.append((name, value))
    return result


def startup_pause(config: Any) -> timedelta:
    """``backend.lifecycle.startupRequestPauseTimeout``: how long a request waits for a start."""
    if config.has("backend.lifecycle.startupRequestPauseTimeout"):
        return read_duration_from_config(config, "backend.lifecycle.startupRequestPauseTimeout")
    return DEFAULT_STARTUP_PAUSE


def root_http_router_factory() -> ServiceFactory:
    """The root HTTP router; also adds ``backend.lifecycle.serverShutdownDelay`` before shutdown."""

    async def factory(config: Any, logger: Any, lifecycle: Any, health: Any) -> RootHttpRouter:
        router = RootHttpRouter(
            config, logger.child({"service": "rootHttpRouter"}), health, lifecycle
        )
        if config.has("backend.lifecycle.serverShutdownDelay"):
            delay = read_duration_from_config(config, "backend.lifecycle.serverShutdownDelay")
            lifecycle.add_before_shutdown_hook(lambda: asyncio.sleep(delay.total_seconds()))
        return router

    return create_service_factory(
        service=core_services.root_http_router,
        deps={
            "config": core_services.root_config,
            "logger": core_services.root_logger,
            "lifecycle": core_services.root_lifecycle,
            "health": core_services.root_health,
        },
        factory=factory,
    )


def http_router_factory(*, get_path: Callable[[str], str] = default_get_path) -> ServiceFactory:
    """A plugin's HTTP router; ``get_path(plugin_id)`` says where it is mounted (``/api/<id>``)."""

    async def factory(
        plugin: Any,
        config: Any,
        lifecycle: Any,
        root: RootHttpRouter,
        auth: Any,
        http_auth: Any,
        logger: Any,
    ) -> HttpRouter:
        plugin_id = plugin.get_id()
        gate = RequestGate(startup_pause(config))
        lifecycle.on_state_change(gate.set_state)
        disabled = bool(
            config.get_optional_boolean("backend.auth.dangerouslyDisableDefaultAuthPolicy")
        )
        barrier = CredentialsBarrier(http_auth, disabled)
        barrier.add_auth_policy(JWKS_PATH, "unauthenticated")
        mount = PluginMount(plugin_id, get_path(plugin_id), barrier, gate, logger)
        mount.patterns.extend(auth_integration_urls(auth, http_auth))
        root.mount(mount)
        return HttpRouter(mount, root)

    return create_service_factory(
        service=core_services.http_router,
        deps={
            "plugin": core_services.plugin_metadata,
            "config": core_services.root_config,
            "lifecycle": core_services.lifecycle,
            "root": core_services.root_http_router,
            "auth": core_services.auth,
            "http_auth": core_services.http_auth,
            "logger": core_services.logger,
        },
        factory=factory,
        initialization="always",
    )


_ = Sequence
