"""Fixtures for the todo plugin's tests."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def api(test_backend_factory: Any, database_config: dict[str, Any]) -> Any:
    """The todo API on a test backend, on each database engine in turn."""
    config = {"backend": {"database": database_config}, "todo": {"allowUnauthenticated": True}}
    return test_backend_factory(features=["todo"], config=config).client
