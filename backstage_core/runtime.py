"""Creating backends with the default services, and finding the project's backend.

    backend = create_backend()           # every core service with its default implementation
    backend.add("todo")

The project's backend is the one ``settings.BACKSTAGE_BACKEND`` names (``"settings.backend:backend"``);
Django's settings, URL conf, WSGI application and management commands all use it.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from importlib import import_module
from typing import Any

from backstage_core.wiring.backend import Backend
from backstage_core.wiring.features import ServiceFactory

__all__ = ["create_backend", "default_service_factories", "get_default_backend", "load_backend"]


def default_service_factories() -> list[ServiceFactory]:
    """The default implementation of every core service this backend provides."""
    from backstage_core.services.auth import auth_factory
    from backstage_core.services.cache import cache_factory
    from backstage_core.services.config import config_factory
    from backstage_core.services.database import database_factory
    from backstage_core.services.discovery import discovery_factory
    from backstage_core.services.health import root_health_factory
    from backstage_core.services.http_auth import http_auth_factory
    from backstage_core.services.http_router import http_router_factory, root_http_router_factory
    from backstage_core.services.identity import identity_factory
    from backstage_core.services.lifecycle import lifecycle_factory, root_lifecycle_factory
    from backstage_core.services.logger import logger_factory, root_logger_factory
    from backstage_core.services.permissions import permissions_factory
    from backstage_core.services.permissions_registry import permissions_registry_factory
    from backstage_core.services.scheduler import scheduler_factory
    from backstage_core.services.user_info import user_info_factory

    return [
        config_factory(),
        root_logger_factory(),
        root_lifecycle_factory(),
        root_health_factory(),
        root_http_router_factory(),
        logger_factory(),
        lifecycle_factory(),
        http_router_factory(),
        auth_factory(),
        http_auth_factory(),
        user_info_factory(),
        identity_factory(),
        permissions_factory(),
        permissions_registry_factory(),
        database_factory(),
        cache_factory(),
        discovery_factory(),
        scheduler_factory(),
    ]


def create_backend(*, services: Iterable[ServiceFactory] = ()) -> Backend:
    """A backend with the default core services; ``services`` override some of them."""
    backend = Backend(default_service_factories())
    for factory in services:
        backend.add(factory)
    return backend


def load_backend(path: str) -> Backend:
    """The backend at ``'module:attribute'`` (``attribute`` defaults to ``backend``)."""
    module_name, _, attribute = path.partition(":")
    backend = getattr(import_module(module_name), attribute or "backend")
    if not isinstance(backend, Backend):
        raise TypeError(f"{path} is not a backend, got {backend!r}")
    return backend


@cache
def _default_backend(path: str) -> Backend:
    return load_backend(path)


def get_default_backend() -> Backend:
    """The project's backend, named by ``settings.BACKSTAGE_BACKEND``."""
    from django.conf import settings

    return _default_backend(settings.BACKSTAGE_BACKEND)


def root_service(backend: Backend, ref: Any) -> Any:
    """A root service of ``backend`` (built on first use)."""
    return backend.get_service(ref)
