"""The todo reads the API makes, newest first, and the cursors that page through them.

The plain list, the ``?entityRef=`` list and the read by id are prepared queries (compiled once,
rows formatted straight from the driver): they are the hot paths. A page starts at a cursor:
the (created_at, id) of the last todo of the previous page, so every page is an index range scan
however deep into the table it is.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import UTC, datetime
from typing import Any

from django.db import router
from django.db.models import Q, TextField
from django.db.models.functions import Cast
from django.utils import timezone

from backstage_core.db.prepared import PreparedInsert, PreparedQuery
from todo.models import Todo

__all__ = [
    "Cursor",
    "InvalidCursor",
    "alias",
    "as_rows",
    "by_id",
    "create",
    "newest_first",
    "page",
]

_ENTITY_REF = Todo._meta.get_field("entity_ref")


def as_rows(todos: Any, *extra: str) -> Any:
    """Todos as rows for ``todo_json``. The creation time is read as the database's text for it
    (formatting that is cheaper than parsing it into a datetime to format it again)."""
    return todos.annotate(created_text=Cast("created_at", TextField())).values_list(
        "id", "title", "entity_ref", "created_text", "completed", "created_by", *extra
    )


_all = PreparedQuery(lambda: as_rows(Todo.objects.all()))
_by_entity = PreparedQuery(
    lambda entity_ref: as_rows(Todo.objects.filter(entity_ref=entity_ref)),
    entity_ref=_ENTITY_REF,
)
_by_id = PreparedQuery(lambda pk: as_rows(Todo.objects.filter(pk=pk)), pk=Todo._meta.pk)


_insert = PreparedInsert(
    Todo, ["id", "title", "entity_ref", "created_at", "completed", "created_by"]
)


def create(title: str, entity_ref: str | None, created_by: str | None) -> tuple[Any, ...]:
    """Store a new todo; returns its row for ``todo_json``."""
    row = (uuid.uuid4(), title, entity_ref, timezone.now(), False, created_by)
    _insert.execute(
        alias(),
        id=row[0],
        title=title,
        entity_ref=entity_ref,
        created_at=row[3],
        completed=False,
        created_by=created_by,
    )
    return row


def alias() -> str:
    return router.db_for_read(Todo)


def newest_first(entity_ref: str | None = None) -> list[tuple[Any, ...]]:
    """Every todo (about ``entity_ref``, if given), newest first."""
    if entity_ref:
        return _by_entity.fetch(alias(), entity_ref=entity_ref)
    return _all.fetch(alias())


def by_id(todo_id: uuid.UUID) -> tuple[Any, ...] | None:
    rows = _by_id.fetch(alias(), pk=todo_id)
    return rows[0] if rows else None


class InvalidCursor(ValueError):
    pass


class Cursor:
    """Where a page starts: just after the todo with this (created_at, id)."""

    def __init__(self, created_at: datetime, todo_id: uuid.UUID) -> None:
        self.created_at = created_at
        self.todo_id = todo_id

    def encode(self) -> str:
        text = f"{self.created_at.isoformat(timespec='microseconds')}|{self.todo_id.hex}"
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, value: str) -> Cursor:
        try:
            text = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
            moment, _, hex_id = text.partition("|")
            created_at = datetime.fromisoformat(moment)
            if created_at.tzinfo is None:
                raise ValueError("a cursor's time is UTC")
            return cls(created_at, uuid.UUID(hex=hex_id))
        except (ValueError, binascii.Error, UnicodeDecodeError) as error:
            raise InvalidCursor(str(error)) from error

    @classmethod
    def after(cls, row: tuple[Any, ...]) -> Cursor:
        """The cursor for the page after the todo of this row (as ``as_rows`` reads it)."""
        todo_id, created_text = row[0], row[3]
        created_at = datetime.fromisoformat(created_text)
        if created_at.tzinfo is None:
            created_at = created_at.replace(tzinfo=UTC)
        return cls(created_at, todo_id if isinstance(todo_id, uuid.UUID) else uuid.UUID(todo_id))


_CREATED_AT = Todo._meta.get_field("created_at")
_pages: dict[tuple[bool, bool, int], PreparedQuery] = {}
MAX_PREPARED_PAGES = 256


def _page_query(entity: bool, after: bool, limit: int) -> PreparedQuery:
    """The prepared query for one shape of page (a few limits are common: they stay compiled)."""
    key = (entity, after, limit)
    query = _pages.get(key)
    if query is not None:
        return query

    def build(**values: Any) -> Any:
        todos = Todo.objects.all()
        if entity:
            todos = todos.filter(entity_ref=values["entity_ref"])
        if after:
            # A range on the index (created_at <= t), minus the todos at t up to the cursor.
            todos = todos.filter(created_at__lte=values["created_at"]).exclude(
                created_at=values["created_at"], id__gte=values["todo_id"]
            )
        return as_rows(todos)[: limit + 1]

    params: dict[str, Any] = {}
    if entity:
        params["entity_ref"] = _ENTITY_REF
    if after:
        params.update(created_at=_CREATED_AT, todo_id=Todo._meta.pk)
    query = PreparedQuery(build, **params)
    if len(_pages) < MAX_PREPARED_PAGES:
        _pages[key] = query
    return query


def page(
    limit: int, cursor: Cursor | None, entity_ref: str | None, condition: Q | None
) -> tuple[list[tuple[Any, ...]], Cursor | None]:
    """Up to ``limit`` todos after ``cursor``, and the cursor of the next page (None at the end)."""
    if condition is None:
        values: dict[str, Any] = {}
        if entity_ref:
            values["entity_ref"] = entity_ref
        if cursor is not None:
            values.update(created_at=cursor.created_at, todo_id=cursor.todo_id)
        query = _page_query(bool(entity_ref), cursor is not None, limit)
        rows = query.fetch(alias(), **values)
    else:
        todos = Todo.objects.filter(condition)
        if entity_ref:
            todos = todos.filter(entity_ref=entity_ref)
        if cursor is not None:
            todos = todos.filter(created_at__lte=cursor.created_at).exclude(
                created_at=cursor.created_at, id__gte=cursor.todo_id
            )
        rows = list(as_rows(todos)[: limit + 1])
    following = Cursor.after(rows[limit - 1]) if len(rows) > limit else None
    return rows[:limit], following
