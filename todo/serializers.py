"""The todo JSON shape, and strict validation of what clients send.

A todo reads ``{"id", "title", "entityRef"?, "createdAt", "completed", "createdBy"?}``;
``entityRef`` is absent when unset, ``createdBy`` (the creator's user entity ref) when no user
created it, and ``createdAt`` is UTC ISO-8601 with milliseconds. Input is checked as it is, without
coercion: a title must be a non-blank string of at most 1,000 characters, an entityRef a string of
at most 255 characters (or null), completed a boolean. The first problem is reported as the seed's
``{"error": "title is required"}`` is: one sentence naming the field.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from todo.models import Todo


class StrictString(serializers.Field):
    """A string taken as sent: no coercion of numbers, booleans or objects."""

    default_error_messages = {
        "required": "is required",
        "null": "is required",
        "invalid": "must be a string",
        "blank": "must not be blank",
        "max_length": "must be at most {max_length} characters",
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


def iso_milliseconds(value: Any) -> str:
    """UTC ISO-8601 with milliseconds and ``Z``: ``2026-11-21T09:58:08.949Z``."""
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


class TodoSerializer(serializers.Serializer):
    """A todo as the API shows it."""

    def to_representation(self, todo: Todo) -> dict[str, Any]:
        data = {
            "id": str(todo.id),
            "title": todo.title,
            "entityRef": todo.entity_ref,
            "createdAt": iso_milliseconds(todo.created_at),
            "completed": bool(todo.completed),
        }
        if todo.entity_ref is None:
            del data["entityRef"]
        if todo.created_by is not None:
            data["createdBy"] = todo.created_by
        return data


class CreateTodoSerializer(serializers.Serializer):
    """POST: a title and an optional entityRef; anything else in the body is ignored, as in Backstage."""

    title = StrictString(max_length=Todo.TITLE_MAX_LENGTH)
    entityRef = StrictString(  # noqa: N815 - the JSON key
        max_length=Todo.ENTITY_REF_MAX_LENGTH, nullable=True, required=False
    )


class UpdateTodoSerializer(serializers.Serializer):
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
