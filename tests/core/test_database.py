"""The database service: a database per plugin, its layout from config, migrations, concurrency."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from backstage_core import BackendStartupError, core_services, create_backend_plugin
from backstage_core.config.reader import ConfigReader
from backstage_core.services.database import DatabaseManager, ImproperDatabaseConfig
from tests.helpers import ROOT, write_config

ALPHA = "tests.plugins.alpha.plugin"
BETA = "tests.plugins.beta.plugin"


def file_config(directory: Path, **extra: Any) -> dict[str, Any]:
    return {
        "backend": {
            "database": {
                "client": "better-sqlite3",
                "connection": {"directory": str(directory)},
                **extra,
            }
        }
    }


def rows(path: Path) -> list[str]:
    with sqlite3.connect(path) as connection:
        return [row[0] for row in connection.execute("select text from notes order by id")]


def test_two_plugins_with_a_table_of_the_same_name_do_not_see_each_others_rows(
    test_backend_factory: Any,
) -> None:
    backend = test_backend_factory(features=[ALPHA, BETA])
    client = backend.client

    assert client.post("/api/alpha/notes", content="for alpha").json() == ["for alpha"]
    assert client.post("/api/beta/notes", content="for beta").json() == ["for beta"]
    assert client.get("/api/alpha/notes").json() == ["for alpha"]
    assert client.get("/api/beta/notes").json() == ["for beta"]


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


def test_data_in_files_outlives_the_backend(test_backend_factory: Any, tmp_path: Path) -> None:
    config = file_config(tmp_path)
    test_backend_factory(features=[ALPHA], config=config).client.post(
        "/api/alpha/notes", content="persisted"
    )
    assert test_backend_factory(features=[ALPHA], config=config).client.get(
        "/api/alpha/notes"
    ).json() == ["persisted"]


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


def database_of(backend: Any, plugin_id: str) -> Any:
    return backend.get_service(core_services.database, plugin_id)


def test_migrations_are_skipped_where_config_says(
    test_backend_factory: Any, tmp_path: Path
) -> None:
    config = file_config(tmp_path, plugin={"beta": {"skipMigrations": True}})
    backend = test_backend_factory(features=[ALPHA, BETA], config=config)

    assert database_of(backend, "alpha").migrations.skip is False
    assert database_of(backend, "beta").migrations.skip is True
    with sqlite3.connect(tmp_path / "beta.sqlite") as connection:
        assert (
            connection.execute("select name from sqlite_master where name = 'notes'").fetchall()
            == []
        )
    assert rows(tmp_path / "alpha.sqlite") == []


def test_skip_migrations_for_every_plugin(test_backend_factory: Any) -> None:
    backend = test_backend_factory(
        features=[ALPHA],
        config={
            "backend": {
                "database": {"client": "sqlite3", "connection": ":memory:", "skipMigrations": True}
            }
        },
    )
    assert database_of(backend, "alpha").migrations.skip is True


def test_get_client_is_the_plugins_own_django_connection(test_backend_factory: Any) -> None:
    seen: dict[str, Any] = {}

    def register(env: Any) -> None:
        def init(database: Any) -> None:
            client = database.get_client()
            with client.cursor() as cursor:
                cursor.execute("create table things (name text)")
                cursor.execute("insert into things values ('mine')")
            seen["alias"] = client.alias

        env.register_init(deps={"database": core_services.database}, init=init)

    backend = test_backend_factory(
        features=[create_backend_plugin(plugin_id="raw", register=register, django_app=None)]
    )
    assert seen["alias"] == "raw"
    from django.db import connections

    with connections["raw"].cursor() as cursor:
        cursor.execute("select name from things")
        assert cursor.fetchall() == [("mine",)]
    assert backend is not None


def test_concurrent_writers_on_file_sqlite_never_see_database_is_locked(
    test_backend_factory: Any, tmp_path: Path
) -> None:
    backend = test_backend_factory(features=[ALPHA], config=file_config(tmp_path))

    def write(worker: int) -> list[int]:
        import httpx

        with httpx.Client(base_url=backend.url, timeout=30) as client:
            return [
                client.post("/api/alpha/notes", content=f"{worker}-{i}").status_code
                for i in range(25)
            ]

    with ThreadPoolExecutor(8) as pool:
        statuses = [status for result in pool.map(write, range(8)) for status in result]

    assert statuses == [200] * 200
    assert len(rows(tmp_path / "alpha.sqlite")) == 200


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
    with pytest.raises(
        ImproperDatabaseConfig,
        match="^" + message.replace("(", r"\(").replace(")", r"\)").replace("`", "`") + "$",
    ):
        DatabaseManager(ConfigReader({"backend": {"database": database}})).django_settings("alpha")


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
            tables = {
                row[0]
                for row in connection.execute("select name from sqlite_master where type = 'table'")
            }
            assert "notes" in tables and "auth_user" not in tables
    with sqlite3.connect(tmp_path / "db" / "default.sqlite") as connection:
        tables = {
            row[0]
            for row in connection.execute("select name from sqlite_master where type = 'table'")
        }
        assert {
            "auth_user",
            "django_session",
            "django_admin_log",
        } <= tables and "notes" not in tables
    assert "Database 'alpha':" in result.stdout
