"""The plugin API and the service registry: what starts, in which order, and every wiring error."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from backstage_core import (
    Backend,
    BackendStartupError,
    ConflictError,
    core_services,
    coreServices,
    create_backend_module,
    create_backend_plugin,
    create_extension_point,
    create_service_factory,
    create_service_ref,
)
from backstage_core.testing.backend import test_backend_services


@pytest.fixture
def make_backend() -> Iterator[Any]:
    """Backends with the test services and no HTTP server; stopped after the test."""
    made: list[Backend] = []

    def make(config: dict[str, Any] | None = None) -> Backend:
        backend = Backend(
            test_backend_services(config or {"backend": {"baseUrl": "http://localhost:7007"}})
        )
        made.append(backend)
        return backend

    yield make
    for backend in made:
        backend.stop()
        backend.close()


def plugin(plugin_id: str, init: Any, deps: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    def register(env: Any) -> None:
        env.register_init(deps=deps or {}, init=init)

    return create_backend_plugin(plugin_id=plugin_id, register=register, django_app=None, **kwargs)


def test_core_services_holds_every_core_ref_and_coreServices_is_the_same_object() -> None:
    ids = {ref.id for ref in core_services}
    assert coreServices is core_services
    assert core_services.config is core_services.root_config
    assert {
        "core.rootConfig", "core.rootLogger", "core.logger", "core.rootLifecycle", "core.lifecycle",
        "core.rootHttpRouter", "core.httpRouter", "core.rootHealth", "core.database", "core.cache",
        "core.discovery", "core.auth", "core.httpAuth", "core.userInfo", "core.identity",
        "core.permissions", "core.permissionsRegistry", "core.scheduler", "core.urlReader",
        "core.auditor", "core.pluginMetadata", "core.rootInstanceMetadata",
    } <= ids  # fmt: skip
    assert str(core_services.logger) == "serviceRef{core.logger}"


def test_sync_and_async_inits_both_run_with_their_dependencies(make_backend: Any) -> None:
    seen: dict[str, Any] = {}

    def sync_init(logger: Any, metadata: Any) -> None:
        seen["sync"] = (metadata.get_id(), threading.current_thread().name)

    async def async_init(config: Any, metadata: Any) -> None:
        await asyncio.sleep(0)
        seen["async"] = (metadata.get_id(), config.get_string("backend.baseUrl"))

    backend = make_backend()
    backend.add(
        plugin(
            "one",
            sync_init,
            {"logger": core_services.logger, "metadata": core_services.plugin_metadata},
        )
    )
    backend.add(
        plugin(
            "two",
            async_init,
            {"config": core_services.config, "metadata": core_services.plugin_metadata},
        )
    )
    result = backend.start()

    assert seen["sync"][0] == "one"
    assert seen["async"] == ("two", "http://localhost:7007")
    assert result.outcome == "success"
    assert sorted(p.plugin_id for p in result.plugins) == ["one", "two"]


def test_plugins_start_in_parallel(make_backend: Any) -> None:
    both_running = threading.Barrier(2, timeout=5)

    def init() -> None:
        both_running.wait()  # deadlocks (and times out) unless both inits run at the same time

    backend = make_backend()
    backend.add(plugin("first", init))
    backend.add(plugin("second", init))
    assert backend.start().outcome == "success"


def test_modules_init_before_their_plugin_and_extend_it_through_an_extension_point(
    make_backend: Any,
) -> None:
    order: list[str] = []
    greetings = create_extension_point("example.greetings")

    class Greetings:
        def __init__(self) -> None:
            self.items: list[str] = []

    registry = Greetings()

    def register_plugin(env: Any) -> None:
        env.register_extension_point(greetings, registry)
        env.register_init(deps={}, init=lambda: order.append(f"plugin sees {registry.items}"))

    def register_module(env: Any) -> None:
        def init(greetings: Greetings) -> None:
            greetings.items.append("hello")
            order.append("module")

        env.register_init(deps={"greetings": greetings}, init=init)

    backend = make_backend()
    backend.add(
        create_backend_plugin(plugin_id="example", register=register_plugin, django_app=None)
    )
    backend.add(
        create_backend_module(
            plugin_id="example", module_id="hello", register=register_module, django_app=None
        )
    )
    backend.start()

    assert order == ["module", "plugin sees ['hello']"]


def test_startup_hooks_run_after_init_then_root_hooks_after_all_plugins(make_backend: Any) -> None:
    order: list[str] = []

    def init_for(name: str) -> Any:
        def init(lifecycle: Any, root_lifecycle: Any) -> None:
            order.append(f"{name} init")
            lifecycle.add_startup_hook(lambda: order.append(f"{name} startup"))
            root_lifecycle.add_startup_hook(lambda: order.append(f"root startup ({name})"))

        return init

    deps = {"lifecycle": core_services.lifecycle, "root_lifecycle": core_services.root_lifecycle}
    backend = make_backend()
    backend.add(plugin("a", init_for("a"), deps))
    backend.start()

    assert order == ["a init", "a startup", "root startup (a)"]


def test_shutdown_runs_plugin_hooks_then_root_hooks_and_reports_failures(make_backend: Any) -> None:
    order: list[str] = []

    def init(lifecycle: Any, root_lifecycle: Any) -> None:
        lifecycle.add_shutdown_hook(lambda: order.append("plugin shutdown"))
        root_lifecycle.add_shutdown_hook(lambda: order.append("root shutdown"))
        root_lifecycle.add_before_shutdown_hook(lambda: order.append("root before shutdown"))

        def broken() -> None:
            raise RuntimeError("hook broke")

        lifecycle.add_shutdown_hook(broken)

    backend = make_backend()
    backend.add(
        plugin(
            "a",
            init,
            {"lifecycle": core_services.lifecycle, "root_lifecycle": core_services.root_lifecycle},
        )
    )
    backend.start()
    result = backend.stop()

    assert order == ["root before shutdown", "plugin shutdown", "root shutdown"]
    assert not result.ok
    assert [str(e) for e in result.hook_failures] == ["hook broke"]
    assert backend.stop() is result  # stopping twice is fine


def test_hooks_added_after_their_phase_are_refused(make_backend: Any) -> None:
    captured: dict[str, Any] = {}
    backend = make_backend()
    backend.add(
        plugin(
            "a",
            lambda lifecycle: captured.update(lifecycle=lifecycle),
            {"lifecycle": core_services.lifecycle},
        )
    )
    backend.start()

    with pytest.raises(
        RuntimeError, match="^Attempted to add plugin startup hook after startup has completed$"
    ):
        captured["lifecycle"].add_startup_hook(lambda: None)


def test_missing_dependency_names_the_plugin_and_the_ref(make_backend: Any) -> None:
    missing = create_service_ref("example.missing")
    backend = make_backend()
    backend.add(plugin("test", lambda thing: None, {"thing": missing}))

    with pytest.raises(BackendStartupError) as error:
        backend.start()

    assert str(error.value) == (
        "Backend startup failed due to the following errors:\n"
        "  Plugin 'test' startup failed; caused by RuntimeError: Service or extension point "
        "dependencies of plugin 'test' are missing for the following ref(s): serviceRef{example.missing}"
    )


def test_circular_service_dependencies_are_refused_at_start(make_backend: Any) -> None:
    a = create_service_ref("a", scope="root")
    b = create_service_ref("b", scope="root")
    backend = make_backend()
    backend.add(create_service_factory(service=a, deps={"b": b}, factory=lambda b: "a"))
    backend.add(create_service_factory(service=b, deps={"a": a}, factory=lambda a: "b"))

    with pytest.raises(ConflictError) as error:
        backend.start()

    assert str(error.value) == "Circular dependencies detected:\n  'a' -> 'b' -> 'a'"


def test_a_cycle_made_after_a_check_passed_is_still_refused(make_backend: Any) -> None:
    a = create_service_ref("a", scope="root")
    b = create_service_ref("b", scope="root")
    backend = make_backend()
    backend.add(create_service_factory(service=a, deps={"b": b}, factory=lambda b: "a"))
    assert backend.get_service(core_services.root_config) is not None  # checked: no cycle yet
    backend.add(create_service_factory(service=b, deps={"a": a}, factory=lambda a: "b"))

    with pytest.raises(ConflictError, match="'a' -> 'b' -> 'a'"):
        backend.get_service(core_services.root_config)


def test_a_root_service_can_not_depend_on_a_plugin_service(make_backend: Any) -> None:
    root_ref = create_service_ref("example.root", scope="root")
    backend = make_backend()
    backend.add(
        create_service_factory(
            service=root_ref, deps={"logger": core_services.logger}, factory=lambda logger: 1
        )
    )
    backend.add(plugin("test", lambda x: None, {"x": root_ref}))

    with pytest.raises(RuntimeError) as error:  # root services are built first, so start fails
        backend.start()

    assert str(error.value) == (
        "Failed to instantiate 'root' scoped service 'example.root' because it depends on "
        "'plugin' scoped service 'core.logger'."
    )


def test_a_factory_that_raises_is_reported_with_the_service_and_plugin(make_backend: Any) -> None:
    ref = create_service_ref("example.broken")

    def factory() -> None:
        raise ValueError("NOPE")

    backend = make_backend()
    backend.add(create_service_factory(service=ref, factory=factory))
    backend.add(plugin("test", lambda broken: None, {"broken": ref}))

    with pytest.raises(BackendStartupError) as error:
        backend.start()

    assert (
        "Plugin 'test' startup failed; caused by RuntimeError: Failed to instantiate service "
        "'example.broken' for 'test' because the factory function threw an error, ValueError: NOPE"
    ) in str(error.value)


def test_a_plugin_added_twice_is_refused(make_backend: Any) -> None:
    backend = make_backend()
    backend.add(plugin("twice", lambda: None))
    backend.add(plugin("twice", lambda: None))

    with pytest.raises(RuntimeError, match="^Plugin 'twice' is already registered$"):
        backend.start()


def test_two_factories_for_one_service_are_refused(make_backend: Any) -> None:
    ref = create_service_ref("example.thing")
    backend = make_backend()
    backend.add(create_service_factory(service=ref, factory=lambda: 1))

    with pytest.raises(
        ValueError, match="^Duplicate service implementations provided for example.thing$"
    ):
        backend.add(create_service_factory(service=ref, factory=lambda: 2))


def test_an_added_factory_replaces_the_default(make_backend: Any) -> None:
    seen = {}
    backend = make_backend()
    backend.add(
        create_service_factory(service=core_services.discovery, factory=lambda: "custom discovery")
    )
    backend.add(
        plugin(
            "a", lambda discovery: seen.update(d=discovery), {"discovery": core_services.discovery}
        )
    )
    backend.start()
    assert seen["d"] == "custom discovery"


def test_adding_after_start_and_starting_twice_are_refused(make_backend: Any) -> None:
    backend = make_backend()
    backend.start()

    with pytest.raises(
        RuntimeError, match="^feature can not be added after the backend has started$"
    ):
        backend.add(plugin("late", lambda: None))
    with pytest.raises(RuntimeError, match="^Backend has already started$"):
        backend.start()


# "\u212a" and "\u017f" (the Kelvin sign and the long s) match [a-z] under Python's re.IGNORECASE,
# but not under JavaScript's /i, which Backstage's pattern uses.
@pytest.mark.parametrize(
    "bad_id", ["test:invalid&id", "1abc", "a--b", "", "-a", "\u212aelvin", "te\u017ft"]
)
def test_bad_plugin_ids_are_refused(bad_id: str) -> None:
    with pytest.raises(ValueError) as error:
        plugin(bad_id, lambda: None)
    assert str(error.value) == (
        f"Invalid pluginId '{bad_id}', must match the pattern /^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$/i "
        f"(letters, digits, and dashes only, starting with a letter)"
    )


def test_bad_module_ids_are_refused() -> None:
    with pytest.raises(ValueError) as error:
        create_backend_module(
            plugin_id="test", module_id="invalid:module&id", register=lambda env: None
        )
    assert str(error.value) == (
        "Invalid moduleId 'invalid:module&id' for plugin 'test', must match the pattern "
        "/^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$/i (letters, digits, and dashes only, starting with a letter)"
    )


def test_register_must_call_register_init_exactly_once(make_backend: Any) -> None:
    backend = make_backend()
    backend.add(create_backend_plugin(plugin_id="lazy", register=lambda env: None, django_app=None))
    with pytest.raises(RuntimeError, match="^registerInit was not called by register in lazy$"):
        backend.start()

    def twice(env: Any) -> None:
        env.register_init(deps={}, init=lambda: None)
        env.register_init(deps={}, init=lambda: None)

    other = make_backend()
    other.add(create_backend_plugin(plugin_id="eager", register=twice, django_app=None))
    with pytest.raises(RuntimeError, match="^registerInit must only be called once$"):
        other.start()


def test_extension_points_are_only_for_modules_of_their_own_plugin(make_backend: Any) -> None:
    point = create_extension_point("a.point")

    def register_a(env: Any) -> None:
        env.register_extension_point(point, object())
        env.register_init(deps={}, init=lambda: None)

    def register_module(env: Any) -> None:
        env.register_init(deps={"point": point}, init=lambda point: None)

    backend = make_backend()
    backend.add(create_backend_plugin(plugin_id="a", register=register_a, django_app=None))
    backend.add(
        create_backend_plugin(
            plugin_id="b",
            register=lambda env: env.register_init(deps={}, init=lambda: None),
            django_app=None,
        )
    )
    backend.add(
        create_backend_module(
            plugin_id="b", module_id="thief", register=register_module, django_app=None
        )
    )
    with pytest.raises(BackendStartupError) as error:
        backend.start()
    assert (
        "Illegal dependency: Module 'thief' for plugin 'b' attempted to depend on extension point "
        "'a.point' for plugin 'a'. Extension points can only be used within their plugin's scope."
    ) in str(error.value)


def test_boot_failure_aborts_by_default(make_backend: Any) -> None:
    def broken() -> None:
        raise RuntimeError("Test error")

    backend = make_backend()
    backend.add(plugin("plugin1", broken))
    with pytest.raises(BackendStartupError) as error:
        backend.start()
    assert str(error.value) == (
        "Backend startup failed due to the following errors:\n"
        "  Plugin 'plugin1' startup failed; caused by RuntimeError: Test error"
    )


@pytest.mark.parametrize(
    "startup",
    [
        {"default": {"onPluginBootFailure": "continue"}},
        {"plugins": {"flaky": {"onPluginBootFailure": "continue"}}},
    ],
)
def test_boot_failure_may_continue_by_default_or_per_plugin(
    make_backend: Any, startup: dict[str, Any]
) -> None:
    started = []

    def broken() -> None:
        raise RuntimeError("Test error")

    backend = make_backend({"backend": {"baseUrl": "http://localhost:7007", "startup": startup}})
    backend.add(plugin("flaky", broken))
    backend.add(plugin("solid", lambda: started.append("solid")))
    result = backend.start()

    assert result.outcome == "success"
    assert started == ["solid"]
    flaky = next(p for p in result.plugins if p.plugin_id == "flaky")
    assert flaky.failure is not None and flaky.failure[1] is True


def test_per_plugin_abort_overrides_a_default_of_continue(make_backend: Any) -> None:
    def broken() -> None:
        raise RuntimeError("Test error")

    startup = {
        "default": {"onPluginBootFailure": "continue"},
        "plugins": {"strict": {"onPluginBootFailure": "abort"}},
    }
    backend = make_backend({"backend": {"baseUrl": "http://localhost:7007", "startup": startup}})
    backend.add(plugin("strict", broken))
    with pytest.raises(BackendStartupError, match="Plugin 'strict' startup failed"):
        backend.start()


def test_a_plugin_is_added_by_module_path_with_its_django_app(make_backend: Any) -> None:
    backend = make_backend()
    backend.add("tests.plugins.alpha.plugin")
    assert backend.plugin_ids == ["alpha"]
    assert backend.django_apps == ["tests.plugins.alpha"]


def test_a_module_path_without_a_default_feature_is_explained(make_backend: Any) -> None:
    backend = make_backend()
    with pytest.raises(ImportError) as error:
        backend.add("tests.plugins.alpha.models")
    assert str(error.value) == (
        "Module 'tests.plugins.alpha.models' has no backend feature 'default'; export one as "
        "`default = ...`, or add it as 'tests.plugins.alpha.models:<name>'"
    )


def test_multiton_refs_collect_every_factory(make_backend: Any) -> None:
    ref = create_service_ref("example.many", scope="root", multiton=True)
    seen = {}
    backend = make_backend()
    backend.add(create_service_factory(service=ref, factory=lambda: "one"))
    backend.add(create_service_factory(service=ref, factory=lambda: "two"))
    backend.add(plugin("a", lambda many: seen.update(many=many), {"many": ref}))
    backend.start()
    assert seen["many"] == ["one", "two"]


def test_plugin_scoped_services_are_built_once_per_plugin_with_a_shared_root_context(
    make_backend: Any,
) -> None:
    ref = create_service_ref("example.counter")
    contexts: list[int] = []
    seen: dict[str, Any] = {}

    def create_root_context() -> dict[str, int]:
        contexts.append(1)
        return {"built": 0}

    def factory(context: dict[str, int], metadata: Any) -> str:
        context["built"] += 1
        return f"{metadata.get_id()}#{context['built']}"

    backend = make_backend()
    backend.add(
        create_service_factory(
            service=ref,
            deps={"metadata": core_services.plugin_metadata},
            create_root_context=create_root_context,
            factory=factory,
        )
    )
    backend.add(plugin("a", lambda counter: seen.update(a=counter), {"counter": ref}))
    backend.add(
        plugin(
            "b",
            lambda counter, again: seen.update(b=counter, again=again),
            {"counter": ref, "again": ref},
        )
    )
    backend.start()

    assert contexts == [1]
    assert {seen["a"], seen["b"]} == {"a#1", "b#2"} or {seen["a"], seen["b"]} == {"a#2", "b#1"}
    assert seen["b"] == seen["again"]


def test_plugin_metadata_is_one_instance_per_plugin_for_every_dependant(make_backend: Any) -> None:
    ref = create_service_ref("example.owner")
    seen: dict[str, list[Any]] = {}

    def factory(metadata: Any) -> Any:
        return metadata

    backend = make_backend()
    backend.add(
        create_service_factory(
            service=ref, deps={"metadata": core_services.plugin_metadata}, factory=factory
        )
    )
    for plugin_id in ("a", "b"):
        backend.add(
            plugin(
                plugin_id,
                lambda owner, metadata, logger, plugin_id=plugin_id: seen.update(
                    {plugin_id: [owner, metadata]}
                ),
                {
                    "owner": ref,
                    "metadata": core_services.plugin_metadata,
                    "logger": core_services.logger,
                },
            )
        )
    backend.start()

    assert seen["a"][0] is seen["a"][1] and seen["a"][1].get_id() == "a"
    assert seen["b"][0] is seen["b"][1] and seen["b"][1].get_id() == "b"
    assert backend.get_service(core_services.plugin_metadata, "a") is seen["a"][1]


def test_core_factories_that_do_no_io_are_built_on_the_backends_loop() -> None:
    """A plain factory is run in a worker thread (it may block, or use the ORM); the core services
    that only build objects are coroutine functions, as Backstage's factories are, so a start does
    not pay a thread hop for each of them. The database and config factories do I/O."""
    from backstage_core.runtime import default_service_factories

    blocking = {"core.database", "core.rootConfig"}
    for factory in default_service_factories():
        callables = [factory.factory, factory.create_root_context]
        for fn in (fn for fn in callables if fn is not None):
            assert asyncio.iscoroutinefunction(fn) is (factory.service.id not in blocking), (
                factory.service.id
            )
