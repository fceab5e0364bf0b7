"""Lifecycle services: startup and shutdown hooks for the backend and for each plugin.

    lifecycle.add_startup_hook(warm_up)
    lifecycle.add_shutdown_hook(close_client, logger=logger)

Hooks may be plain functions or coroutine functions. All hooks of one phase run concurrently; one
that raises is logged and does not stop the others. Order: plugins start (each plugin's startup
hooks right after its init), then the root startup hooks. On shutdown: root before-shutdown hooks
(readiness turns 503), every plugin's shutdown hooks in parallel, then the root shutdown hooks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Literal

from backstage_core.services.definitions import core_services
from backstage_core.wiring.backend import call_maybe_async
from backstage_core.wiring.features import ServiceFactory, create_service_factory

__all__ = [
    "HookRunner",
    "PluginLifecycle",
    "RootLifecycle",
    "lifecycle_factory",
    "root_lifecycle_factory",
]

Hook = Callable[[], Any]
State = Literal["init", "up", "down"]


class HookRunner:
    """Runs the hooks of one phase once, concurrently, logging each failure."""

    def __init__(self, label: str, logger: Any, late_add_message: str) -> None:
        self.label = label
        self.logger = logger
        self.late_add_message = late_add_message
        self.fired = False
        self._hooks: list[tuple[Hook, Any]] = []

    def add(self, hook: Hook, logger: Any = None) -> None:
        if self.fired:
            raise RuntimeError(self.late_add_message)
        if not callable(hook):
            raise TypeError(f"A {self.label} hook must be callable, got {hook!r}")
        self._hooks.append((hook, logger))

    async def run(self) -> list[BaseException]:
        """Run every hook; returns the errors of those that failed (already logged)."""
        if self.fired:
            return []
        self.fired = True
        title = self.label[0].upper() + self.label[1:]
        self.logger.debug(f"Running {len(self._hooks)} {self.label} tasks...")

        async def run_one(hook: Hook, logger: Any) -> BaseException | None:
            log = logger or self.logger
            try:
                await call_maybe_async(hook)
            except Exception as error:
                log.error(f"{title} hook failed", error)
                return error
            log.debug(f"{title} hook succeeded")
            return None

        results = await asyncio.gather(*(run_one(h, lg) for h, lg in self._hooks))
        return [error for error in results if error is not None]


def _unpack(fn: Any, logger: Any) -> tuple[Hook, Any]:
    """Accept the seed's ``add_shutdown_hook({"fn": ..., "logger": ...})`` form too."""
    if isinstance(fn, dict):
        return fn["fn"], fn.get("logger", logger)
    return fn, logger


class RootLifecycle:
    """The root lifecycle service; its state drives readiness."""

    def __init__(self, logger: Any) -> None:
        self.state: State = "init"
        #: True from the moment the backend begins to start until it is up (or stopping).
        self.starting = False
        self._listeners: list[Callable[[State], None]] = []
        self._startup = HookRunner(
            "startup", logger, "Attempted to add startup hook after startup has completed"
        )
        self._before_shutdown = HookRunner(
            "before shutdown",
            logger,
            "Attempted to add before shutdown hook after shutdown has started",
        )
        self._shutdown = HookRunner(
            "shutdown", logger, "Attempted to add shutdown hook after shutdown has started"
        )

    def add_startup_hook(self, fn: Hook, logger: Any = None) -> None:
        self._startup.add(*_unpack(fn, logger))

    def add_before_shutdown_hook(self, fn: Hook) -> None:
        self._before_shutdown.add(*_unpack(fn, None))

    def add_shutdown_hook(self, fn: Hook, logger: Any = None) -> None:
        self._shutdown.add(*_unpack(fn, logger))

    def begin_startup(self) -> None:
        """The backend has begun to start (its plugins are about to initialize)."""
        if self.state == "init":
            self.starting = True

    def on_state_change(self, listener: Callable[[State], None]) -> None:
        """Be told when the backend is up or down (the root router's request gate listens)."""
        self._listeners.append(listener)

    def _set_state(self, state: State) -> None:
        self.state = state
        self.starting = False
        for listener in self._listeners:
            listener(state)

    async def startup(self) -> list[BaseException]:
        failures = await self._startup.run()
        if self.state == "init":
            self._set_state("up")
        return failures

    async def before_shutdown(self) -> list[BaseException]:
        self._set_state("down")
        return await self._before_shutdown.run()

    async def shutdown(self) -> list[BaseException]:
        self._set_state("down")
        return await self._shutdown.run()


class PluginLifecycle:
    """A plugin's lifecycle service."""

    def __init__(self, logger: Any, plugin_id: str) -> None:
        self.plugin_id = plugin_id
        self.state: State = "init"
        self._listeners: list[Callable[[State], None]] = []
        self._startup = HookRunner(
            "plugin startup",
            logger,
            "Attempted to add plugin startup hook after startup has completed",
        )
        self._shutdown = HookRunner(
            "plugin shutdown",
            logger,
            "Attempted to add plugin shutdown hook after shutdown has started",
        )

    def add_startup_hook(self, fn: Hook, logger: Any = None) -> None:
        self._startup.add(*_unpack(fn, logger))

    def add_shutdown_hook(self, fn: Hook, logger: Any = None) -> None:
        fn, logger = _unpack(fn, logger)
        self._shutdown.add(
            fn, logger.child({"plugin": self.plugin_id}) if logger is not None else None
        )

    def on_state_change(self, listener: Callable[[State], None]) -> None:
        """Be told when the plugin is up or down (the HTTP router's request gate listens)."""
        self._listeners.append(listener)

    def _set_state(self, state: State) -> None:
        self.state = state
        for listener in self._listeners:
            listener(state)

    async def startup(self) -> list[BaseException]:
        failures = await self._startup.run()
        if self.state == "init":
            self._set_state("up")
        return failures

    async def shutdown(self) -> list[BaseException]:
        self._set_state("down")
        return await self._shutdown.run()


def root_lifecycle_factory() -> ServiceFactory:
    async def factory(logger: Any) -> RootLifecycle:
        return RootLifecycle(logger)

    return create_service_factory(
        service=core_services.root_lifecycle,
        deps={"logger": core_services.root_logger},
        factory=factory,
    )


def lifecycle_factory() -> ServiceFactory:
    async def factory(logger: Any, plugin: Any) -> PluginLifecycle:
        return PluginLifecycle(logger, plugin.get_id())

    return create_service_factory(
        service=core_services.lifecycle,
        deps={"logger": core_services.logger, "plugin": core_services.plugin_metadata},
        factory=factory,
    )
