"""The todo JSON shape, and strict validation of what clients send.

A todo reads ``{"id", "title", "entityRef"?, "createdAt", "completed", "createdBy"?}``;
``entityRef`` is absent when unset, ``createdBy`` (the creator's user entity ref) when no user
created it, and ``createdAt`` is UTC ISO-8601 with milliseconds. Input is checked as it is, without
coercion: a title must be a non-blank string of at most 1,000 characters, an entityRef a string of
at most 255 characters (or null), completed a boolean. The first problem is reported as the seed's
``{"error": "title is required"}`` is: one sentence naming the field.
"""

from __future__ import annotations

import copy
import functools
from datetime import UTC
from typing import Any

from rest_framework import serializers
from rest_framework.utils.serializer_helpers import BindingDict

from todo.models import Todo


class StrictString(serializers.Field):
    """A string taken as sent: no coercion of numbers, booleans or objects."""

    default_error_messages = {
        "required": "is required",
        "null": "is required",
        "invalid": "must be a string",
        "blank": "must not be blank",
        "max_length": "must be at most {max_length} characters",
        "unicode": "must be valid Unicode text (it has an unpaired surrogate)",
    }

    def __init__(self, *, max_length: int, nullable: bool = False, **kwargs: Any) -> None:
        self.max_length = max_length
        self.nullable = nullable
        if nullable:
            kwargs["allow_null"] = True
            kwargs["error_messages"] = {"invalid": "must be a string or null"}
        super().__init__(**kwargs)

    def validate_empty_values(self, data: Any) -> tuple[bool, Any]:
        if data == "" and not self.nullable:
            self.fail("required")
        return super().validate_empty_values(data)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        if not self.nullable and not data.strip():
            self.fail("blank")
        if len(data) > self.max_length:
            self.fail("max_length", max_length=f"{self.max_length:,}")
        try:
            data.encode("utf-8")
        except UnicodeEncodeError:  # "\ud800" in JSON: no database can store it
            self.fail("unicode")
        return data

    def to_representation(self, value: str) -> str:
        return value


class StrictBoolean(serializers.Field):
    """``true`` or ``false``; not ``"yes"``, ``1`` or ``"true"``."""

    default_error_messages = {"invalid": "must be a boolean", "null": "must be a boolean"}

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data

    def to_representation(self, value: bool) -> bool:
        return bool(value)


#: The columns a todo is read with, in the order ``todo_json`` takes them.
COLUMNS = ("id", "title", "entity_ref", "created_at", "completed", "created_by")


def format_id(value: Any) -> str:
    """A UUID as ``8-4-4-4-12`` hex: from a UUID, or the 32 hex digits SQLite keeps."""
    if isinstance(value, str):
        if len(value) == 32:
            return f"{value[:8]}-{value[8:12]}-{value[12:16]}-{value[16:20]}-{value[20:]}"
        return value
    return str(value)


def iso_milliseconds(value: Any) -> str:
    """UTC ISO-8601 with milliseconds and ``Z``: ``2026-11-21T09:58:08.949Z``.

    From a datetime, or a database's text for a UTC time: ``YYYY-MM-DD HH:MM:SS[.ffffff][+00]``.
    """
    if isinstance(value, str):
        fraction = ""
        if value[19:20] == ".":  # PostgreSQL drops trailing zeros: "...:08.9+00"
            for digit in value[20:23]:
                if not digit.isdigit():
                    break
                fraction += digit
        return f"{value[:10]}T{value[11:19]}.{fraction:0<3}Z"
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return f"{value.isoformat(timespec='milliseconds')}Z"


def todo_json(row: tuple[Any, ...]) -> dict[str, Any]:
    """A todo as the API shows it, from its ``COLUMNS`` (as the ORM or the driver gives them)."""
    todo_id, title, entity_ref, created_at, completed, created_by = row
    data: dict[str, Any] = {"id": format_id(todo_id), "title": title}
    if entity_ref is not None:
        data["entityRef"] = entity_ref
    data["createdAt"] = iso_milliseconds(created_at)
    data["completed"] = bool(completed)
    if created_by is not None:
        data["createdBy"] = created_by
    return data


#: Rows already formatted, keyed by every column of the row: a todo that changes is a new key, so
#: an entry can never be stale, and a list of 100 todos costs a lookup per row instead of
#: formatting it again (a fifth of the list's time). The dicts are shared: never modify one.
_row_json = functools.lru_cache(maxsize=4096)(todo_json)


def todos_json(rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """``todo_json`` of each row (memoized on the row's values)."""
    return [_row_json(row) for row in rows]


class TodoSerializer(serializers.Serializer):
    """A todo as the API shows it: from a model instance, or a row of ``COLUMNS``."""

    def to_representation(self, todo: Todo | tuple[Any, ...]) -> dict[str, Any]:
        if isinstance(todo, tuple):
            return todo_json(todo)
        return todo_json(tuple(getattr(todo, column) for column in COLUMNS))


class InputSerializer(serializers.Serializer):
    """A serializer for request bodies whose fields are built and bound once per class, then
    shared by every instance. DRF rebuilds and binds every declared field for each serializer
    (tens of microseconds a request); validating a body changes nothing on a field, and these
    fields read nothing from their parent but its ``partial`` flag (False: required fields are
    required), so one bound set serves every request and thread."""

    @property
    def fields(self) -> BindingDict:  # type: ignore[override]
        cls = type(self)
        shared: BindingDict | None = cls.__dict__.get("_shared_fields")
        if shared is None:
            prototype = cls()
            shared = BindingDict(prototype)
            for name, field in copy.deepcopy(cls._declared_fields).items():
                shared[name] = field
            cls._shared_fields = shared
        return shared


class CreateTodoSerializer(InputSerializer):
    """POST: a title and an optional entityRef; anything else in the body is ignored, as in Backstage."""

    title = StrictString(max_length=Todo.TITLE_MAX_LENGTH)
    entityRef = StrictString(  # noqa: N815 - the JSON key
        max_length=Todo.ENTITY_REF_MAX_LENGTH, nullable=True, required=False
    )


class UpdateTodoSerializer(InputSerializer):
    """PATCH: a title and/or completed; anything else in the body is ignored, as in Backstage."""

    title = StrictString(max_length=Todo.TITLE_MAX_LENGTH, required=False)
    completed = StrictBoolean(required=False)


FIELD_ORDER = ("title", "entityRef", "completed")


def first_error(errors: dict[str, Any]) -> str:
    """``"title must be a string"``: the first field's first problem, in field order."""
    for field in FIELD_ORDER:
        if field in errors:
            detail = errors[field]
            return f"{field} {detail[0] if isinstance(detail, list) else detail}"
    field, detail = next(iter(errors.items()))
    return f"{field} {detail[0] if isinstance(detail, list) else detail}"
