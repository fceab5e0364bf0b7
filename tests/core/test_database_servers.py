"""PostgreSQL and MySQL specifics: database and schema layouts, bounded connections, outages."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import psycopg
import pytest
from django.db import connections

from backstage_core import BackendStartupError, core_services, create_backend_plugin
from backstage_core.testing.engines import (
    drop_databases,
    mysql_admin,
    new_prefix,
    require_service,
)
from tests.helpers import ROOT, TcpProxy, free_port, running, wait_for, write_config

ALPHA = "tests.plugins.alpha.plugin"
BETA = "tests.plugins.beta.plugin"


@pytest.fixture
def postgres(django_db_blocker: Any) -> Iterator[tuple[str, str]]:
    """The PostgreSQL URL and a fresh prefix; databases with the prefix are dropped after."""
    url = require_service("postgres", pytest.skip, pytest.fail)
    prefix = new_prefix()
    yield url, prefix
    with django_db_blocker.unblock():
        drop_databases("postgres", url, prefix)


@pytest.fixture
def mysql(django_db_blocker: Any) -> Iterator[tuple[str, str]]:
    url = require_service("mysql", pytest.skip, pytest.fail)
    prefix = new_prefix()
    yield url, prefix
    with django_db_blocker.unblock():
        drop_databases("mysql", url, prefix)


def pg(url: str, database: str = "postgres") -> psycopg.Connection[Any]:
    return psycopg.connect(f"{url}/{database}", autocommit=True)


def pg_databases(url: str, prefix: str) -> set[str]:
    with pg(url) as admin:
        return {
            row[0]
            for row in admin.execute(
                "select datname from pg_database where datname like %s", [prefix + "%"]
            )
        }


def mysql_rows(url: str, sql: str, params: Any = ()) -> Any:
    admin = mysql_admin(url)
    try:
        with admin.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
    finally:
        admin.close()


def mysql_databases(url: str, prefix: str) -> set[str]:
    return {
        row[0]
        for row in mysql_rows(
            url,
            "select schema_name from information_schema.schemata where schema_name like %s",
            [prefix + "%"],
        )
    }


def test_postgres_gives_each_plugin_a_database_named_with_the_prefix(
    test_backend_factory: Any, postgres: tuple[str, str]
) -> None:
    url, prefix = postgres
    config = {"backend": {"database": {"client": "pg", "connection": url, "prefix": prefix}}}
    client = test_backend_factory(features=[ALPHA, BETA], config=config).client
    client.post("/api/alpha/notes", content="in alpha's database")

    assert pg_databases(url, prefix) == {f"{prefix}alpha", f"{prefix}beta"}
    with pg(url, f"{prefix}alpha") as alpha, pg(url, f"{prefix}beta") as beta:
        assert alpha.execute("select text from notes").fetchall() == [("in alpha's database",)]
        assert beta.execute("select text from notes").fetchall() == []


def test_postgres_schema_mode_gives_each_plugin_a_schema_in_one_database(
    test_backend_factory: Any, postgres: tuple[str, str]
) -> None:
    url, prefix = postgres
    shared = f"{prefix}shared"
    database = {
        "client": "pg",
        "connection": f"{url}/{shared}",
        "pluginDivisionMode": "schema",
        "schemaPrefix": "p_",
    }
    client = test_backend_factory(
        features=[ALPHA, BETA], config={"backend": {"database": database}}
    ).client
    client.post("/api/alpha/notes", content="alpha row")
    client.post("/api/beta/notes", content="beta row")

    assert client.get("/api/alpha/notes").json() == ["alpha row"]
    assert pg_databases(url, prefix) == {shared}
    with pg(url, shared) as connection:
        assert connection.execute("select text from p_alpha.notes").fetchall() == [("alpha row",)]
        assert connection.execute("select text from p_beta.notes").fetchall() == [("beta row",)]


def test_without_ensure_exists_a_missing_database_fails_the_start(
    test_backend_factory: Any, postgres: tuple[str, str]
) -> None:
    url, prefix = postgres
    config = {
        "backend": {
            "database": {"client": "pg", "connection": url, "prefix": prefix, "ensureExists": False}
        }
    }
    with pytest.raises(BackendStartupError) as error:
        test_backend_factory(features=[ALPHA], config=config)
    assert f'database "{prefix}alpha" does not exist' in str(error.value)
    assert pg_databases(url, prefix) == set()


def test_a_plugin_can_use_another_client_than_the_base(
    test_backend_factory: Any, postgres: tuple[str, str]
) -> None:
    url, prefix = postgres
    database = {
        "client": "pg",
        "connection": url,
        "prefix": prefix,
        "plugin": {"beta": {"client": "better-sqlite3", "connection": ":memory:"}},
    }
    client = test_backend_factory(
        features=[ALPHA, BETA], config={"backend": {"database": database}}
    ).client
    client.post("/api/beta/notes", content="in sqlite")
    assert client.get("/api/beta/notes").json() == ["in sqlite"]
    assert connections["beta"].vendor == "sqlite" and connections["alpha"].vendor == "postgresql"
    assert pg_databases(url, prefix) == {f"{prefix}alpha"}


def test_mysql_gives_each_plugin_a_database_named_with_the_prefix(
    test_backend_factory: Any, mysql: tuple[str, str]
) -> None:
    url, prefix = mysql
    config = {"backend": {"database": {"client": "mysql2", "connection": url, "prefix": prefix}}}
    client = test_backend_factory(features=[ALPHA, BETA], config=config).client
    client.post("/api/alpha/notes", content="in mysql")

    assert mysql_databases(url, prefix) == {f"{prefix}alpha", f"{prefix}beta"}
    assert mysql_rows(url, f"select text from `{prefix}alpha`.notes") == (("in mysql",),)


def manage_py_migrate(tmp_path: Path, database: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    """``manage.py migrate`` on the test project (plugins alpha, beta and todo), with ``database``."""
    config = write_config(
        tmp_path,
        {
            "backend": {"baseUrl": "http://localhost:7007", "database": database},
            "hooks": {"file": "x"},
        },
    )
    return subprocess.run(
        [sys.executable, "manage.py", "migrate", "--config", str(config)],
        cwd=ROOT, capture_output=True, text=True, timeout=180,
        env={"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "tests.project.settings", "HOME": str(tmp_path)},
    )  # fmt: skip


def test_manage_py_migrate_creates_and_migrates_postgres_databases(
    postgres: tuple[str, str], tmp_path: Path
) -> None:
    url, prefix = postgres
    result = manage_py_migrate(tmp_path, {"client": "pg", "connection": url, "prefix": prefix})
    assert result.returncode == 0, result.stderr
    assert {f"{prefix}default", f"{prefix}alpha", f"{prefix}beta", f"{prefix}todo"} <= pg_databases(
        url, prefix
    )
    with pg(url, f"{prefix}todo") as todo, pg(url, f"{prefix}default") as default:
        assert todo.execute("select count(*) from todos").fetchone() == (0,)
        assert default.execute("select count(*) from auth_user").fetchone() == (0,)


def test_manage_py_migrate_creates_and_migrates_mysql_databases(
    mysql: tuple[str, str], tmp_path: Path
) -> None:
    """The system checks connect to MySQL: the databases exist before they run."""
    url, prefix = mysql
    result = manage_py_migrate(tmp_path, {"client": "mysql2", "connection": url, "prefix": prefix})
    assert result.returncode == 0, result.stderr
    names = mysql_databases(url, prefix)
    assert {f"{prefix}default", f"{prefix}alpha", f"{prefix}beta", f"{prefix}todo"} <= names
    assert mysql_rows(url, f"select count(*) from `{prefix}todo`.todos") == ((0,),)


# -- bounded connections ------------------------------------------------------------------------


def sleeper(plugin_id: str) -> Any:
    """A plugin whose one route holds a database connection for 5 ms."""
    from django.http import JsonResponse
    from django.urls import path

    def register(env: Any) -> None:
        def init(http_router: Any, database: Any) -> None:
            def view(request: Any) -> JsonResponse:
                with database.get_client().cursor() as cursor:
                    cursor.execute("select pg_sleep(0.005), current_database()")
                    return JsonResponse({"database": cursor.fetchone()[1]})

            http_router.use([path("work", view)])
            http_router.add_auth_policy(path="/", allow="unauthenticated")

        env.register_init(
            deps={"http_router": core_services.http_router, "database": core_services.database},
            init=init,
        )

    return create_backend_plugin(plugin_id=plugin_id, register=register, django_app=None)


def server_connections(url: str, prefix: str) -> int:
    with pg(url) as admin:
        return admin.execute(
            "select count(*) from pg_stat_activity where datname like %s", [prefix + "%"]
        ).fetchone()[0]


@pytest.mark.parametrize("limit", [4, 12])
def test_twenty_plugins_under_load_stay_within_the_connection_bound(
    test_backend_factory: Any, postgres: tuple[str, str], limit: int
) -> None:
    url, prefix = postgres
    plugins = [f"p{n}" for n in range(20)]
    config = {
        "backend": {
            "database": {
                "client": "pg",
                "connection": url,
                "prefix": prefix,
                "pool": {"max": limit, "acquireTimeout": "30s"},
            }
        }
    }
    backend = test_backend_factory(features=[sleeper(p) for p in plugins], config=config)

    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, server_connections(url, prefix))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()

    def client(worker: int) -> list[int]:
        with httpx.Client(base_url=backend.url, timeout=60) as http:
            return [
                http.get(f"/api/{plugins[(worker + i) % 20]}/work").status_code for i in range(40)
            ]

    try:
        with ThreadPoolExecutor(16) as pool:
            statuses = [s for result in pool.map(client, range(16)) for s in result]
    finally:
        done.set()
        sampler.join()

    print(f"\n20 plugins, 16 concurrent clients, pool.max={limit}: peak {peak} server connections")
    assert statuses == [200] * 640
    assert 1 <= peak <= limit


def test_the_production_server_gives_each_connection_back_when_its_request_ends(
    postgres: tuple[str, str], tmp_path: Path
) -> None:
    """``serve`` does Django's request housekeeping its own way (backstage_core.db.housekeeping):
    with one connection for four request threads, a connection kept past its request would leave
    the other threads waiting until they fail (acquireTimeout, a 503)."""
    url, prefix = postgres
    port = free_port()

    def configured(pool: dict[str, Any], name: str) -> Path:
        database = {"client": "pg", "connection": url, "prefix": prefix, "pool": pool}
        backend = {"baseUrl": f"http://localhost:{port}", "listen": {"port": port}}
        data = {
            "backend": {**backend, "database": database},
            "todo": {"allowUnauthenticated": True},
        }
        return write_config(tmp_path, data, name)

    env = {"DJANGO_ENV": "production", "DJANGO_SECRET_KEY": "test-only-secret-key-for-serve"}
    migrate = ["migrate", "--verbosity", "0", "--config", str(configured({}, "migrate.yaml"))]
    with running(migrate, "settings", env) as migrating:
        assert migrating.wait(timeout=120) == 0, migrating.stdout and migrating.stdout.read()
    config = configured({"max": 1, "acquireTimeout": "2s"}, "serve.yaml")
    args = ["serve", "--workers", "1", "--threads", "4", "--config", str(config)]
    base = f"http://127.0.0.1:{port}"
    with running(args, settings="settings", env=env) as server:
        wait_for(f"{base}/.backstage/health/v1/readiness", process=server, timeout=60)

        def client(number: int) -> list[int]:
            with httpx.Client(base_url=base, timeout=30) as http:
                statuses = []
                for i in range(15):
                    created = http.post("/api/todo/todos", json={"title": f"{number}-{i}"})
                    statuses += [created.status_code, http.get("/api/todo/todos").status_code]
                return statuses

        with ThreadPoolExecutor(8) as pool:
            statuses = [status for result in pool.map(client, range(8)) for status in result]
        assert sorted(set(statuses)) == [200, 201]
        assert len(httpx.get(f"{base}/api/todo/todos").json()) == 120


# -- outages ------------------------------------------------------------------------------------


def test_postgres_going_away_is_a_503_and_the_next_request_after_it_returns_succeeds(
    test_backend_factory: Any, postgres: tuple[str, str]
) -> None:
    url, prefix = postgres
    parts = urlparse(url)
    proxy = TcpProxy((parts.hostname, parts.port or 5432)).start()
    proxied = f"postgresql://{parts.username}@127.0.0.1:{proxy.port}"
    config = {
        "backend": {"database": {"client": "pg", "connection": proxied, "prefix": prefix}},
        "todo": {"allowUnauthenticated": True},
    }
    client = test_backend_factory(features=["todo"], config=config).client
    try:
        todo = client.post("/api/todo/todos", json={"title": "survives"}).json()

        proxy.stop()
        for _ in range(2):  # a pooled connection that was cut, then a new one that is refused
            started = time.monotonic()
            response = client.get("/api/todo/todos")
            assert time.monotonic() - started < 6
            assert response.status_code == 503
            assert response.json() == {
                "error": {"name": "ServiceUnavailableError", "message": "Database is unavailable"},
                "request": {"method": "GET", "url": "/todos"},
                "response": {"statusCode": 503},
            }

        proxy.start()
        response = client.get("/api/todo/todos")
        assert (response.status_code, response.json()) == (200, [todo])
    finally:
        proxy.stop()
