"""pytest fixtures for plugin tests: real test backends, on every database and cache engine.

    def test_lists_todos(test_backend_factory, database_config):
        backend = test_backend_factory(features=["todo"], config={"backend": {"database": database_config}})
        assert backend.client.get("/api/todo/todos").status_code == 200

``database_config`` runs a test on SQLite, PostgreSQL and MySQL; ``cache_config`` on memory and
Redis (see :mod:`backstage_core.testing.engines`). Installed as a pytest plugin with this package.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from backstage_core.testing.backend import TestBackend, start_test_backend
from backstage_core.testing.engines import (
    CACHE_ENGINES,
    DATABASE_ENGINES,
    database_section,
    delete_cache_keys,
    drop_databases,
    new_prefix,
    require_service,
)


@pytest.fixture
def test_backend_factory(django_db_blocker: Any) -> Iterator[Callable[..., TestBackend]]:
    """Start test backends (database access allowed in their threads); all stop at teardown."""
    started: list[TestBackend] = []

    def start(**kwargs: Any) -> TestBackend:
        backend = start_test_backend(**kwargs)
        started.append(backend)
        return backend

    with django_db_blocker.unblock():
        try:
            yield start
        finally:
            for backend in reversed(started):
                backend.stop()


@pytest.fixture(params=DATABASE_ENGINES)
def database_engine(request: pytest.FixtureRequest) -> str:
    """The database engine a test runs on: sqlite, postgres or mysql."""
    engine: str = request.param
    if engine != "sqlite":
        require_service(engine, pytest.skip, pytest.fail)
    return engine


@pytest.fixture
def database_config(database_engine: str, django_db_blocker: Any) -> Iterator[dict[str, Any]]:
    """A ``backend.database`` section on fresh databases of ``database_engine``, dropped after."""
    prefix = new_prefix()
    url = (
        None
        if database_engine == "sqlite"
        else require_service(database_engine, pytest.skip, pytest.fail)
    )
    yield database_section(database_engine, prefix, url)
    if url is not None:
        with django_db_blocker.unblock():
            drop_databases(database_engine, url, prefix)


@pytest.fixture(params=CACHE_ENGINES)
def cache_config(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """A ``backend.cache`` section on memory or Redis, with keys of its own, deleted after."""
    if request.param == "memory":
        yield {"store": "memory"}
        return
    url = require_service("redis", pytest.skip, pytest.fail)
    namespace = new_prefix().rstrip("_")
    yield {"store": "redis", "connection": url, "redis": {"client": {"namespace": namespace}}}
    delete_cache_keys(url, namespace)
