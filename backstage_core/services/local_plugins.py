"""What the plugins of one backend offer each other in-process, instead of over HTTP.

    local_plugins.provide("auth", "user_keys", token_factory.list_public_keys)
    jwks = local_plugins.get("auth", "user_keys")   # None when auth runs in another backend

Backstage plugins reach each other through discovery and HTTP, even inside one process: the auth
plugin's JWKS, a caller's plugin keys, userinfo, permission conditions. Here a plugin hosted by the
same backend answers those calls directly (same data, from the same databases), which spares a
request to ourselves on every cache miss and works before the server listens. A plugin that is not
hosted here is reached over HTTP at the address discovery gives, as in Backstage.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from backstage_core.wiring.features import ServiceFactory, create_service_factory
from backstage_core.wiring.refs import create_service_ref

__all__ = ["LocalPlugins", "local_plugins_ref"]


class LocalPlugins:
    """A directory of (plugin id, capability) -> callable for the plugins of this backend."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], Callable[..., Any]] = {}
        self._lock = threading.Lock()

    def provide(self, plugin_id: str, capability: str, fn: Callable[..., Any]) -> None:
        with self._lock:
            self._entries[(plugin_id, capability)] = fn

    def get(self, plugin_id: str, capability: str) -> Callable[..., Any] | None:
        return self._entries.get((plugin_id, capability))


def _default_factory(ref: Any) -> ServiceFactory:
    async def factory() -> LocalPlugins:
        return LocalPlugins()

    return create_service_factory(service=ref, factory=factory)


local_plugins_ref = create_service_ref(
    "backstage.localPlugins", scope="root", default_factory=_default_factory
)
