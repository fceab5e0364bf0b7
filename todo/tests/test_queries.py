"""Prepared queries and inserts, on each database engine: what Django would see and raise."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.db import IntegrityError, connections, reset_queries
from django.test.utils import override_settings
from django.utils import timezone

from todo import queries
from todo.models import Todo


def test_a_prepared_insert_and_query_store_and_read_a_todo(api: Any) -> None:
    row = queries.create("prepared", "component:default/x", "user:default/me")
    stored = Todo.objects.get(pk=row[0])
    assert (stored.title, stored.entity_ref, stored.created_by) == (
        "prepared",
        "component:default/x",
        "user:default/me",
    )
    (read,) = queries.newest_first("component:default/x")
    assert uuid.UUID(str(read[0])) == row[0] and read[1:3] == ("prepared", "component:default/x")
    assert queries.by_id(uuid.uuid4()) is None


def test_execute_wrappers_see_prepared_statements(api: Any) -> None:
    seen: list[str] = []

    def wrapper(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if "todos" in sql:
            seen.append(sql.split()[0].upper())
        return execute(sql, params, many, context)

    connection = connections[queries.alias()]
    with connection.execute_wrapper(wrapper):
        row = queries.create("wrapped", None, None)
        assert queries.by_id(row[0]) is not None
        queries.newest_first()
    assert seen == ["INSERT", "SELECT", "SELECT"]


def test_prepared_statements_are_logged_when_queries_are(api: Any) -> None:
    connection = connections[queries.alias()]
    with override_settings(DEBUG=True):
        reset_queries()
        queries.create("logged", None, None)
        queries.newest_first()
        logged = [q["sql"].split()[0].upper() for q in connection.queries if "todos" in q["sql"]]
    assert logged == ["INSERT", "SELECT"]


def test_database_errors_are_djangos(api: Any) -> None:
    row = queries.create("first", None, None)
    with pytest.raises(IntegrityError):
        queries._insert.execute(
            queries.alias(),
            id=row[0],
            title="same id",
            entity_ref=None,
            created_at=timezone.now(),
            completed=False,
            created_by=None,
        )
    assert list(Todo.objects.values_list("title", flat=True)) == ["first"]
