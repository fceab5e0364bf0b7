"""Database engines: how ``backend.database`` turns into a Django ``DATABASES`` entry per plugin.

    client: better-sqlite3 | sqlite3    one file (or in-memory database) per plugin
    client: pg                          one database per plugin (<prefix><pluginId>), or with
                                        pluginDivisionMode: schema one database, a schema per plugin
    client: mysql2 | mysql              one database per plugin (MySQL and MariaDB)

Each engine also creates what is missing (``ensureExists``) and serialises migrations of one
database across processes.
"""

from __future__ import annotations

import contextlib
import fcntl
import time
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlparse

from backstage_core.errors import stringify_error

__all__ = [
    "ENGINES",
    "ImproperDatabaseConfig",
    "Layout",
    "engine_for",
    "ensure_table",
    "migration_lock",
    "parse_connection",
]

MEMORY = ":memory:"
SQLITE_BUSY_TIMEOUT_SECONDS = 20
# WAL with NORMAL syncing (no fsync per commit; durable at checkpoints), and checkpoints every
# 10,000 pages (~40 MB) of log instead of 1,000: hot index pages are copied back once per
# checkpoint, so fewer, larger checkpoints do less work per write.
SQLITE_INIT = "PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL;PRAGMA wal_autocheckpoint=10000"
DEFAULT_PREFIX = "backstage_plugin_"
PG_NAME_LIMIT = 63


class ImproperDatabaseConfig(ValueError):
    """``backend.database`` asks for something that can not work."""


@dataclass(frozen=True)
class Layout:
    """What config says about one plugin's database, engine-independent."""

    plugin_id: str
    client: str
    connection: Mapping[str, Any]
    division_mode: str
    prefix: str
    schema_prefix: str
    ensure_exists: bool
    role: str | None


def parse_connection(client: str, value: Any) -> dict[str, Any]:
    """A ``connection`` value as a dict: a URL is split into host, port, user, password, database."""
    if value is None:
        return {}
    if not isinstance(value, str):
        return dict(value)
    if client in SQLITE_CLIENTS:
        return {"filename": value}
    url = urlparse(value)
    if not url.scheme or not url.hostname:
        raise ImproperDatabaseConfig(
            f"Invalid {client} connection string, expected a URL like {_EXAMPLE_URL[client]}"
        )
    parsed: dict[str, Any] = {"host": url.hostname}
    if url.port:
        parsed["port"] = url.port
    if url.username:
        parsed["user"] = unquote(url.username)
    if url.password:
        parsed["password"] = unquote(url.password)
    if url.path.strip("/"):
        parsed["database"] = unquote(url.path.strip("/"))
    parsed.update(dict(parse_qsl(url.query)))
    return parsed


SQLITE_CLIENTS = ("better-sqlite3", "sqlite3")
PG_CLIENTS = ("pg",)
MYSQL_CLIENTS = ("mysql2", "mysql")
_EXAMPLE_URL = {
    "pg": "postgresql://user:password@host:5432",
    "mysql2": "mysql://user:password@host:3306",
    "mysql": "mysql://user:password@host:3306",
}


class SqliteEngine:
    clients = SQLITE_CLIENTS

    def settings(self, layout: Layout, memory_name: str, base_dir: Path) -> dict[str, Any]:
        if layout.division_mode != "database":
            raise ImproperDatabaseConfig(
                f"The SQLite driver does not support plugin division mode '{layout.division_mode}'"
            )
        connection = layout.connection
        options: dict[str, Any] = {
            "timeout": SQLITE_BUSY_TIMEOUT_SECONDS,
            "transaction_mode": "IMMEDIATE",
            "init_command": SQLITE_INIT,
        }
        if connection.get("filename") == MEMORY or (
            "filename" not in connection and "directory" not in connection
        ):
            return {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": memory_name,
                "OPTIONS": {**options, "uri": True},
            }
        directory = Path(connection.get("directory") or ".")
        if not directory.is_absolute():
            directory = base_dir / directory
        path = directory / (connection.get("filename") or f"{layout.plugin_id}.sqlite")
        # Connections stay open across requests (one per thread): opening a SQLite file and
        # setting it up costs more than most queries.
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(path),
            "OPTIONS": options,
            "CONN_MAX_AGE": None,
        }

    def ensure_exists(self, layout: Layout, entry: Mapping[str, Any]) -> None:
        name = str(entry["NAME"])
        if not name.startswith("file:"):
            Path(name).parent.mkdir(parents=True, exist_ok=True)


_SERVER_KEYS = {"host": "HOST", "port": "PORT", "user": "USER", "password": "PASSWORD"}


def _server_entry(
    engine: str, layout: Layout, name: str, pool: Mapping[str, Any], options: dict[str, Any]
) -> dict[str, Any]:
    connection = dict(layout.connection)
    entry: dict[str, Any] = {
        "ENGINE": engine,
        "NAME": name,
        "CONN_MAX_AGE": 0,
        "BACKSTAGE_POOL": dict(pool),
    }
    for key, django_key in _SERVER_KEYS.items():
        if key in connection:
            entry[django_key] = str(connection.pop(key))
    connection.pop("database", None)
    connection.pop("filename", None)
    connection.pop("directory", None)
    entry["OPTIONS"] = {**connection, **options}
    return entry


def _retry(action: Any, attempts: int = 3) -> None:
    for attempt in range(attempts):
        try:
            action()
            return
        except Exception:
            if attempt == attempts - 1:
                raise
            time.sleep(0.1)


class PostgresEngine:
    clients = PG_CLIENTS

    def settings(
        self, layout: Layout, pool: Mapping[str, Any], connect_timeout: int
    ) -> dict[str, Any]:
        options: dict[str, Any] = {
            "connect_timeout": connect_timeout,
            "application_name": layout.connection.get(
                "application_name", f"backstage_plugin_{layout.plugin_id}"
            ),
        }
        if layout.role:
            options["assume_role"] = layout.role
        if layout.division_mode == "schema":
            name = layout.connection.get("database") or "postgres"
            schema = f"{layout.schema_prefix}{layout.plugin_id}"
            if len(schema.encode()) > PG_NAME_LIMIT:
                raise ImproperDatabaseConfig(
                    f'PostgreSQL schema name "{schema}" exceeds the 63-byte limit. Consider using a '
                    f'shorter schemaPrefix (current: "{layout.schema_prefix}") or plugin ID (current: '
                    f'"{layout.plugin_id}").'
                )
            options["options"] = f"-c search_path={schema}"
        elif layout.division_mode == "database":
            name = layout.connection.get("database") or f"{layout.prefix}{layout.plugin_id}"
        else:
            raise ImproperDatabaseConfig(
                f"The PostgreSQL driver does not support plugin division mode '{layout.division_mode}'"
            )
        return _server_entry("backstage_core.db.backends.postgresql", layout, name, pool, options)

    def ensure_exists(self, layout: Layout, entry: Mapping[str, Any]) -> None:
        import psycopg
        from psycopg import sql

        params = _pg_params(entry)
        name = entry["NAME"]

        def create_database() -> None:
            with psycopg.connect(**{**params, "dbname": "postgres"}, autocommit=True) as admin:
                exists = admin.execute(
                    "select 1 from pg_database where datname = %s", [name]
                ).fetchone()
                if not exists:
                    with contextlib.suppress(
                        psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation
                    ):
                        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

        try:
            _retry(create_database)
        except Exception as error:
            raise ConnectionError(
                f"Failed to connect to the database to make sure that '{name}' exists, {stringify_error(error)}"
            ) from error
        if layout.division_mode != "schema":
            return
        schema = f"{layout.schema_prefix}{layout.plugin_id}"

        def create_schema() -> None:
            with psycopg.connect(**{**params, "dbname": name}, autocommit=True) as connection:
                statement = sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema))
                if layout.role:
                    statement = sql.SQL("CREATE SCHEMA IF NOT EXISTS {} AUTHORIZATION {}").format(
                        sql.Identifier(schema), sql.Identifier(layout.role)
                    )
                with contextlib.suppress(
                    psycopg.errors.UniqueViolation, psycopg.errors.DuplicateSchema
                ):
                    connection.execute(statement)

        try:
            _retry(create_schema)
        except Exception as error:
            raise ConnectionError(
                f"Failed to connect to the database to make sure that schema for plugin "
                f"'{layout.plugin_id}' exists, {stringify_error(error)}"
            ) from error


def _pg_params(entry: Mapping[str, Any]) -> dict[str, Any]:
    params: dict[str, Any] = {
        key: entry[django_key]
        for key, django_key in (
            ("host", "HOST"),
            ("port", "PORT"),
            ("user", "USER"),
            ("password", "PASSWORD"),
        )
        if entry.get(django_key)
    }
    options = entry.get("OPTIONS", {})
    for key in ("sslmode", "sslrootcert", "sslcert", "sslkey", "connect_timeout"):
        if key in options:
            params[key] = options[key]
    return params


class MysqlEngine:
    clients = MYSQL_CLIENTS

    def settings(
        self, layout: Layout, pool: Mapping[str, Any], connect_timeout: int
    ) -> dict[str, Any]:
        if layout.division_mode != "database":
            raise ImproperDatabaseConfig(
                f"The MySQL driver does not support plugin division mode '{layout.division_mode}'"
            )
        name = layout.connection.get("database") or f"{layout.prefix}{layout.plugin_id}"
        options = {
            "connect_timeout": connect_timeout,
            "charset": layout.connection.get("charset", "utf8mb4"),
        }
        return _server_entry("backstage_core.db.backends.mysql", layout, name, pool, options)

    def ensure_exists(self, layout: Layout, entry: Mapping[str, Any]) -> None:
        import pymysql

        name = entry["NAME"]

        def create() -> None:
            connection = pymysql.connect(
                host=entry.get("HOST") or "localhost",
                port=int(entry.get("PORT") or 3306),
                user=entry.get("USER") or None,
                password=entry.get("PASSWORD") or "",
                connect_timeout=entry["OPTIONS"].get("connect_timeout", 10),
            )
            try:
                with connection.cursor() as cursor:
                    cursor.execute(
                        f"CREATE DATABASE IF NOT EXISTS `{name.replace('`', '``')}` CHARACTER SET utf8mb4"
                    )
            finally:
                connection.close()

        try:
            _retry(create)
        except Exception as error:
            raise ConnectionError(
                f"Failed to connect to the database to make sure that '{name}' exists, {stringify_error(error)}"
            ) from error


ENGINES: dict[str, Any] = {}
for _engine in (SqliteEngine(), PostgresEngine(), MysqlEngine()):
    for _client in _engine.clients:
        ENGINES[_client] = _engine


def engine_for(client: str, plugin_id: str) -> Any:
    try:
        return ENGINES[client]
    except KeyError:
        raise ImproperDatabaseConfig(
            f"Unsupported database client type '{client}' specified for plugin '{plugin_id}'"
        ) from None


@contextlib.contextmanager
def migration_lock(connection: Any) -> Iterator[None]:
    """Serialise migrations of one database across processes (backends starting side by side).

    SQLite files: an ``flock`` on the database file (SQLite's own locks are POSIX record locks,
    which ``flock`` does not touch). PostgreSQL: an advisory lock; MySQL: ``GET_LOCK``.
    """
    name = str(connection.settings_dict.get("NAME"))
    key = f"backstage-migrations:{connection.alias}"
    if connection.vendor == "sqlite":
        if name.startswith("file:"):
            yield
            return
        path = Path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return
    if connection.vendor == "postgresql":
        number = zlib.crc32(key.encode())
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [number])
        try:
            yield
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [number])
        return
    if connection.vendor == "mysql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT GET_LOCK(%s, 300)", [key])
        try:
            yield
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT RELEASE_LOCK(%s)", [key])
        return
    yield


def ensure_table(alias: str, model: Any) -> None:
    """Create an unmanaged model's table in the database ``alias`` if it is missing.

    For the tables the backend system keeps in every plugin's database (scheduled tasks, plugin
    keys): plugins do not list them in their migrations. Safe when several processes race.
    """
    from django.db import connections

    connection = connections[alias]
    with migration_lock(connection):
        if model._meta.db_table not in connection.introspection.table_names():
            with connection.schema_editor() as editor:
                editor.create_model(model)
