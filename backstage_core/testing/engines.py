"""Every database and cache engine a test should run on, as Backstage's TestDatabases and TestCaches.

    def test_lists_todos(test_backend_factory, database_config):     # runs on SQLite, PostgreSQL, MySQL
        backend = test_backend_factory(features=["todo"], config={"backend": {"database": database_config}})

Each test gets fresh databases (a prefix of its own), dropped afterwards. Where the services are:

    BACKSTAGE_TEST_DATABASE_POSTGRES_CONNECTION_STRING   postgresql://postgres@127.0.0.1:5432
    BACKSTAGE_TEST_DATABASE_MYSQL_CONNECTION_STRING      mysql://root@127.0.0.1:3306
    BACKSTAGE_TEST_CACHE_REDIS_CONNECTION_STRING         redis://127.0.0.1:6379

A service that does not answer makes its tests skip, saying why; with
``BACKSTAGE_TEST_REQUIRE_SERVICES=1`` (as CI sets it) they fail instead, so a green run proves
they ran.
"""

from __future__ import annotations

import functools
import os
import socket
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

__all__ = [
    "CACHE_ENGINES",
    "DATABASE_ENGINES",
    "drop_databases",
    "require_service",
    "service_url",
]

DATABASE_ENGINES = ("sqlite", "postgres", "mysql")
CACHE_ENGINES = ("memory", "redis")
SERVICES = {
    "postgres": (
        "BACKSTAGE_TEST_DATABASE_POSTGRES_CONNECTION_STRING",
        "postgresql://postgres@127.0.0.1:5432",
    ),
    "mysql": ("BACKSTAGE_TEST_DATABASE_MYSQL_CONNECTION_STRING", "mysql://root@127.0.0.1:3306"),
    "redis": ("BACKSTAGE_TEST_CACHE_REDIS_CONNECTION_STRING", "redis://127.0.0.1:6379"),
}
NAMES = {"postgres": "PostgreSQL", "mysql": "MySQL/MariaDB", "redis": "Redis"}


def service_url(name: str) -> str:
    variable, default = SERVICES[name]
    return os.environ.get(variable) or default


def mysql_admin(url: str, **options: Any) -> Any:
    """A PyMySQL connection to the server of ``url`` (no database selected)."""
    import pymysql

    parts = urlparse(url)
    return pymysql.connect(
        host=parts.hostname,
        port=parts.port or 3306,
        user=parts.username,
        password=parts.password or "",
        **options,
    )


@functools.cache
def _problem(name: str) -> str | None:
    """Why the service can not be used, or None when it answers."""
    url = urlparse(service_url(name))
    try:
        if name == "postgres":
            import psycopg

            psycopg.connect(service_url(name) + "/postgres", connect_timeout=3).close()
        elif name == "mysql":
            mysql_admin(service_url(name), connect_timeout=3).close()
        else:
            with socket.create_connection((url.hostname, url.port or 6379), timeout=3) as sock:
                sock.sendall(b"PING\r\n")
                if not sock.recv(16).startswith(b"+PONG"):
                    return "it did not answer PING"
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    return None


def require_service(name: str, skip: Callable[[str], Any], fail: Callable[[str], Any]) -> str:
    """The service's URL; skips (or under BACKSTAGE_TEST_REQUIRE_SERVICES fails) if it is down."""
    problem = _problem(name)
    if problem is not None:
        variable, _ = SERVICES[name]
        reason = f"{NAMES[name]} at {service_url(name)} is unreachable ({problem}); set {variable} to use another"
        if os.environ.get("BACKSTAGE_TEST_REQUIRE_SERVICES"):
            fail(reason)
        skip(reason)
    return service_url(name)


def new_prefix() -> str:
    return f"bt_{uuid.uuid4().hex[:10]}_"


def database_section(engine: str, prefix: str, url: str | None) -> dict[str, Any]:
    """A ``backend.database`` section for ``engine``, naming every database with ``prefix``."""
    if engine == "sqlite":
        return {"client": "better-sqlite3", "connection": ":memory:"}
    client = "pg" if engine == "postgres" else "mysql2"
    return {"client": client, "connection": url, "prefix": prefix, "pool": {"max": 20}}


def drop_databases(engine: str, url: str, prefix: str) -> list[str]:
    """Drop every database whose name starts with ``prefix``; returns their names."""
    from backstage_core.db.pool import budget

    budget().close_idle(lambda raw: raw.close())
    if engine == "postgres":
        import psycopg
        from psycopg import sql

        with psycopg.connect(url + "/postgres", autocommit=True) as admin:
            names = [
                row[0]
                for row in admin.execute(
                    "select datname from pg_database where datname like %s", [prefix + "%"]
                )
            ]
            for name in names:
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
        return names
    if engine == "mysql":
        admin = mysql_admin(url)
        try:
            with admin.cursor() as cursor:
                cursor.execute(
                    "select schema_name from information_schema.schemata where schema_name like %s",
                    [prefix + "%"],
                )
                names = [row[0] for row in cursor.fetchall()]
                for name in names:
                    cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        finally:
            admin.close()
        return names
    return []


def delete_cache_keys(url: str, prefix: str) -> int:
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        return client.delete(*keys) if keys else 0
    finally:
        client.close()
