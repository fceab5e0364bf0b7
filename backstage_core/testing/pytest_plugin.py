"""pytest fixtures for plugin tests: ``test_backend_factory`` starts backends and stops them after.

    def test_lists_todos(test_backend_factory):
        backend = test_backend_factory(features=["todo"])
        assert backend.client.get("/api/todo/todos").status_code == 200

Enable with ``pytest_plugins = ["backstage_core.testing.pytest_plugin"]`` in a conftest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from backstage_core.testing.backend import TestBackend, start_test_backend


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
