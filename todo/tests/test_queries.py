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


def test_prepared_values_are_what_the_fields_give(api: Any) -> None:
    """The shortcut for plain values of Django's own fields gives what the field itself would,
    to the type, for saving and for a query parameter; anything else goes through the field."""
    import datetime
    import warnings
    import zoneinfo

    from django.db import models
    from django.utils.safestring import mark_safe
    from django.utils.translation import gettext_lazy

    from backstage_core.db.prepared import _preparer

    class Upper(models.CharField):
        def get_prep_value(self, value: Any) -> Any:
            return super().get_prep_value(value).upper()

    def outcome(function: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
        try:
            value = function(*args, **kwargs)
        except Exception as error:  # the same error either way
            return type(error), str(error)
        return value, type(value)

    now = timezone.now()
    texts = ["x", "", None, mark_safe("<b>"), gettext_lazy("lazy"), 5]
    cases: list[tuple[Any, list[Any]]] = [
        (models.CharField(max_length=10), texts),
        (models.CharField(max_length=10, null=True), texts),
        (models.TextField(), texts),
        (Upper(max_length=10), ["x", "y"]),
        (models.BooleanField(), [True, False, None, 1, 0, "true"]),
        (models.UUIDField(), [uuid.uuid4(), str(uuid.uuid4()), uuid.uuid4().hex, None]),
        (
            models.DateTimeField(),
            [
                now,
                now.astimezone(zoneinfo.ZoneInfo("Europe/Paris")),
                datetime.datetime(2026, 1, 2, 3, 4, 5, 678901),  # naive: made aware, with a warning
                datetime.date(2026, 1, 2),
                "2026-01-02T03:04:05Z",
                None,
            ],
        ),
    ]
    connection = connections[queries.alias()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for field, values in cases:
            for save in (True, False):
                prepare = _preparer(field, save=save)
                for value in values:
                    if save:
                        expected = outcome(field.get_db_prep_save, value, connection)
                    else:
                        expected = outcome(
                            field.get_db_prep_value, value, connection, prepared=False
                        )
                    assert outcome(prepare, value, connection) == expected, (field, value)


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


def _plan(alias: str, sql: str, params: Any) -> str:
    """The engine's plan for ``sql`` with ``params``, as one string (PostgreSQL asked for an index's
    plan: on a table this small a sequential scan would be cheaper)."""
    from django.db import transaction

    connection = connections[alias]
    with transaction.atomic(using=alias), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("SET LOCAL enable_bitmapscan = off")
        explain = "EXPLAIN QUERY PLAN" if connection.vendor == "sqlite" else "EXPLAIN"
        cursor.execute(f"{explain} {sql}", params)
        columns = [c[0] for c in cursor.description]
        return "\n".join(str(dict(zip(columns, row, strict=True))) for row in cursor.fetchall())


@pytest.mark.parametrize(
    ("shape", "values"),
    [
        ("all", {}),
        ("entity", {"entity_ref": "component:default/a"}),
        ("page", {}),
        ("page", {"entity_ref": "component:default/a"}),
        ("page", {"created_at": timezone.now(), "todo_id": uuid.uuid4()}),
        (
            "page",
            {
                "entity_ref": "component:default/a",
                "created_at": timezone.now(),
                "todo_id": uuid.uuid4(),
            },
        ),
    ],
    ids=["list", "entityRef", "first-page", "first-page-entityRef", "page", "page-entityRef"],
)
def test_newest_first_reads_walk_an_index_without_sorting(
    api: Any, shape: str, values: dict[str, Any]
) -> None:
    """Each read of the list is an index range read in order, on every engine: no sort step."""
    query = {
        "all": lambda: queries._all,
        "entity": lambda: queries._by_entity,
        "page": lambda: queries._page_query("entity_ref" in values, "todo_id" in values, 100),
    }[shape]()
    alias = queries.alias()
    sql, params = query.statement(alias, **values)
    connection = connections[alias]
    if connection.vendor == "mysql" and "LIMIT" not in sql:
        # MariaDB reads a whole table (no LIMIT) by a scan and a sort as a matter of cost; bounded,
        # as every page is, the index order must serve it.
        sql = f"{sql} LIMIT 100"
    plan = _plan(alias, sql, params)
    assert "todos_newest_first" in plan or "todos_entity_newest_first" in plan, plan
    assert "TEMP B-TREE" not in plan and "Sort" not in plan and "filesort" not in plan, plan


@pytest.mark.parametrize(
    ("index", "todos", "ordered"),
    [
        (
            "todos_entity_newest_first",
            lambda: Todo.objects.filter(entity_ref="component:default/a"),
            True,
        ),
        (
            "todos_creator_newest_first",
            lambda: Todo.objects.filter(created_by="user:default/a"),
            True,
        ),
        (  # the permission condition on the creator: an IN over the caller's ownership refs
            "todos_creator_newest_first",
            lambda: Todo.objects.filter(created_by__in=["user:default/a", "group:default/b"]),
            False,
        ),
    ],
    ids=["entityRef", "creator", "creator-in"],
)
def test_a_filter_on_the_entity_or_the_creator_reads_its_index(
    api: Any, index: str, todos: Any, ordered: bool
) -> None:
    """The entity and creator indexes leave out the todos without one (on MySQL and MariaDB,
    which have no partial indexes, they hold every row): a filter on a value still reads them."""
    for n in range(20):
        queries.create(f"todo {n}", None if n % 2 else "component:default/a", None)
        queries.create(f"todo {n}", "component:default/b", "user:default/a" if n % 3 else None)
    alias = queries.alias()
    connection = connections[alias]
    sql, params = queries.as_rows(todos())[:100].query.get_compiler(using=alias).as_sql()
    plan = _plan(alias, sql, params)
    assert index in plan, plan
    if ordered:
        assert "TEMP B-TREE" not in plan and "Sort" not in plan and "filesort" not in plan, plan
    if connection.vendor != "mysql":
        with connection.cursor() as cursor:  # the index holds only rows that have the value
            cursor.execute(
                "SELECT indexdef FROM pg_indexes WHERE indexname = %s"
                if connection.vendor == "postgresql"
                else "SELECT sql FROM sqlite_master WHERE name = %s",
                [index],
            )
            (definition,) = cursor.fetchone()
        assert "IS NOT NULL" in definition, definition
