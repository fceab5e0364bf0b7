"""The database service: every plugin gets a Django database alias of its own, named after it.

    backend:
      database:
        client: better-sqlite3
        connection:
          directory: ./db            # one file per plugin: ./db/<pluginId>.sqlite
        plugin:
          todo:
            connection: {filename: todo-data.sqlite}

Without ``backend.database`` every plugin gets its own in-memory SQLite database, as in
Backstage. Django's own apps (admin users, sessions) use the ``default`` alias, laid out as if it
were a plugin named ``default``. A plugin's models are routed to its alias by
:class:`backstage_core.db.PluginDatabaseRouter`, and its migrations are applied when the backend
starts unless ``skipMigrations`` is set. SQLite runs in WAL mode with a busy timeout and
``BEGIN IMMEDIATE`` transactions, so concurrent writers wait for each other instead of failing
with "database is locked".
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backstage_core.db.engines import (
    DEFAULT_PREFIX,
    MEMORY,
    SQLITE_CLIENTS,
    ImproperDatabaseConfig,
    Layout,
    engine_for,
    migration_lock,
    parse_connection,
)
from backstage_core.services.definitions import core_services
from backstage_core.wiring.features import ServiceFactory, create_service_factory

__all__ = [
    "DEFAULT_ALIAS",
    "DatabaseManager",
    "PluginDatabase",
    "database_factory",
    "django_databases",
]

DEFAULT_ALIAS = "default"
DEFAULT_CONNECT_TIMEOUT_SECONDS = 5


@dataclass(frozen=True)
class Migrations:
    """A plugin database's migration settings (``skipMigrations``)."""

    skip: bool = False


def _base_config(config: Any) -> Any:
    database = config.get_optional_config("backend.database")
    if database is None:
        from backstage_core.config.reader import ConfigReader

        return ConfigReader({"client": "better-sqlite3", "connection": MEMORY}, "default-database")
    return database


class DatabaseManager:
    """Reads ``backend.database`` and lays out one Django alias per plugin."""

    def __init__(self, config: Any, *, base_dir: Path | None = None) -> None:
        self.config = config
        self.database = _base_config(config)
        self.base_dir = base_dir or Path.cwd()
        self._memory_names: dict[str, str] = {}
        self._keepers: dict[str, sqlite3.Connection] = {}
        self._replaced: dict[str, dict[str, Any]] = {}
        self._instance = uuid.uuid4().hex[:12]
        self._lock = threading.Lock()
        self._layouts: dict[str, Layout] = {}

    # -- layout --------------------------------------------------------------------------

    def _plugin(self, plugin_id: str, key: str) -> Any:
        return self.database.get_optional(f"plugin.{plugin_id}.{key}")

    def client(self, plugin_id: str) -> str:
        return self.database.get_optional_string(
            f"plugin.{plugin_id}.client"
        ) or self.database.get_string("client")

    def skip_migrations(self, plugin_id: str) -> bool:
        value = self.database.get_optional_boolean(f"plugin.{plugin_id}.skipMigrations")
        if value is None:
            value = self.database.get_optional_boolean("skipMigrations")
        return bool(value)

    def layout(self, plugin_id: str) -> Layout:
        """What config says about ``plugin_id``'s database (a plugin's overrides over the base).

        Read once per plugin, as Backstage's manager reads it once per plugin: Django's
        ``DATABASES`` (laid out from it while the settings load), the connection and the checks
        at start all see the same layout, and the workers of the server inherit it.
        """
        layout = self._layouts.get(plugin_id)
        if layout is None:
            layout = self._layouts[plugin_id] = self._read_layout(plugin_id)
        return layout

    def _read_layout(self, plugin_id: str) -> Layout:
        client = self.client(plugin_id)
        engine_for(client, plugin_id)
        base_client = self.database.get_string("client")
        base = parse_connection(base_client, self.database.get_optional("connection"))
        if base_client in SQLITE_CLIENTS and base.get("filename") not in (None, MEMORY):
            raise ImproperDatabaseConfig(
                "`connection.filename` is not supported for the base sqlite connection. Prefer "
                "`connection.directory` or provide a filename for the plugin connection instead."
            )
        mode = self.database.get_optional_string("pluginDivisionMode") or "database"
        if mode == "database":
            base.pop("database", None)
        own = parse_connection(client, self._plugin(plugin_id, "connection"))
        connection = {**({} if client != base_client else base), **own}
        ensure = self.database.get_optional_boolean(f"plugin.{plugin_id}.ensureExists")
        if ensure is None:
            ensure = self.database.get_optional_boolean("ensureExists")
        return Layout(
            plugin_id=plugin_id,
            client=client,
            connection=connection,
            division_mode=mode,
            prefix=self.database.get_optional_string("prefix") or DEFAULT_PREFIX,
            schema_prefix=self.database.get_optional("schemaPrefix") or "",
            ensure_exists=True if ensure is None else ensure,
            role=self.database.get_optional_string(f"plugin.{plugin_id}.role")
            or self.database.get_optional_string("role"),
        )

    def pool_settings(self) -> dict[str, Any]:
        """``backend.database.pool``: the most server connections one process holds, in all."""
        pool = self.database.get_optional_config("pool")
        settings: dict[str, Any] = {}
        if pool is not None:
            if pool.has("max"):
                settings["max"] = int(pool.get_number("max"))
            for key, name in (
                ("idleTimeout", "idle_timeout"),
                ("acquireTimeout", "acquire_timeout"),
            ):
                if pool.has(key):
                    settings[name] = _seconds(pool.get(key), f"backend.database.pool.{key}")
        return settings

    def connect_timeout(self) -> int:
        value = self.database.get_optional("connectTimeout")
        if value is None:
            return DEFAULT_CONNECT_TIMEOUT_SECONDS
        return max(1, round(_seconds(value, "backend.database.connectTimeout")))

    def django_settings(self, plugin_id: str) -> dict[str, Any]:
        """The ``DATABASES`` entry for one plugin (or for ``default``)."""
        layout = self.layout(plugin_id)
        engine = engine_for(layout.client, plugin_id)
        if layout.client in SQLITE_CLIENTS:
            name = self._memory_names.setdefault(
                plugin_id, f"file:/backstage-{self._instance}-{plugin_id}?vfs=memdb"
            )
            return engine.settings(layout, name, self.base_dir)
        return engine.settings(layout, self.pool_settings(), self.connect_timeout())

    def ensure_exists(self, plugin_id: str) -> None:
        """Create the plugin's database (file directory, database or schema) where it is missing."""
        layout = self.layout(plugin_id)
        engine = engine_for(layout.client, plugin_id)
        if layout.ensure_exists or layout.client in SQLITE_CLIENTS:
            engine.ensure_exists(layout, self.django_settings(plugin_id))

    # -- runtime -------------------------------------------------------------------------

    def register(self, plugin_id: str) -> str:
        """Make sure Django knows the alias for ``plugin_id`` as laid out here; returns the alias.

        An alias already known with other settings (a test backend borrowing the test settings'
        alias) is updated in place, so every thread's connection wrapper sees the new database on
        its next connect; :meth:`close` gives the old settings back.
        """
        from django.db import connections

        alias = plugin_id
        wanted = _configured(self.django_settings(plugin_id))
        with self._lock:
            current = connections.settings.get(alias)
            if current is None:
                connections.settings[alias] = wanted
                _django_settings_databases()[alias] = wanted
            elif _identity(current) != _identity(wanted):
                self._replaced.setdefault(alias, dict(current))
                forget_connection(alias)
                current.clear()
                current.update(wanted)
            self._prepare(alias)
        return alias

    def _prepare(self, alias: str) -> None:
        """Create what is missing; keep an in-memory database alive as long as the backend."""
        from django.db import connections

        name = str(connections.settings[alias]["NAME"])
        if "vfs=memdb" in name:
            if alias not in self._keepers:
                self._keepers[alias] = sqlite3.connect(name, uri=True, check_same_thread=False)
        else:
            self.ensure_exists(alias)

    def migrate(self, alias: str, app_labels: list[str] | None) -> list[str]:
        """Apply migrations to ``alias``: of ``app_labels``, or (None) of every app; returns those applied."""
        from django.db import connections

        connection = connections[alias]
        if _up_to_date(connection, app_labels):
            connection.close()
            return []
        from django.db.migrations.executor import MigrationExecutor

        with migration_lock(connection):
            executor = MigrationExecutor(connection)
            leaves = executor.loader.graph.leaf_nodes()
            targets = [key for key in leaves if app_labels is None or key[0] in app_labels]
            plan = executor.migration_plan(targets)
            if plan:
                executor.migrate(targets, plan=plan)
        connection.close()
        return [f"{migration.app_label}.{migration.name}" for migration, _ in plan]

    def close(self) -> None:
        """Close the connections this process holds, let in-memory databases go, and give back
        any alias this manager took over (a test backend borrowing the test database's alias)."""
        from django.db import connections

        from backstage_core.db.pool import budget

        for alias in list(self._keepers):
            forget_connection(alias)
            self._keepers.pop(alias).close()
        for connection in connections.all(initialized_only=True):
            connection.close()
        budget().close_idle(lambda raw: raw.close())
        with self._lock:
            for alias, previous in self._replaced.items():
                forget_connection(alias)
                current = connections.settings[alias]
                current.clear()
                current.update(previous)
            self._replaced.clear()

    def for_plugin(self, plugin_id: str, app_labels: list[str]) -> PluginDatabase:
        alias = self.register(plugin_id)
        return PluginDatabase(
            alias, Migrations(skip=self.skip_migrations(plugin_id)), app_labels, self
        )


class PluginDatabase:
    """A plugin's database service: ``get_client()`` is its Django connection."""

    def __init__(
        self, alias: str, migrations: Migrations, app_labels: list[str], manager: DatabaseManager
    ) -> None:
        self.alias = alias
        self.migrations = migrations
        self.app_labels = app_labels
        self._manager = manager

    def get_client(self) -> Any:
        """This thread's connection to the plugin's database (``django.db.connections[alias]``)."""
        from django.db import connections

        return connections[self.alias]

    def migrate(self) -> list[str]:
        """Apply the plugin's Django migrations to its database."""
        return self._manager.migrate(self.alias, self.app_labels)


_migration_graphs: dict[tuple[Any, ...], Any] = {}
_migration_graphs_lock = threading.Lock()


def migration_graph() -> Any:
    """The migration graph on disk (no database's state), built once per set of installed apps.

    ``manage.py serve`` builds it before forking its workers, which share it."""
    from django.apps import apps
    from django.conf import settings
    from django.db.migrations.loader import MigrationLoader

    key = (
        tuple((app.label, app.name, _mtime(app.path)) for app in apps.get_app_configs()),
        repr(getattr(settings, "MIGRATION_MODULES", {})),
    )
    graph = _migration_graphs.get(key)
    if graph is None:
        with _migration_graphs_lock:
            graph = _migration_graphs.get(key)
            if graph is None:
                graph = _migration_graphs[key] = MigrationLoader(
                    None, ignore_no_migrations=True
                ).graph
    return graph


def _mtime(app_path: str) -> int:
    """When the app's migrations directory last changed (a migration written since counts)."""
    try:
        return os.stat(os.path.join(app_path, "migrations")).st_mtime_ns
    except OSError:
        return 0


def _up_to_date(connection: Any, app_labels: list[str] | None) -> bool:
    """Whether every migration ``migrate`` would plan for these apps (with what they depend on)
    is recorded as applied on ``connection``: then there is nothing to lock or to plan.

    A start finds its databases migrated almost always; Django's executor would build the whole
    graph from disk again (reloading the migration packages) for each plugin's database. A
    database this cannot vouch for (a squashed migration recorded only by its parts, say) goes
    through the executor as before."""
    graph = migration_graph()
    targets = [key for key in graph.leaf_nodes() if app_labels is None or key[0] in app_labels]
    needed = {node for target in targets for node in graph.forwards_plan(target)}
    return needed.issubset(_applied_migrations(connection))


def _applied_migrations(connection: Any) -> set[tuple[str, str]]:
    """The ``(app, name)`` pairs recorded in ``connection``'s migration table; none when it has no
    such table yet.

    One query, where :class:`MigrationRecorder` would list every table first and build a model
    instance per row: this runs for each plugin's database as each worker starts. Inside a
    transaction, which a failed query would spoil, the recorder looks for the table first."""
    from django.db import DatabaseError
    from django.db.migrations.recorder import MigrationRecorder

    if connection.in_atomic_block:
        return set(MigrationRecorder(connection).applied_migrations())
    table = connection.ops.quote_name(MigrationRecorder.Migration._meta.db_table)
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT app, name FROM {table}")  # noqa: S608 - Django's own table
            return set(cursor.fetchall())
    except DatabaseError:
        return set()


def _identity(entry: Mapping[str, Any]) -> tuple[Any, ...]:
    """What makes two DATABASES entries the same database."""
    return tuple(entry.get(key) for key in ("ENGINE", "NAME", "HOST", "PORT", "USER", "OPTIONS"))


def _django_settings_databases() -> dict[str, Any]:
    from django.conf import settings

    return settings.DATABASES


def _configured(entry: dict[str, Any]) -> dict[str, Any]:
    """A DATABASES entry with Django's defaults filled in, as ConnectionHandler would."""
    from django.db import connections

    filled = connections.configure_settings(
        {DEFAULT_ALIAS: {"ENGINE": "django.db.backends.dummy"}, "x": dict(entry)}
    )
    return filled["x"]


def forget_connection(alias: str) -> None:
    """Close this thread's connection to ``alias`` and forget it, so its next use reconnects.

    Other threads' connections close at the end of their request (``CONN_MAX_AGE``).
    """
    from django.db import connections

    with contextlib.suppress(Exception):
        if hasattr(connections._connections, alias):
            getattr(connections._connections, alias).close()
            delattr(connections._connections, alias)


def _seconds(value: Any, key: str) -> float:
    from backstage_core.config.duration import to_timedelta

    if isinstance(value, int | float) and not isinstance(value, bool):
        return value / 1000
    try:
        return to_timedelta(value).total_seconds()
    except (TypeError, ValueError) as error:
        raise ImproperDatabaseConfig(f"Invalid duration at '{key}': {error}") from error


def django_databases(
    config: Any, plugin_ids: list[str], *, base_dir: Path
) -> tuple[dict[str, Any], DatabaseManager]:
    """``DATABASES`` for Django's settings: ``default`` and one alias per plugin."""
    manager = shared_manager(config, base_dir)
    for plugin_id in plugin_ids:
        if plugin_id == DEFAULT_ALIAS:
            raise ImproperDatabaseConfig(
                f"A plugin can not be called '{DEFAULT_ALIAS}': that database alias is Django's"
            )
    databases = {alias: manager.django_settings(alias) for alias in [DEFAULT_ALIAS, *plugin_ids]}
    return databases, manager


_MANAGERS: dict[int, DatabaseManager] = {}


def shared_manager(config: Any, base_dir: Path | None = None) -> DatabaseManager:
    """The one manager for a config object, so settings and the running backend agree on names."""
    manager = _MANAGERS.get(id(config))
    if manager is None or manager.config is not config:
        manager = _MANAGERS[id(config)] = DatabaseManager(config, base_dir=base_dir)
    return manager


def database_factory(
    *, base_dir: Path | None = None, manage_default: bool = True
) -> ServiceFactory:
    """The database service. Migrations of each plugin's apps run when its service is created.

    With ``manage_default``, the ``default`` alias (Django's own apps) is laid out from config and
    migrated at start too, so an in-memory configuration has working admin tables.
    """

    def create_root_context(config: Any, root_lifecycle: Any, root_logger: Any) -> DatabaseManager:
        manager = shared_manager(config, base_dir)
        if manage_default:
            alias = manager.register(DEFAULT_ALIAS)
            if not manager.skip_migrations(DEFAULT_ALIAS):
                applied = manager.migrate(alias, None)
                if applied:
                    from django.core.management.sql import emit_post_migrate_signal

                    emit_post_migrate_signal(verbosity=0, interactive=False, db=alias)
                    root_logger.info(f"Applied {len(applied)} migrations to the default database")
        root_lifecycle.add_shutdown_hook(manager.close)
        return manager

    def factory(
        manager: DatabaseManager,
        config: Any,
        root_lifecycle: Any,
        root_logger: Any,
        plugin: Any,
        logger: Any,
    ) -> PluginDatabase:
        from backstage_core.db import app_labels_for_plugin

        plugin_id = plugin.get_id()
        database = manager.for_plugin(plugin_id, app_labels_for_plugin(plugin_id))
        if database.app_labels and not database.migrations.skip:
            applied = database.migrate()
            if applied:
                logger.info(f"Applied migrations {', '.join(applied)}")
        return database

    return create_service_factory(
        service=core_services.database,
        deps={
            "config": core_services.root_config,
            "root_lifecycle": core_services.root_lifecycle,
            "root_logger": core_services.root_logger,
            "plugin": core_services.plugin_metadata,
            "logger": core_services.logger,
        },
        create_root_context=create_root_context,
        factory=factory,
        initialization="always",
    )
