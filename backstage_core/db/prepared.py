"""Prepared queries: a queryset's SQL compiled once per database, then run with new values.

    newest_first = PreparedQuery(
        lambda entity_ref: Todo.objects.filter(entity_ref=entity_ref).values_list("id", "title"),
        entity_ref=Todo._meta.get_field("entity_ref"),
    )
    rows = newest_first.fetch("todo", entity_ref="component:default/alpha")   # raw driver rows

For the hot read paths of a plugin. The ORM builds the SQL (once per database alias, from the very
queryset a view would run) and the database's own cursor runs it, so each request skips compiling
the query (about half a millisecond for a simple one) and turning each row into a model instance
with its converters (about 15 microseconds a row). Rows come back as the driver gives them: the
caller formats values itself (see ``todo.serializers``). Errors are Django's database errors, as
from any query.

On SQLite and PostgreSQL the statement goes to the driver's connection directly, without Django's
cursor wrapper (a fifth of an insert's time on SQLite): unless the connection has execute wrappers
(``connection.execute_wrapper``) or logs its queries (``DEBUG``), which then see it as any other.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from django.db import connections

__all__ = ["PreparedInsert", "PreparedQuery"]


def _as_it_is(value: Any, connection: Any) -> Any:
    return value


class _Sentinel:
    """A value no real parameter equals: marks where a parameter lands in the compiled SQL."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<parameter {self.name}>"


def _key(alias: str, connection: Any) -> tuple[str, str]:
    """SQL is compiled per alias and engine (tests point one alias at several engines)."""
    return alias, connection.display_name


_DIRECT_VENDORS = frozenset({"sqlite", "postgresql"})


def _driver_sql(connection: Any, sql: str) -> str:
    """``sql`` with the driver's placeholders (SQLite's are ``?``)."""
    if connection.vendor == "sqlite":
        from django.db.backends.sqlite3.base import FORMAT_QMARK_REGEX

        return FORMAT_QMARK_REGEX.sub("?", sql).replace("%%", "%")
    return sql


def _run(connection: Any, sql: str, driver_sql: str, params: list[Any], fetch: bool) -> Any:
    """Execute ``sql``; straight on the driver's connection when nothing needs to see it."""
    if (
        connection.vendor not in _DIRECT_VENDORS
        or connection.execute_wrappers
        or connection.queries_logged
    ):
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall() if fetch else None
    connection.ensure_connection()
    connection.validate_no_broken_transaction()
    with connection.wrap_database_errors:
        if connection.vendor == "sqlite":
            cursor = connection.connection.execute(driver_sql, params)
            return cursor.fetchall() if fetch else None
        with connection.connection.cursor() as cursor:
            cursor.execute(driver_sql, params)
            return cursor.fetchall() if fetch else None


def _preparer(field: Any, *, save: bool) -> Callable[[Any, Any], Any]:
    """``field.get_db_prep_save(value, connection)`` (``save``) or
    ``field.get_db_prep_value(value, connection, prepared=False)``, as a function of
    ``(value, connection)``.

    For Django's own text, boolean, UUID and date-time fields, and the values they are usually
    given (a ``str``, a ``bool``, a ``UUID``, an aware ``datetime``; None for the first two), it
    gives what the field would without the field's chain of calls (``get_db_prep_value``,
    ``get_prep_value``, ``to_python``: 3 % of a create's instructions for its six values). Any
    other value or field class, a subclass of one of these included, goes through the field.
    """
    import datetime
    import uuid

    from django.db import models

    if save:
        full: Callable[[Any, Any], Any] = field.get_db_prep_save
    else:

        def full(value: Any, connection: Any) -> Any:
            return field.get_db_prep_value(value, connection, prepared=False)

    kind = type(field)
    if kind in (models.CharField, models.TextField, models.BooleanField):
        plain = bool if kind is models.BooleanField else str

        def prepare(value: Any, connection: Any) -> Any:
            if value is None or type(value) is plain:  # to_python gives it back as it is
                return value
            return full(value, connection)

    elif kind is models.UUIDField:

        def prepare(value: Any, connection: Any) -> Any:
            if type(value) is uuid.UUID:
                return value if connection.features.has_native_uuid_field else value.hex
            return full(value, connection)

    elif kind is models.DateTimeField:

        def prepare(value: Any, connection: Any) -> Any:
            # An aware datetime is its own prepared value (a naive one is made aware, with a
            # warning, by the field); the backend then adapts it.
            if type(value) is datetime.datetime and value.utcoffset() is not None:
                return connection.ops.adapt_datetimefield_value(value)
            return full(value, connection)

    else:
        prepare = full
    return prepare


def _marker(name: str, field: Any) -> Any:
    import uuid

    from django.db import models

    if isinstance(field, models.UUIDField):
        return uuid.uuid4()
    if isinstance(field, models.DateTimeField):
        from datetime import UTC, datetime, timedelta

        return datetime(1970, 1, 2, tzinfo=UTC) + timedelta(microseconds=uuid.uuid4().int % 10**12)
    return f"\x00backstage-param-{name}-{uuid.uuid4().hex}\x00"


class PreparedQuery:
    """``build(**params)`` returns a queryset; ``params`` maps each parameter to its model field."""

    def __init__(self, build: Callable[..., Any], **params: Any) -> None:
        self._build = build
        self._fields = params
        self._preparers = {
            name: _preparer(field, save=False) if field else _as_it_is
            for name, field in params.items()
        }
        self._compiled: dict[tuple[str, str], tuple[str, str, list[Any]]] = {}
        self._lock = threading.Lock()

    def _compile(self, alias: str, connection: Any) -> tuple[str, str, list[Any]]:
        key = _key(alias, connection)
        compiled = self._compiled.get(key)
        if compiled is not None:
            return compiled
        markers = {name: _marker(name, field) for name, field in self._fields.items()}
        queryset = self._build(**markers)
        sql, params = queryset.query.get_compiler(using=alias).as_sql()
        slots: list[Any] = []
        by_marker = {}
        for name, field in self._fields.items():
            marker = markers[name]
            prepared = (
                field.get_db_prep_value(marker, connection, prepared=False) if field else marker
            )
            by_marker[prepared] = _Sentinel(name)
        for value in params:
            try:
                slots.append(by_marker.get(value, value))
            except TypeError:  # unhashable: not one of ours
                slots.append(value)
        missing = set(self._fields) - {s.name for s in slots if isinstance(s, _Sentinel)}
        if missing:
            raise ValueError(f"Parameters {sorted(missing)} do not appear in the compiled query")
        compiled = (sql, _driver_sql(connection, sql), slots)
        with self._lock:
            self._compiled[key] = compiled
        return compiled

    def _params(self, connection: Any, slots: list[Any], values: dict[str, Any]) -> list[Any]:
        params = []
        for slot in slots:
            if isinstance(slot, _Sentinel):
                params.append(self._preparers[slot.name](values[slot.name], connection))
            else:
                params.append(slot)
        return params

    def statement(self, alias: str, **values: Any) -> tuple[str, list[Any]]:
        """The SQL (with Django's ``%s`` placeholders) and parameters ``fetch`` would run."""
        connection = connections[alias]
        sql, _driver_sql, slots = self._compile(alias, connection)
        return sql, self._params(connection, slots, values)

    def fetch(self, alias: str, **values: Any) -> list[tuple[Any, ...]]:
        """The rows of the query on database ``alias`` with these parameter values."""
        connection = connections[alias]  # one lookup: each is a thread-local's
        sql, driver_sql, slots = self._compile(alias, connection)
        return _run(
            connection, sql, driver_sql, self._params(connection, slots, values), fetch=True
        )


class PreparedInsert:
    """An INSERT of one row of ``model`` (these fields), compiled once per database.

        insert_todo = PreparedInsert(Todo, ["id", "title", "created_at"])
        insert_todo.execute("todo", id=uuid.uuid4(), title="x", created_at=timezone.now())

    Values are prepared by each field, as ``Model.save()`` prepares them; model signals
    (``pre_save``/``post_save``) are not sent: for a plugin's own hot write paths.
    """

    def __init__(self, model: Any, field_names: list[str]) -> None:
        self._model = model
        self._fields = [model._meta.get_field(name) for name in field_names]
        self._prepare = [(field.attname, _preparer(field, save=True)) for field in self._fields]
        self._compiled: dict[tuple[str, str], tuple[str, str]] = {}

    def _compile(self, alias: str, connection: Any) -> tuple[str, str]:
        key = _key(alias, connection)
        compiled = self._compiled.get(key)
        if compiled is None:
            from django.db.models.sql import InsertQuery

            query = InsertQuery(self._model)
            query.insert_values(self._fields, [self._model()])
            ((sql, _params),) = query.get_compiler(using=alias).as_sql()
            compiled = self._compiled[key] = (sql, _driver_sql(connection, sql))
        return compiled

    def execute(self, alias: str, **values: Any) -> None:
        connection = connections[alias]
        params = [prepare(values[name], connection) for name, prepare in self._prepare]
        sql, driver_sql = self._compile(alias, connection)
        _run(connection, sql, driver_sql, params, fetch=False)
