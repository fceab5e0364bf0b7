"""The database service: a database per plugin, its layout from config, migrations, concurrency.

Tests taking ``database_config`` run on SQLite, PostgreSQL and MySQL/MariaDB in turn.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.db import connections

from backstage_core import BackendStartupError, core_services, create_backend_plugin
from backstage_core.config.reader import ConfigReader
from backstage_core.services.database import DatabaseManager, ImproperDatabaseConfig
from tests.helpers import ROOT, write_config

ALPHA = "tests.plugins.alpha.plugin"
BETA = "tests.plugins.beta.plugin"


def with_database(database: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"backend": {"database": {**database, **extra}}}


def file_config(directory: Path, **extra: Any) -> dict[str, Any]:
    return with_database(
        {"client": "better-sqlite3", "connection": {"directory": str(directory)}}, **extra
    )


def rows(path: Path) -> list[str]:
    with sqlite3.connect(path) as connection:
        return [row[0] for row in connection.execute("select text from notes order by id")]


def tables(alias: str) -> set[str]:
    connection = connections[alias]
    connection.close()
    return set(connection.introspection.table_names())


def database_of(backend: Any, plugin_id: str) -> Any:
    return backend.get_service(core_services.database, plugin_id)


# -- on every engine ---------------------------------------------------------------------------


def test_two_plugins_with_a_table_of_the_same_name_do_not_see_each_others_rows(
    test_backend_factory: Any, database_config: dict[str, Any]
) -> None:
    client = test_backend_factory(
        features=[ALPHA, BETA], config=with_database(database_config)
    ).client

    assert client.post("/api/alpha/notes", content="for alpha").json() == ["for alpha"]
    assert client.post("/api/beta/notes", content="for beta").json() == ["for beta"]
    assert client.get("/api/alpha/notes").json() == ["for alpha"]
    assert client.get("/api/beta/notes").json() == ["for beta"]


def test_data_outlives_the_backend_where_the_database_does(
    test_backend_factory: Any, database_config: dict[str, Any], database_engine: str, tmp_path: Path
) -> None:
    config = (
        file_config(tmp_path) if database_engine == "sqlite" else with_database(database_config)
    )
    test_backend_factory(features=[ALPHA], config=config).client.post(
        "/api/alpha/notes", content="persisted"
    )
    assert test_backend_factory(features=[ALPHA], config=config).client.get(
        "/api/alpha/notes"
    ).json() == ["persisted"]


def test_migrations_are_skipped_where_config_says(
    test_backend_factory: Any, database_config: dict[str, Any]
) -> None:
    config = with_database(database_config, plugin={"beta": {"skipMigrations": True}})
    backend = test_backend_factory(features=[ALPHA, BETA], config=config)

    assert database_of(backend, "alpha").migrations.skip is False
    assert database_of(backend, "beta").migrations.skip is True
    assert "notes" in tables("alpha")
    assert "notes" not in tables("beta")


def test_a_start_applies_the_migrations_a_database_lacks_and_only_those(
    test_backend_factory: Any, database_config: dict[str, Any]
) -> None:
    """A database with every migration recorded is left alone (no lock, no executor); one that
    lacks some, as after an upgrade, gets them."""
    from django.db.migrations.executor import MigrationExecutor

    from backstage_core.services.database import _up_to_date

    config = {**with_database(database_config), "todo": {"allowUnauthenticated": True}}
    backend = test_backend_factory(features=["todo"], config=config)
    database = database_of(backend, "todo")
    connection = connections[database.alias]
    assert _up_to_date(connection, ["todo"])
    assert database.migrate() == []

    MigrationExecutor(connection).migrate([("todo", "0002_created_by")])  # as before an upgrade
    assert not _up_to_date(connection, ["todo"])
    assert database.migrate() == ["todo.0003_ascending_indexes", "todo.0004_partial_indexes"]
    assert _up_to_date(connection, ["todo"])
    assert backend.client.post("/api/todo/todos", json={"title": "after"}).status_code == 201


def test_the_start_check_reads_the_migration_table_as_the_recorder_does(
    test_backend_factory: Any, database_config: dict[str, Any]
) -> None:
    """The start's one-query read of the migration table gives what Django's recorder gives, and
    nothing (so the executor takes over) where the table is missing."""
    from django.db import transaction
    from django.db.migrations.recorder import MigrationRecorder

    from backstage_core.services.database import _applied_migrations, _up_to_date

    backend = test_backend_factory(features=["todo"], config=with_database(database_config))
    connection = connections[database_of(backend, "todo").alias]
    recorded = set(MigrationRecorder(connection).applied_migrations())
    assert ("todo", "0001_initial") in recorded
    assert _applied_migrations(connection) == recorded
    with transaction.atomic(using=connection.alias):
        assert _applied_migrations(connection) == recorded

    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {quote('django_migrations')} RENAME TO {quote('moved')}")
    try:
        assert _applied_migrations(connection) == set()
        assert not _up_to_date(connection, ["todo"])
        with transaction.atomic(using=connection.alias):
            assert _applied_migrations(connection) == set()
        with connection.cursor() as cursor:  # the failed read left the connection usable
            cursor.execute("SELECT 1")
            assert cursor.fetchone()[0] == 1
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {quote('moved')} RENAME TO {quote('django_migrations')}")
    assert _up_to_date(connection, ["todo"])


def test_skip_migrations_for_every_plugin(
    test_backend_factory: Any, database_config: dict[str, Any]
) -> None:
    backend = test_backend_factory(
        features=[ALPHA], config=with_database(database_config, skipMigrations=True)
    )
    assert database_of(backend, "alpha").migrations.skip is True
    assert "notes" not in tables("alpha")


def test_get_client_is_the_plugins_own_django_connection(
    test_backend_factory: Any, database_config: dict[str, Any]
) -> None:
    seen: dict[str, Any] = {}

    def register(env: Any) -> None:
        def init(database: Any) -> None:
            client = database.get_client()
            with client.cursor() as cursor:
                cursor.execute("create table things (name varchar(20))")
                cursor.execute("insert into things values ('mine')")
            seen["alias"] = client.alias

        env.register_init(deps={"database": core_services.database}, init=init)

    plugin = create_backend_plugin(plugin_id="raw", register=register, django_app=None)
    test_backend_factory(features=[plugin], config=with_database(database_config))
    assert seen["alias"] == "raw"
    with connections["raw"].cursor() as cursor:
        cursor.execute("select name from things")
        assert list(cursor.fetchall()) == [("mine",)]


def test_concurrent_writers_never_fail(
    test_backend_factory: Any, database_config: dict[str, Any], database_engine: str, tmp_path: Path
) -> None:
    config = (
        file_config(tmp_path) if database_engine == "sqlite" else with_database(database_config)
    )
    backend = test_backend_factory(features=[ALPHA], config=config)

    def write(worker: int) -> list[int]:
        with httpx.Client(base_url=backend.url, timeout=30) as client:
            return [
                client.post("/api/alpha/notes", content=f"{worker}-{i}").status_code
                for i in range(25)
            ]

    with ThreadPoolExecutor(8) as pool:
        statuses = [status for result in pool.map(write, range(8)) for status in result]

    assert statuses == [200] * 200
    assert len(backend.client.get("/api/alpha/notes").json()) == 200


# -- SQLite ------------------------------------------------------------------------------------


def test_without_backend_database_each_test_backend_starts_empty(test_backend_factory: Any) -> None:
    first = test_backend_factory(features=[ALPHA])
    first.client.post("/api/alpha/notes", content="kept in memory")
    first.stop()
    second = test_backend_factory(features=[ALPHA])
    assert second.client.get("/api/alpha/notes").json() == []


def test_a_directory_gives_one_sqlite_file_per_plugin_in_wal_mode(
    test_backend_factory: Any, tmp_path: Path
) -> None:
    backend = test_backend_factory(features=[ALPHA, BETA], config=file_config(tmp_path / "db"))
    backend.client.post("/api/alpha/notes", content="a1")
    backend.client.post("/api/beta/notes", content="b1")

    assert rows(tmp_path / "db" / "alpha.sqlite") == ["a1"]
    assert rows(tmp_path / "db" / "beta.sqlite") == ["b1"]
    with sqlite3.connect(tmp_path / "db" / "alpha.sqlite") as connection:
        assert connection.execute("pragma journal_mode").fetchone() == ("wal",)


def test_a_plugin_can_override_its_connection(test_backend_factory: Any, tmp_path: Path) -> None:
    config = file_config(
        tmp_path,
        plugin={
            "alpha": {"connection": {"filename": "custom.sqlite"}},
            "beta": {"connection": ":memory:"},
        },
    )
    backend = test_backend_factory(features=[ALPHA, BETA], config=config)
    backend.client.post("/api/alpha/notes", content="custom")
    backend.client.post("/api/beta/notes", content="in memory")

    assert rows(tmp_path / "custom.sqlite") == ["custom"]
    assert not (tmp_path / "beta.sqlite").exists()
    assert backend.client.get("/api/beta/notes").json() == ["in memory"]


@pytest.mark.parametrize(
    ("database", "message"),
    [
        (
            {"client": "better-sqlite3", "connection": {"filename": "one.sqlite"}},
            "`connection.filename` is not supported for the base sqlite connection. Prefer "
            "`connection.directory` or provide a filename for the plugin connection instead.",
        ),
        (
            {"client": "better-sqlite3", "connection": ":memory:", "pluginDivisionMode": "schema"},
            "The SQLite driver does not support plugin division mode 'schema'",
        ),
        (
            {
                "client": "mysql2",
                "connection": "mysql://root@127.0.0.1:3306",
                "pluginDivisionMode": "schema",
            },
            "The MySQL driver does not support plugin division mode 'schema'",
        ),
        (
            {
                "client": "pg",
                "connection": "postgresql://postgres@127.0.0.1",
                "pluginDivisionMode": "tables",
            },
            "The PostgreSQL driver does not support plugin division mode 'tables'",
        ),
        (
            {"client": "oracle", "connection": "x"},
            "Unsupported database client type 'oracle' specified for plugin 'alpha'",
        ),
    ],
)
def test_unsupported_database_config_fails_at_start(
    test_backend_factory: Any, database: dict[str, Any], message: str
) -> None:
    with pytest.raises(BackendStartupError) as error:
        test_backend_factory(features=[ALPHA], config={"backend": {"database": database}})
    assert message in str(error.value)
    with pytest.raises(ImproperDatabaseConfig) as direct:
        DatabaseManager(ConfigReader({"backend": {"database": database}})).django_settings("alpha")
    assert str(direct.value) == message


def test_manage_py_migrate_migrates_default_and_every_plugin_database(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        {
            "backend": {
                "baseUrl": "http://localhost:7007",
                "database": {
                    "client": "better-sqlite3",
                    "connection": {"directory": str(tmp_path / "db")},
                },
            },
            "hooks": {"file": "x"},
        },
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--config", str(config)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "tests.project.settings", "HOME": str(tmp_path)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    for alias in ("alpha", "beta"):
        with sqlite3.connect(tmp_path / "db" / f"{alias}.sqlite") as connection:
            names = {
                row[0]
                for row in connection.execute("select name from sqlite_master where type = 'table'")
            }
            assert "notes" in names and "auth_user" not in names
    with sqlite3.connect(tmp_path / "db" / "default.sqlite") as connection:
        names = {
            row[0]
            for row in connection.execute("select name from sqlite_master where type = 'table'")
        }
        assert {"auth_user", "django_session", "django_admin_log"} <= names and "notes" not in names
    assert "Database 'alpha':" in result.stdout
