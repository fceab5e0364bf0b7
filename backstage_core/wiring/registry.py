"""The service registry: finds each service's factory, checks the graph and builds instances.

Root-scoped services are built once per backend, plugin-scoped ones once per plugin. Instances are
built on the backend's event loop (:meth:`ServiceRegistry.get`), or synchronously before the loop
exists (:meth:`ServiceRegistry.get_sync`, used to read config while Django's settings load).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable
from typing import Any

from backstage_core.errors import ConflictError, stringify_error
from backstage_core.wiring.features import ServiceFactory, create_service_factory
from backstage_core.wiring.graph import DependencyGraph
from backstage_core.wiring.refs import ServiceRef

__all__ = ["ServiceRegistry", "run_coroutine_sync"]

PLUGIN_METADATA_ID = "core.pluginMetadata"
ROOT = "root"


class PluginMetadata:
    """The plugin metadata service: which plugin a service instance belongs to."""

    def __init__(self, plugin_id: str) -> None:
        self._plugin_id = plugin_id

    def get_id(self) -> str:
        return self._plugin_id


def run_coroutine_sync(awaitable: Any) -> Any:
    """Run an awaitable to completion from synchronous code, on a private event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_wrap(awaitable))
    result: dict[str, Any] = {}

    def runner() -> None:
        try:
            result["value"] = asyncio.run(_wrap(awaitable))
        except BaseException as error:  # re-raised in the caller's thread
            result["error"] = error

    thread = threading.Thread(target=runner, name="backstage-sync-bridge")
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["value"]


async def _wrap(awaitable: Any) -> Any:
    return await awaitable


class _Slot:
    """One instance being built or built: a value once done, a future while in flight."""

    __slots__ = ("done", "future", "value")

    def __init__(self) -> None:
        self.done = False
        self.value: Any = None
        self.future: asyncio.Future[Any] | None = None


class ServiceRegistry:
    """Resolves service refs to instances for a given plugin id (or ``'root'``)."""

    def __init__(self, factories: Iterable[ServiceFactory]) -> None:
        self._provided: dict[str, list[ServiceFactory]] = {}
        for factory in factories:
            if factory.service.multiton:
                self._provided.setdefault(factory.service.id, []).append(factory)
            else:
                self._provided[factory.service.id] = [factory]
        self._added: set[str] = set()
        self._instantiated: set[str] = set()
        self._defaults: dict[str, ServiceFactory] = {}
        self._root_instances: dict[int, _Slot] = {}
        self._contexts: dict[int, _Slot] = {}
        self._plugin_instances: dict[tuple[int, str], _Slot] = {}
        self._metadata: dict[str, ServiceFactory] = {}
        self._lock = threading.RLock()
        self._acyclic = False  # checked since the factories last changed
        self.check_for_circular_deps()

    # -- configuration -------------------------------------------------------------------

    def add(self, factory: ServiceFactory) -> None:
        """Add a factory, overriding the default for its service."""
        service_id = factory.service.id
        if service_id == PLUGIN_METADATA_ID:
            raise ValueError(f"The {PLUGIN_METADATA_ID} service cannot be overridden")
        if service_id in self._instantiated:
            raise RuntimeError(
                f"Unable to set service factory with id {service_id}, "
                f"service has already been instantiated"
            )
        self._acyclic = False
        if factory.service.multiton:
            self._provided.setdefault(service_id, []).append(factory)
            return
        if service_id in self._added:
            raise ValueError(f"Duplicate service implementations provided for {service_id}")
        self._added.add(service_id)
        self._provided[service_id] = [factory]

    def has_been_added(self, ref: ServiceRef[Any]) -> bool:
        return ref.id == PLUGIN_METADATA_ID or ref.id in self._added

    def check_for_circular_deps(self) -> None:
        """Raise :class:`ConflictError` naming every cycle among the factories' dependencies."""
        if self._acyclic:
            return
        graph = DependencyGraph(
            (service_id, [service_id], [d.id for f in factories for d in f.deps.values()])
            for service_id, factories in self._provided.items()
        )
        cycles = list(graph.detect_circular_dependencies())
        if cycles:
            text = "\n  ".join(" -> ".join(f"'{i}'" for i in cycle) for cycle in cycles)
            raise ConflictError(f"Circular dependencies detected:\n  {text}")
        self._acyclic = True

    # -- resolution ----------------------------------------------------------------------

    def _factories(self, ref: ServiceRef[Any], plugin_id: str) -> list[ServiceFactory] | None:
        if ref.id == PLUGIN_METADATA_ID:
            return [self._metadata_factory(ref, plugin_id)]
        provided = self._provided.get(ref.id)
        if provided is not None:
            return provided
        if ref.default_factory is None:
            return None
        with self._lock:
            if ref.id not in self._defaults:
                try:
                    loaded = ref.load_default_factory()
                except Exception as error:
                    raise RuntimeError(
                        f"Failed to instantiate service '{ref.id}' because the default factory "
                        f"loader threw an error, {stringify_error(error)}"
                    ) from error
                if loaded is None:
                    return None
                self._defaults[ref.id] = loaded
        return [self._defaults[ref.id]]

    def _metadata_factory(self, ref: ServiceRef[Any], plugin_id: str) -> ServiceFactory:
        """The plugin metadata service's factory for ``plugin_id``: one per plugin, kept, since
        instances are found by their factory's identity (a factory made per call would build an
        instance per call, and a freed one's id could come back as another factory's)."""
        with self._lock:
            factory = self._metadata.get(plugin_id)
            if factory is None:
                metadata = PluginMetadata(plugin_id)

                async def build() -> PluginMetadata:  # nothing to wait for: no worker thread
                    return metadata

                factory = self._metadata[plugin_id] = create_service_factory(
                    service=ref, factory=build
                )
            return factory

    def is_available(self, ref: ServiceRef[Any]) -> bool:
        return (
            ref.id == PLUGIN_METADATA_ID
            or ref.multiton
            or ref.id in self._provided
            or ref.default_factory is not None
        )

    def _check_missing(self, factory: ServiceFactory, plugin_id: str) -> None:
        missing = [ref for ref in factory.deps.values() if not self.is_available(ref)]
        if missing:
            names = ", ".join(f"'{ref.id}'" for ref in missing)
            raise RuntimeError(
                f"Failed to instantiate service '{factory.service.id}' for '{plugin_id}' because "
                f"the following dependent services are missing: {names}"
            )

    def _check_root_deps(self, ref: ServiceRef[Any], factory: ServiceFactory) -> None:
        for dep in factory.deps.values():
            if dep.scope != "root":
                raise RuntimeError(
                    f"Failed to instantiate 'root' scoped service '{ref.id}' because it depends "
                    f"on '{dep.scope}' scoped service '{dep.id}'."
                )

    async def get(self, ref: ServiceRef[Any], plugin_id: str = ROOT) -> Any:
        """The instance of ``ref`` for ``plugin_id``; None when no factory exists for it."""
        self._instantiated.add(ref.id)
        factories = self._factories(ref, plugin_id)
        if factories is None:
            return [] if ref.multiton else None
        results = [await self._instance(ref, factory, plugin_id) for factory in factories]
        return results if ref.multiton else results[0]

    async def _instance(self, ref: ServiceRef[Any], factory: ServiceFactory, plugin_id: str) -> Any:
        if factory.service.scope == "root":
            slot, owner = self._slot(self._root_instances, id(factory))
            if owner:
                await self._fill(slot, self._build_root(ref, factory, plugin_id))
            return await self._read(slot)
        context_slot, owner = self._slot(self._contexts, id(factory))
        if owner:
            await self._fill(context_slot, self._build_context(ref, factory, plugin_id))
        context = await self._read(context_slot)
        slot, owner = self._slot(self._plugin_instances, (id(factory), plugin_id))
        if owner:
            await self._fill(slot, self._build_plugin(ref, factory, plugin_id, context))
        return await self._read(slot)

    def _slot(self, table: dict[Any, _Slot], key: Any) -> tuple[_Slot, bool]:
        with self._lock:
            slot = table.get(key)
            if slot is not None:
                return slot, False
            slot = table[key] = _Slot()
            slot.future = asyncio.get_running_loop().create_future()
            return slot, True

    @staticmethod
    async def _fill(slot: _Slot, work: Any) -> None:
        assert slot.future is not None
        try:
            slot.value = await work
            slot.done = True
            slot.future.set_result(slot.value)
        except BaseException as error:
            slot.future.set_exception(error)

    @staticmethod
    async def _read(slot: _Slot) -> Any:
        if slot.done:
            return slot.value
        assert slot.future is not None
        return await asyncio.shield(slot.future)

    async def _build_root(
        self, ref: ServiceRef[Any], factory: ServiceFactory, plugin_id: str
    ) -> Any:
        self._check_missing(factory, plugin_id)
        self._check_root_deps(ref, factory)
        deps = {name: await self.get(dep, plugin_id) for name, dep in factory.deps.items()}
        try:
            return await _call(factory.factory, **deps)
        except Exception as error:
            raise RuntimeError(
                f"Failed to instantiate 'root' scoped service '{ref.id}' because the factory "
                f"function threw an error, {stringify_error(error)}"
            ) from error

    async def _build_context(
        self, ref: ServiceRef[Any], factory: ServiceFactory, plugin_id: str
    ) -> Any:
        self._check_missing(factory, plugin_id)
        if factory.create_root_context is None:
            return None
        deps = {
            name: await self.get(dep, plugin_id)
            for name, dep in factory.deps.items()
            if dep.scope == "root"
        }
        try:
            return await _call(factory.create_root_context, **deps)
        except Exception as error:
            raise RuntimeError(
                f"Failed to instantiate service '{ref.id}' because createRootContext threw an "
                f"error, {stringify_error(error)}"
            ) from error

    async def _build_plugin(
        self, ref: ServiceRef[Any], factory: ServiceFactory, plugin_id: str, context: Any
    ) -> Any:
        deps = {name: await self.get(dep, plugin_id) for name, dep in factory.deps.items()}
        args = (context,) if factory.create_root_context is not None else ()
        try:
            return await _call(factory.factory, *args, **deps)
        except Exception as error:
            raise RuntimeError(
                f"Failed to instantiate service '{ref.id}' for '{plugin_id}' because the factory "
                f"function threw an error, {stringify_error(error)}"
            ) from error

    def get_sync(self, ref: ServiceRef[Any], plugin_id: str = ROOT) -> Any:
        """Like :meth:`get`, from synchronous code and before the backend's loop runs."""
        if ref.scope == "root":
            factories = self._factories(ref, plugin_id)
            if factories and not ref.multiton:
                slot = self._root_instances.get(id(factories[0]))
                if slot is not None and slot.done:
                    return slot.value
        return run_coroutine_sync(self.get(ref, plugin_id))

    async def initialize_eager_services(self, scope: str, plugin_id: str = ROOT) -> None:
        """Build root services not marked lazy, or plugin services marked ``'always'``."""
        for factories in list(self._provided.values()):
            factory = factories[0]
            if factory.service.scope != scope:
                continue
            if scope == "root" and factory.initialization != "lazy":
                await self.get(factory.service, plugin_id)
            elif scope == "plugin" and factory.initialization == "always":
                await self.get(factory.service, plugin_id)


async def _call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    from backstage_core.wiring.backend import call_maybe_async

    return await call_maybe_async(fn, *args, **kwargs)
