"""The backend: features are added to it, then it starts every plugin and stops them again.

    backend = create_backend()
    backend.add("todo")               # a module path, like backend.add(import('...'))
    backend.add(http_router_factory(get_path=lambda plugin_id: f"/plugins/{plugin_id}"))
    backend.start()

Services are built and plugins are started on the backend's own event loop, in a thread of its
own, so that a web server can answer (readiness 503) while the plugins start.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import import_module
from typing import Any, Literal

from backstage_core.errors import ConflictError, CustomErrorBase, ForwardedError
from backstage_core.wiring.features import (
    BackendFeature,
    BackendModule,
    BackendPlugin,
    Registration,
    ServiceFactory,
    create_service_factory,
)
from backstage_core.wiring.graph import DependencyGraph
from backstage_core.wiring.refs import ExtensionPoint, ServiceRef
from backstage_core.wiring.registry import ROOT, ServiceRegistry

__all__ = [
    "Backend",
    "BackendStartupError",
    "BackendStartupResult",
    "BackendStopResult",
    "PluginStartupResult",
    "create_specialized_backend",
    "plugin_for_app",
]

log = logging.getLogger("backstage.backend")

# Which plugin each Django app belongs to, for every backend in the process (the DB router reads it).
_PLUGIN_APPS: dict[str, str] = {}


def plugin_for_app(app_module: str) -> str | None:
    """The id of the plugin whose Django app is ``app_module``, if any was added to a backend."""
    return _PLUGIN_APPS.get(app_module)


@dataclass
class ModuleStartupResult:
    """How one module's init went: when it finished and, if it failed, the error."""

    module_id: str
    result_at: datetime
    failure: tuple[BaseException, bool] | None = None


@dataclass
class PluginStartupResult:
    """How one plugin's start went, with its modules' results."""

    plugin_id: str
    result_at: datetime
    modules: list[ModuleStartupResult] = field(default_factory=list)
    failure: tuple[BaseException, bool] | None = None


@dataclass
class BackendStartupResult:
    """How a backend's start went, plugin by plugin (Backstage's startup result)."""

    begin_at: datetime
    result_at: datetime
    outcome: Literal["success", "failure"]
    plugins: list[PluginStartupResult]


@dataclass
class BackendStopResult:
    """What stopping did: the hooks that failed (their errors were logged, not raised)."""

    hook_failures: list[BaseException] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.hook_failures


def _js_string(error: BaseException) -> str:
    """``String(error)`` as JavaScript prints it: ``Name: message``."""
    from backstage_core.errors import stringify_error

    return stringify_error(error)


class BackendStartupError(CustomErrorBase):
    """Raised by :meth:`Backend.start` when a plugin or module failed and failure is not allowed."""

    name = "BackendStartupError"

    def __init__(self, result: BackendStartupResult) -> None:
        lines = ["Backend startup failed due to the following errors:"]
        for plugin in result.plugins:
            if plugin.failure and not plugin.failure[1]:
                lines.append(
                    f"  Plugin '{plugin.plugin_id}' startup failed; caused by "
                    f"{_js_string(plugin.failure[0])}"
                )
            for module in plugin.modules:
                if module.failure and not module.failure[1]:
                    lines.append(
                        f"  Module '{module.module_id}' for plugin '{plugin.plugin_id}' startup "
                        f"failed; caused by {_js_string(module.failure[0])}"
                    )
        super().__init__("\n".join(lines))
        self.result = result


class _BootFailurePolicy:
    """``backend.startup``: may a plugin (or module) fail to start without stopping the backend?"""

    def __init__(self, config: Any) -> None:
        def read(key: str) -> str | None:
            return config.get_optional_string(key) if config is not None else None

        self.default_plugin = read("backend.startup.default.onPluginBootFailure") or "abort"
        self.default_module = read("backend.startup.default.onPluginModuleBootFailure") or "abort"
        self.plugins: dict[str, str] = {}
        self.modules: dict[tuple[str, str], str] = {}
        plugins = config.get_optional_config("backend.startup.plugins") if config else None
        for plugin_id in plugins.keys() if plugins else ():
            value = plugins.get_optional_string(f"{plugin_id}.onPluginBootFailure")
            if value:
                self.plugins[plugin_id] = value
            modules = plugins.get_optional_config(f"{plugin_id}.modules")
            for module_id in modules.keys() if modules else ():
                value = modules.get_optional_string(f"{module_id}.onPluginModuleBootFailure")
                if value:
                    self.modules[(plugin_id, module_id)] = value

    def allows(self, plugin_id: str, module_id: str | None = None) -> bool:
        if module_id is not None:
            return self.modules.get((plugin_id, module_id), self.default_module) == "continue"
        return self.plugins.get(plugin_id, self.default_plugin) == "continue"


class _ResultCollector:
    """Collects each plugin's startup result and logs progress as Backstage does."""

    def __init__(self, plugin_ids: list[str], logger: Any, policy: _BootFailurePolicy) -> None:
        self.logger = logger.child({"type": "initialization"}) if logger is not None else None
        self.policy = policy
        self.begin_at = datetime.now(UTC)
        self.starting = sorted(plugin_ids)
        self.started: list[str] = []
        self.results: list[PluginStartupResult] = []
        self.modules: dict[str, list[ModuleStartupResult]] = {p: [] for p in plugin_ids}
        self.failed = False
        self._info(f"Plugin initialization started: {self._join(self.starting)}")

    @staticmethod
    def _join(ids: Iterable[str]) -> str:
        return ", ".join(f"'{i}'" for i in ids)

    def _info(self, message: str) -> None:
        if self.logger is not None:
            self.logger.info(message)

    def _error(self, message: str, error: BaseException) -> None:
        if self.logger is not None:
            self.logger.error(message, error)

    def status(self) -> str:
        text = ""
        if self.started:
            text += f", newly initialized: {self._join(self.started)}"
            self.started = []
        if self.starting:
            text += f", still initializing: {self._join(self.starting)}"
        return text

    def _waiting(self) -> str:
        if not self.starting:
            return ""
        return (
            f", waiting for {len(self.starting)} other plugins to finish before shutting down "
            f"the process"
        )

    def on_plugin(self, plugin_id: str, error: BaseException | None = None) -> None:
        if plugin_id in self.starting:
            self.starting.remove(plugin_id)
        self.started.append(plugin_id)
        result = PluginStartupResult(plugin_id, datetime.now(UTC), self.modules[plugin_id])
        if error is not None:
            allowed = self.policy.allows(plugin_id)
            result.failure = (error, allowed)
            if allowed:
                self._error(
                    f"Plugin '{plugin_id}' threw an error during startup, but boot failure is "
                    f"permitted for this plugin so startup will continue.",
                    error,
                )
            else:
                self.failed = True
                self._error(
                    f"Plugin '{plugin_id}' threw an error during startup{self._waiting()}.", error
                )
        self.results.append(result)

    def on_module(self, plugin_id: str, module_id: str, error: BaseException | None = None) -> None:
        result = ModuleStartupResult(module_id, datetime.now(UTC))
        if error is not None:
            allowed = self.policy.allows(plugin_id, module_id)
            result.failure = (error, allowed)
            if allowed:
                self._error(
                    f"Module {module_id} in Plugin '{plugin_id}' threw an error during startup, "
                    f"but boot failure is permitted for this plugin module so startup will "
                    f"continue.",
                    error,
                )
            else:
                self.failed = True
                self._error(
                    f"Module {module_id} in Plugin '{plugin_id}' threw an error during "
                    f"startup{self._waiting()}.",
                    error,
                )
        self.modules[plugin_id].append(result)

    def finalize(self) -> BackendStartupResult:
        self._info(f"Plugin initialization complete{self.status()}")
        return BackendStartupResult(
            begin_at=self.begin_at,
            result_at=datetime.now(UTC),
            outcome="failure" if self.failed else "success",
            plugins=self.results,
        )


@dataclass
class _Init:
    """A registration with the extension points it provides and what it consumes."""

    registration: Registration
    provides: list[ExtensionPoint[Any]]
    consumes: list[ServiceRef[Any] | ExtensionPoint[Any]]


async def call_maybe_async(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """Call ``fn``: await it if it is a coroutine function, else run it in a worker thread.

    Sync code in worker threads may use Django's ORM; the thread's connections are closed after.
    """
    if inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - callable objects with async __call__
    ):
        return await fn(*args, **kwargs)

    def run() -> Any:
        try:
            result = fn(*args, **kwargs)
        finally:
            _close_thread_connections()
        return result

    try:
        result = await asyncio.to_thread(run)
    except RuntimeError as error:
        # At interpreter exit (atexit hooks) the default executor is gone: run it right here.
        if "after shutdown" not in str(error):
            raise
        result = run()
    if inspect.isawaitable(result):
        result = await result
    return result


def _close_thread_connections() -> None:
    try:
        from django.conf import settings
        from django.db import connections
    except ImportError:  # pragma: no cover - Django is always installed here
        return
    if settings.configured:
        for connection in connections.all(initialized_only=True):
            connection.close()


class _LoopThread:
    """An asyncio event loop running in a daemon thread of its own, restarted after a fork."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._lock = threading.Lock()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._pid != os.getpid():
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def run() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                self._thread = threading.Thread(target=run, name=self.name, daemon=True)
                self._thread.start()
                ready.wait()
                self._loop, self._pid = loop, os.getpid()
            return self._loop

    def in_loop_thread(self) -> bool:
        return self._thread is threading.current_thread()

    def run(self, coroutine: Any) -> Any:
        """Run a coroutine on the loop and wait for its result."""
        if self.in_loop_thread():
            raise RuntimeError("Can not wait for the backend from its own event loop")
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def close(self) -> None:
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is not None and thread is not None and thread is not threading.current_thread():
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=5)
            if not loop.is_running():
                loop.close()


class Backend:
    """A backend instance: features, the service registry and the plugins' lifecycle."""

    def __init__(self, default_factories: Iterable[ServiceFactory] = ()) -> None:
        self._registry = ServiceRegistry(list(default_factories))
        self._registrations: list[BackendPlugin | BackendModule] = []
        self._features: list[BackendFeature] = []
        self._extension_points: dict[str, tuple[Any, str]] = {}
        self._loop = _LoopThread("backstage-backend")
        self._lock = threading.Lock()
        self._starting = False
        self._start_future: Any = None
        self._stop_future: Any = None
        self._plugin_ids: list[str] = []
        self.startup_result: BackendStartupResult | None = None

    # -- features ------------------------------------------------------------------------

    def add(self, feature: BackendFeature | str) -> None:
        """Add a plugin, module or service factory; a string is a module path to import."""
        if self._starting:
            raise RuntimeError("feature can not be added after the backend has started")
        if isinstance(feature, str):
            feature = load_feature(feature)
        if isinstance(feature, ServiceFactory):
            self._registry.add(feature)
        elif isinstance(feature, BackendPlugin | BackendModule):
            self._registrations.append(feature)
            if feature.django_app:
                _PLUGIN_APPS[feature.django_app] = feature.plugin_id
        else:
            raise TypeError(f"Failed to add feature, invalid feature {feature!r}")
        self._features.append(feature)

    @property
    def features(self) -> list[BackendFeature]:
        return list(self._features)

    @property
    def plugin_ids(self) -> list[str]:
        """Ids of the plugins added, in the order they were added."""
        return list(
            dict.fromkeys(f.plugin_id for f in self._registrations if isinstance(f, BackendPlugin))
        )

    @property
    def django_apps(self) -> list[str]:
        """The Django apps of every plugin and module added, in order, each once."""
        return list(dict.fromkeys(f.django_app for f in self._registrations if f.django_app))

    def plugin_apps(self, plugin_id: str) -> list[str]:
        """The Django apps belonging to one plugin (its own and its modules')."""
        return list(
            dict.fromkeys(
                f.django_app
                for f in self._registrations
                if f.plugin_id == plugin_id and f.django_app
            )
        )

    # -- services ------------------------------------------------------------------------

    def get_service(self, ref: ServiceRef[Any], plugin_id: str = ROOT) -> Any:
        """The instance of a service, from synchronous code; built now if it was not yet."""
        if ref.scope == "root":
            plugin_id = ROOT
        self._registry.check_for_circular_deps()
        if self._loop_running():
            return self._loop.run(self._registry.get(ref, plugin_id))
        return self._registry.get_sync(ref, plugin_id)

    def _loop_running(self) -> bool:
        return self._start_future is not None and not self._loop.in_loop_thread()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The backend's event loop (started on first use)."""
        return self._loop.loop

    # -- start ---------------------------------------------------------------------------

    @property
    def started(self) -> bool:
        return self._start_future is not None and self._start_future.done()

    def start(self) -> BackendStartupResult:
        """Start every plugin; returns when all started, raises :class:`BackendStartupError`."""
        with self._lock:
            if self._starting:
                raise RuntimeError("Backend has already started")
            if self._stop_future is not None:
                raise RuntimeError("Backend has already stopped")
            self._starting = True
            self._start_future = asyncio.run_coroutine_threadsafe(self._do_start(), self.loop)
        return self._start_future.result()

    async def _do_start(self) -> BackendStartupResult:
        from backstage_core.services.definitions import core_services

        self._registry.check_for_circular_deps()
        self._registry.add(_instance_metadata_factory(self))
        root_logger = await self._registry.get(core_services.root_logger)
        self._install_error_hooks(root_logger)
        await self._registry.initialize_eager_services("root")
        root_lifecycle = await self._registry.get(core_services.root_lifecycle)
        if hasattr(root_lifecycle, "begin_startup"):  # requests that match no route wait now
            root_lifecycle.begin_startup()

        plugin_inits: dict[str, _Init] = {}
        module_inits: dict[str, dict[str, _Init]] = {}
        for feature in self._registrations:
            for registration in feature.registrations():
                provides = []
                for ref, impl in registration.extension_points:
                    if ref.id in self._extension_points:
                        raise RuntimeError(
                            f"ExtensionPoint with ID '{ref.id}' is already registered"
                        )
                    self._extension_points[ref.id] = (impl, registration.plugin_id)
                    provides.append(ref)
                init = _Init(registration, provides, list(registration.init.deps.values()))
                if registration.type == "plugin":
                    if registration.plugin_id in plugin_inits:
                        raise RuntimeError(
                            f"Plugin '{registration.plugin_id}' is already registered"
                        )
                    plugin_inits[registration.plugin_id] = init
                else:
                    modules = module_inits.setdefault(registration.plugin_id, {})
                    assert registration.module_id is not None
                    if registration.module_id in modules:
                        raise RuntimeError(
                            f"Module '{registration.module_id}' for plugin "
                            f"'{registration.plugin_id}' is already registered"
                        )
                    modules[registration.module_id] = init

        self._plugin_ids = list(plugin_inits)
        root_config = await self._registry.get(core_services.root_config)
        collector = _ResultCollector(self._plugin_ids, root_logger, _BootFailurePolicy(root_config))
        await asyncio.gather(
            *(
                self._start_plugin(plugin_id, plugin_inits[plugin_id], module_inits, collector)
                for plugin_id in self._plugin_ids
            )
        )
        result = collector.finalize()
        self.startup_result = result
        if result.outcome == "failure":
            raise BackendStartupError(result)
        root_lifecycle = await self._registry.get(core_services.root_lifecycle)
        await root_lifecycle.startup()
        return result

    async def _start_plugin(
        self,
        plugin_id: str,
        plugin_init: _Init,
        module_inits: dict[str, dict[str, _Init]],
        collector: _ResultCollector,
    ) -> None:
        from backstage_core.services.definitions import core_services

        try:
            await self._registry.initialize_eager_services("plugin", plugin_id)
            modules = module_inits.get(plugin_id, {})
            if modules:
                graph = DependencyGraph(
                    (
                        (module_id, init),
                        [ref.id for ref in init.consumes],
                        [ep.id for ep in init.provides],
                    )
                    for module_id, init in modules.items()
                )
                cycle = graph.detect_circular_dependency()
                if cycle:
                    path = " -> ".join(f"'{module_id}'" for module_id, _ in cycle)
                    raise ConflictError(
                        f"Circular dependency detected for modules of plugin '{plugin_id}', {path}"
                    )

                async def start_module(node: tuple[str, _Init]) -> None:
                    module_id, init = node
                    try:
                        deps = await self._init_deps(init.registration, plugin_id, module_id)
                        await call_maybe_async(init.registration.init.func, **deps)
                    except Exception as error:
                        collector.on_module(plugin_id, module_id, error)
                    else:
                        collector.on_module(plugin_id, module_id)

                await graph.parallel_topological_traversal(start_module)

            deps = await self._init_deps(plugin_init.registration, plugin_id, None)
            await call_maybe_async(plugin_init.registration.init.func, **deps)
            collector.on_plugin(plugin_id)
            lifecycle = await self._registry.get(core_services.lifecycle, plugin_id)
            await lifecycle.startup()
        except Exception as error:
            collector.on_plugin(plugin_id, error)

    async def _init_deps(
        self, registration: Registration, plugin_id: str, module_id: str | None
    ) -> dict[str, Any]:
        result: dict[str, Any] = {}
        missing: list[Any] = []
        for name, ref in registration.init.deps.items():
            extension = self._extension_points.get(ref.id)
            if extension is not None:
                impl, owner = extension
                if owner != plugin_id:
                    raise RuntimeError(
                        f"Illegal dependency: Module '{module_id}' for plugin '{plugin_id}' "
                        f"attempted to depend on extension point '{ref.id}' for plugin '{owner}'. "
                        f"Extension points can only be used within their plugin's scope."
                    )
                if module_id is None:
                    raise RuntimeError(
                        f"Rejected dependency on extension point {ref.id} from outside of a module"
                    )
                result[name] = impl
                continue
            if isinstance(ref, ExtensionPoint):
                missing.append(ref)
                continue
            impl = await self._registry.get(ref, plugin_id)
            if impl is None:
                missing.append(ref)
            else:
                result[name] = impl
        if missing:
            target = (
                f"module '{module_id}' for plugin '{plugin_id}'"
                if module_id
                else f"plugin '{plugin_id}'"
            )
            raise RuntimeError(
                f"Service or extension point dependencies of {target} are missing for the "
                f"following ref(s): {', '.join(str(ref) for ref in missing)}"
            )
        return result

    def _install_error_hooks(self, root_logger: Any) -> None:
        if root_logger is None:
            return

        def on_loop_error(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
            error = context.get("exception")
            root_logger.child({"type": "unhandledRejection"}).error(
                "Unhandled rejection",
                error if error is not None else {"detail": context.get("message")},
            )

        self.loop.set_exception_handler(on_loop_error)

    # -- stop ----------------------------------------------------------------------------

    def stop(self) -> BackendStopResult:
        """Run the shutdown hooks: plugins' in parallel, then the root ones. Safe to call twice."""
        with self._lock:
            if self._stop_future is None:
                if self._start_future is None:
                    self._stop_future = _done(BackendStopResult())
                else:
                    self._stop_future = asyncio.run_coroutine_threadsafe(self._do_stop(), self.loop)
        result = self._stop_future.result()
        return result

    def close(self) -> None:
        """Stop the backend's event loop thread (after :meth:`stop`)."""
        self._loop.close()

    async def _do_stop(self) -> BackendStopResult:
        from backstage_core.services.definitions import core_services

        with contextlib.suppress(BaseException):
            await asyncio.wrap_future(self._start_future)
        failures: list[BaseException] = []
        root_lifecycle = await self._registry.get(core_services.root_lifecycle)
        failures += await root_lifecycle.before_shutdown()
        plugin_results = await asyncio.gather(
            *(self._stop_plugin(plugin_id) for plugin_id in self._plugin_ids),
            return_exceptions=True,
        )
        for item in plugin_results:
            failures += [item] if isinstance(item, BaseException) else item
        failures += await root_lifecycle.shutdown()
        return BackendStopResult(failures)

    async def _stop_plugin(self, plugin_id: str) -> list[BaseException]:
        from backstage_core.services.definitions import core_services

        lifecycle = await self._registry.get(core_services.lifecycle, plugin_id)
        return await lifecycle.shutdown()


def _done(value: Any) -> Any:
    import concurrent.futures

    future: concurrent.futures.Future[Any] = concurrent.futures.Future()
    future.set_result(value)
    return future


def _instance_metadata_factory(backend: Backend) -> ServiceFactory:
    from backstage_core.services.definitions import core_services

    async def factory(root_logger: Any) -> Any:
        metadata = InstanceMetadata(backend)
        root_logger.info(
            f"Installed plugins on this instance: {', '.join(p['pluginId'] for p in metadata.get_installed_plugins())}"
        )
        return metadata

    return create_service_factory(
        service=core_services.instance_metadata,
        deps={"root_logger": core_services.root_logger},
        factory=factory,
    )


class InstanceMetadata:
    """The root instance metadata service: which plugins and modules this instance runs."""

    def __init__(self, backend: Backend) -> None:
        plugins: dict[str, dict[str, Any]] = {}
        for feature in backend._registrations:
            entry = plugins.setdefault(
                feature.plugin_id, {"pluginId": feature.plugin_id, "modules": []}
            )
            if isinstance(feature, BackendModule):
                entry["modules"].append({"moduleId": feature.module_id})
        self._plugins = list(plugins.values())

    def get_installed_plugins(self) -> list[dict[str, Any]]:
        return self._plugins


def load_feature(path: str) -> BackendFeature:
    """Import a feature from ``'package.module'`` (its ``default``) or ``'package.module:name'``."""
    module_name, _, attribute = path.partition(":")
    module = import_module(module_name)
    name = attribute or "default"
    try:
        feature = getattr(module, name)
    except AttributeError:
        hint = "" if attribute else f"; export one as `default = ...`, or add it as '{path}:<name>'"
        raise ImportError(f"Module '{module_name}' has no backend feature '{name}'{hint}") from None
    if not isinstance(feature, BackendFeature):
        raise TypeError(f"'{path}' is not a backend feature, got {feature!r}")
    return feature


def create_specialized_backend(
    default_factories: Iterable[ServiceFactory], services: Iterable[ServiceFactory] = ()
) -> Backend:
    """A backend with the given default service factories, then ``services`` added on top."""
    backend = Backend(default_factories)
    for factory in services:
        backend.add(factory)
    return backend


# Re-exported for type checkers that look for these on the backend module.
_ = (Mapping, ForwardedError)
