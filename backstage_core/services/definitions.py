"""The core service references, ``core_services.<name>``, that plugins declare as dependencies.

    deps={"logger": core_services.logger, "database": core_services.database}

Root-scoped services exist once per backend; the others once per plugin. ``create_backend()``
provides a default implementation for each; ``backend.add(a_factory)`` replaces one.
"""

from __future__ import annotations

from typing import Any

from backstage_core.wiring.refs import ServiceRef, create_service_ref

__all__ = ["CoreServices", "core_services", "coreServices"]


class CoreServices:
    """Every core service ref. Attribute names are the snake_case of Backstage's."""

    root_config: ServiceRef[Any] = create_service_ref("core.rootConfig", scope="root")
    root_logger: ServiceRef[Any] = create_service_ref("core.rootLogger", scope="root")
    root_lifecycle: ServiceRef[Any] = create_service_ref("core.rootLifecycle", scope="root")
    root_health: ServiceRef[Any] = create_service_ref("core.rootHealth", scope="root")
    root_http_router: ServiceRef[Any] = create_service_ref("core.rootHttpRouter", scope="root")
    instance_metadata: ServiceRef[Any] = create_service_ref(
        "core.rootInstanceMetadata", scope="root"
    )

    logger: ServiceRef[Any] = create_service_ref("core.logger")
    lifecycle: ServiceRef[Any] = create_service_ref("core.lifecycle")
    http_router: ServiceRef[Any] = create_service_ref("core.httpRouter")
    database: ServiceRef[Any] = create_service_ref("core.database")
    cache: ServiceRef[Any] = create_service_ref("core.cache")
    discovery: ServiceRef[Any] = create_service_ref("core.discovery")
    plugin_metadata: ServiceRef[Any] = create_service_ref("core.pluginMetadata")

    auth: ServiceRef[Any] = create_service_ref("core.auth")
    http_auth: ServiceRef[Any] = create_service_ref("core.httpAuth")
    user_info: ServiceRef[Any] = create_service_ref("core.userInfo")
    identity: ServiceRef[Any] = create_service_ref("core.identity")
    permissions: ServiceRef[Any] = create_service_ref("core.permissions")
    permissions_registry: ServiceRef[Any] = create_service_ref("core.permissionsRegistry")
    scheduler: ServiceRef[Any] = create_service_ref("core.scheduler")
    url_reader: ServiceRef[Any] = create_service_ref("core.urlReader")
    auditor: ServiceRef[Any] = create_service_ref("core.auditor")

    # The seed's name for the root config service.
    config = root_config

    def __iter__(self):  # type: ignore[no-untyped-def]
        seen = set()
        for name in dir(type(self)):
            ref = getattr(type(self), name)
            if isinstance(ref, ServiceRef) and ref.id not in seen:
                seen.add(ref.id)
                yield ref

    def __repr__(self) -> str:
        return "core_services"


core_services = CoreServices()
coreServices = core_services  # noqa: N816 - Backstage's spelling
