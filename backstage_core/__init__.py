"""Backstage's backend system for Django: plugins, service injection and the core services.

    from backstage_core import core_services, create_backend_plugin

    def register(env):
        env.register_init(
            deps={"http_router": core_services.http_router, "logger": core_services.logger},
            init=lambda http_router, logger: http_router.use(urlpatterns),
        )

    example_plugin = create_backend_plugin(plugin_id="example", register=register)

Everything a plugin needs is importable from here. Service implementations live in
``backstage_core.services.<name>``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from backstage_core.errors import (
    AuthenticationError,
    ConflictError,
    CustomErrorBase,
    ForwardedError,
    InputError,
    NotAllowedError,
    NotFoundError,
    NotImplementedError,  # noqa: A004 - Backstage's name; also a builtin NotImplementedError
    NotModifiedError,
    ResponseError,
    ServiceUnavailableError,
)
from backstage_core.services.definitions import core_services, coreServices
from backstage_core.wiring.backend import Backend, BackendStartupError
from backstage_core.wiring.features import (
    BackendFeature,
    ServiceFactory,
    create_backend_module,
    create_backend_plugin,
    create_service_factory,
)
from backstage_core.wiring.refs import (
    ExtensionPoint,
    ServiceRef,
    create_extension_point,
    create_service_ref,
)

if TYPE_CHECKING:
    from backstage_core.services.auth import auth_factory
    from backstage_core.services.cache import cache_factory
    from backstage_core.services.config import config_factory
    from backstage_core.services.database import database_factory
    from backstage_core.services.discovery import discovery_factory
    from backstage_core.services.http_auth import http_auth_factory
    from backstage_core.services.http_router import http_router_factory, root_http_router_factory
    from backstage_core.services.identity import identity_factory
    from backstage_core.services.logger import logger_factory, root_logger_factory
    from backstage_core.services.permissions import permissions_factory
    from backstage_core.services.permissions_registry import permissions_registry_factory
    from backstage_core.services.scheduler import scheduler_factory
    from backstage_core.services.user_info import user_info_factory

__all__ = [
    "AuthenticationError",
    "Backend",
    "BackendFeature",
    "BackendStartupError",
    "ConflictError",
    "CustomErrorBase",
    "ExtensionPoint",
    "ForwardedError",
    "InputError",
    "NotAllowedError",
    "NotFoundError",
    "NotImplementedError",
    "NotModifiedError",
    "ResponseError",
    "ServiceFactory",
    "ServiceRef",
    "ServiceUnavailableError",
    "auth_factory",
    "cache_factory",
    "config_factory",
    "coreServices",
    "core_services",
    "create_backend",
    "create_backend_module",
    "create_backend_plugin",
    "create_extension_point",
    "create_service_factory",
    "create_service_ref",
    "database_factory",
    "discovery_factory",
    "http_auth_factory",
    "http_router_factory",
    "identity_factory",
    "logger_factory",
    "permissions_factory",
    "permissions_registry_factory",
    "root_http_router_factory",
    "root_logger_factory",
    "scheduler_factory",
    "user_info_factory",
]

# Service factories and create_backend import Django pieces; load them on first use so that
# plugin modules can import this package while Django's settings are still loading.
_LAZY = {
    "create_backend": "backstage_core.runtime",
    "auth_factory": "backstage_core.services.auth",
    "http_auth_factory": "backstage_core.services.http_auth",
    "identity_factory": "backstage_core.services.identity",
    "permissions_factory": "backstage_core.services.permissions",
    "permissions_registry_factory": "backstage_core.services.permissions_registry",
    "scheduler_factory": "backstage_core.services.scheduler",
    "user_info_factory": "backstage_core.services.user_info",
    "cache_factory": "backstage_core.services.cache",
    "config_factory": "backstage_core.services.config",
    "database_factory": "backstage_core.services.database",
    "discovery_factory": "backstage_core.services.discovery",
    "http_router_factory": "backstage_core.services.http_router",
    "root_http_router_factory": "backstage_core.services.http_router",
    "logger_factory": "backstage_core.services.logger",
    "root_logger_factory": "backstage_core.services.logger",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'backstage_core' has no attribute '{name}'")
    from importlib import import_module

    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
