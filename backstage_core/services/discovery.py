"""The discovery service: where each plugin's API is, inside the deployment and from outside.

    discovery.get_base_url("catalog")           # http://localhost:7007/api/catalog
    discovery.get_external_base_url("catalog")  # <backend.baseUrl>/api/catalog

``discovery.endpoints`` overrides both for chosen plugins (``{{pluginId}}`` is filled in)::

    discovery:
      endpoints:
        - target: https://internal.example.com/api/{{pluginId}}
          plugins: [catalog]
        - target: {internal: http://search:7007/api/search}
          plugins: [search]
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from backstage_core.services.definitions import core_services
from backstage_core.wiring.features import ServiceFactory, create_service_factory

__all__ = ["HostDiscovery", "discovery_factory", "read_listen"]

DEFAULT_PORT = 7007
_PLACEHOLDER = re.compile(r"\{\{\s*pluginId\s*\}\}")


def read_listen(config: Any) -> tuple[str, int]:
    """``backend.listen`` as (host, port): ``"7007"``, ``"host:7007"`` or ``{host, port}``."""
    listen = config.get_optional("backend.listen")
    if isinstance(listen, str):
        parts = listen.split(":")
        match = re.match(r"\s*[-+]?\d+", parts[-1])
        if match and len(parts) == 1:
            return "", int(match.group())
        if match and len(parts) == 2:
            return parts[0], int(match.group())
        raise ValueError(
            f"Unable to parse listen address {listen}, expected <port> or <host>:<port>"
        )
    host = config.get_optional_string("backend.listen.host") or ""
    port = config.get_optional_number("backend.listen.port")
    return host, int(port) if port is not None else DEFAULT_PORT


class HostDiscovery:
    """Discovery from ``backend.baseUrl``, ``backend.listen`` and ``discovery.endpoints``."""

    def __init__(self, config: Any) -> None:
        self._config = config
        self._read()
        if hasattr(config, "subscribe"):
            config.subscribe(self._read)

    def _read(self) -> None:
        config = self._config
        base_url = config.get_string("backend.baseUrl").rstrip("/")
        host, port = read_listen(config)
        host = {"": "localhost", "::": "localhost", "0.0.0.0": "127.0.0.1"}.get(host, host)
        if ":" in host:
            host = f"[{host}]"
        protocol = "https" if config.has("backend.https") else "http"
        self._internal_fallback = f"{protocol}://{host}:{port}/api/{{{{pluginId}}}}"
        self._external_fallback = f"{base_url}/api/{{{{pluginId}}}}"
        internal: dict[str, str] = {}
        external: dict[str, str] = {}
        for endpoint in config.get_optional_config_array("discovery.endpoints") or []:
            plugins = endpoint.get_string_array("plugins")
            target = endpoint.get("target")
            if isinstance(target, str):
                inside = outside = target
            else:
                inside = endpoint.get_optional_string("target.internal")
                outside = endpoint.get_optional_string("target.external")
            for plugin_id in plugins:
                if inside:
                    internal[plugin_id] = inside
                if outside:
                    external[plugin_id] = outside
        self._internal, self._external = internal, external

    @staticmethod
    def _resolve(table: dict[str, str], fallback: str, plugin_id: str) -> str:
        template = table.get(plugin_id) or table.get("*") or fallback
        return _PLACEHOLDER.sub(quote(plugin_id, safe=""), template)

    def has_endpoint(self, plugin_id: str) -> bool:
        """Whether ``discovery.endpoints`` places the plugin elsewhere (else: this backend)."""
        return plugin_id in self._internal or "*" in self._internal

    def get_base_url(self, plugin_id: str) -> str:
        return self._resolve(self._internal, self._internal_fallback, plugin_id)

    def get_external_base_url(self, plugin_id: str) -> str:
        return self._resolve(self._external, self._external_fallback, plugin_id)


def discovery_factory() -> ServiceFactory:
    async def create_root_context(config: Any) -> HostDiscovery:
        return HostDiscovery(config)

    async def factory(discovery: HostDiscovery, config: Any) -> HostDiscovery:
        return discovery

    return create_service_factory(
        service=core_services.discovery,
        deps={"config": core_services.root_config},
        create_root_context=create_root_context,
        factory=factory,
    )
