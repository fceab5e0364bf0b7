"""The logger services over Python's logging: plugin fields on every line, secrets redacted.

    logger.info("Todo created", {"id": todo_id})
    logger.child({"task": "purge"}).warn("Took long")

Development lines are readable and coloured
(``2026-11-21T10:00:00.000Z todo info Todo created id="..."``); production lines are JSON. The level
comes from ``LOG_LEVEL``, else ``backend.logger.level``, else ``info``; ``backend.logger.overrides``
set levels for lines whose fields match. Every line, Django's included, has secret config values
replaced with ``***``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import threading
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from backstage_core.services.definitions import core_services
from backstage_core.wiring.features import ServiceFactory, create_service_factory

__all__ = [
    "DevFormatter",
    "JsonFormatter",
    "LevelFilter",
    "LoggerService",
    "log_state",
    "logger_factory",
    "logging_settings",
    "root_logger_factory",
]

LEVELS = {
    "error": logging.ERROR,
    "warn": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
}
LEVEL_NAMES = {
    logging.ERROR: "error",
    logging.WARNING: "warn",
    logging.INFO: "info",
    logging.DEBUG: "debug",
}
FIELDS_ATTR = "backstage"


def level_name(levelno: int) -> str:
    if levelno >= logging.ERROR:
        return "error"
    if levelno >= logging.WARNING:
        return "warn"
    if levelno >= logging.INFO:
        return "info"
    return "debug"


class _LogState:
    """Process-wide logging state: the level, the overrides and the secrets to redact."""

    def __init__(self) -> None:
        self.level = logging.INFO
        self.overrides: list[tuple[dict[str, Any], int]] = []
        self._secrets: dict[str, None] = {}
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()

    def add_redactions(self, values: Iterable[str]) -> None:
        with self._lock:
            for value in values:
                text = value.strip() if isinstance(value, str) else None
                if text and len(text) > 1:
                    self._secrets[text] = None
            if self._secrets:
                ordered = sorted(self._secrets, key=len, reverse=True)
                self._pattern = re.compile("|".join(re.escape(s) for s in ordered))

    def redact(self, text: str) -> str:
        pattern = self._pattern
        return pattern.sub("***", text) if pattern is not None else text

    def set_level(self, level: str | int) -> None:
        self.level = LEVELS[level] if isinstance(level, str) else level

    def set_overrides(self, overrides: list[tuple[dict[str, Any], int]]) -> None:
        self.overrides[:] = overrides


log_state = _LogState()


def _record_fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = getattr(record, FIELDS_ATTR, None)
    if fields is None:
        return {
            "service": record.name.split(".")[0]
            if not record.name.startswith("backstage")
            else "backstage"
        }
    return fields


def _matches(pattern: Any, value: Any) -> bool:
    if isinstance(pattern, list):
        return any(_matches(p, value) for p in pattern)
    if (
        isinstance(pattern, str)
        and len(pattern) > 2
        and pattern.startswith("/")
        and pattern.rfind("/") > 0
    ):
        body, _, flags = pattern[1:].rpartition("/")
        try:
            regex = re.compile(body, re.IGNORECASE if "i" in flags else 0)
        except re.error:
            return pattern == value
        return isinstance(value, str) and regex.search(value) is not None
    return pattern == value


class LevelFilter(logging.Filter):
    """Drops lines below the level; the first matching override decides instead, if any."""

    def filter(self, record: logging.LogRecord) -> bool:
        state = log_state
        if state.overrides:
            fields = {
                **_record_fields(record),
                "message": record.getMessage(),
                "level": level_name(record.levelno),
            }
            for matchers, level in state.overrides:
                if all(_matches(p, fields.get(k)) for k, p in matchers.items()):
                    return record.levelno >= level
        return record.levelno >= state.level


class DjangoRequestFilter(logging.Filter):
    """Keeps Django's per-request log lines to errors outside plugins: the plugins' are logged once,
    by their error handler; a 503 from readiness is an answer, not an error; Backstage does not log
    4xx answers."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "status_code", 500) < 500:
            return False
        request = getattr(record, "request", None)
        return not (
            hasattr(request, "backstage_mount") or getattr(request, "backstage_quiet", False)
        )


def _iso(created: float) -> str:
    return (
        datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%dT%H:%M:%S.")
        + f"{int(created * 1000) % 1000:03d}Z"
    )


class _RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return log_state.redact(self.render(record))

    def render(self, record: logging.LogRecord) -> str:  # pragma: no cover - abstract
        raise NotImplementedError


class JsonFormatter(_RedactingFormatter):
    """One JSON object per line: level, message, the logger's fields, then a timestamp."""

    def render(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {"level": level_name(record.levelno), "message": record.getMessage()}
        body.update(_record_fields(record))
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            body.setdefault("name", type(error).__name__)
            body["stack"] = self.formatException(record.exc_info)
        body["timestamp"] = _iso(record.created)
        return json.dumps(body, default=str, ensure_ascii=False)


_COLORS = {"error": "31", "warn": "33", "info": "32", "debug": "90"}


class DevFormatter(_RedactingFormatter):
    """``<timestamp> <plugin or service> <level> <message> key=value ...``, coloured on a terminal."""

    def __init__(self, color: bool | None = None) -> None:
        super().__init__()
        if color is None:
            color = _stream_supports_color()
        self.color = color

    def _paint(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.color else text

    def render(self, record: logging.LogRecord) -> str:
        fields = dict(_record_fields(record))
        prefix = fields.pop("plugin", None)
        service = fields.pop("service", None)
        prefix = prefix or service or record.name
        level = level_name(record.levelno)
        extras = " ".join(
            f"{self._paint('36', key)}={_dump(value)}" for key, value in fields.items()
        )
        line = (
            f"{self._paint('2', _iso(record.created))} {self._paint('34', str(prefix))} "
            f"{self._paint(_COLORS[level], level)} {record.getMessage()} {extras}"
        ).rstrip()
        if record.exc_info and record.exc_info[1] is not None:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _dump(value: Any) -> str:
    try:
        return json.dumps(value, default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        return "[field value not castable to string]"


def _stream_supports_color() -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return hasattr(sys.stdout, "isatty") and sys.stdout.isatty()


class LoggerService:
    """Backstage's LoggerService: ``error/warn/info/debug(message, meta)`` and ``child(meta)``."""

    __slots__ = ("_fields", "_logger")

    def __init__(self, logger: logging.Logger, fields: Mapping[str, Any] | None = None) -> None:
        self._logger = logger
        self._fields = dict(fields or {})

    @property
    def fields(self) -> dict[str, Any]:
        return dict(self._fields)

    def child(self, meta: Mapping[str, Any]) -> LoggerService:
        """A logger adding ``meta`` to every line; a plugin's gets a Python logger of its own."""
        logger = self._logger.getChild(str(meta["plugin"])) if "plugin" in meta else self._logger
        return LoggerService(logger, {**self._fields, **meta})

    def _log(
        self, level: int, message: str, meta: Mapping[str, Any] | BaseException | None
    ) -> None:
        if (level < log_state.level and not log_state.overrides) or not self._logger.isEnabledFor(
            level
        ):
            return
        fields = self._fields
        exc_info = None
        if isinstance(meta, BaseException):
            exc_info = (type(meta), meta, meta.__traceback__)
        elif meta:
            error = meta.get("error") if isinstance(meta.get("error"), BaseException) else None
            fields = {
                **fields,
                **{k: v for k, v in meta.items() if v is not error or error is None},
            }
            if error is not None:
                exc_info = (type(error), error, error.__traceback__)
        self._logger.log(
            level, "%s", message, exc_info=exc_info, extra={FIELDS_ATTR: fields}, stacklevel=3
        )

    def error(self, message: str, meta: Mapping[str, Any] | BaseException | None = None) -> None:
        self._log(logging.ERROR, message, meta)

    def warn(self, message: str, meta: Mapping[str, Any] | BaseException | None = None) -> None:
        self._log(logging.WARNING, message, meta)

    warning = warn

    def info(self, message: str, meta: Mapping[str, Any] | BaseException | None = None) -> None:
        self._log(logging.INFO, message, meta)

    def debug(self, message: str, meta: Mapping[str, Any] | BaseException | None = None) -> None:
        self._log(logging.DEBUG, message, meta)


def read_level(config: Any, environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    level = (
        env.get("LOG_LEVEL")
        or (config.get_optional_string("backend.logger.level") if config else None)
        or "info"
    ).lower()
    if level not in LEVELS:
        raise ValueError(
            f"Invalid log level '{level}', must be one of 'error', 'warn', 'info' or 'debug'"
        )
    return level


def read_overrides(config: Any) -> list[tuple[dict[str, Any], int]]:
    overrides = []
    for index, item in enumerate(
        config.get_optional_config_array("backend.logger.overrides") or []
    ):
        level = item.get_string("level")
        if level not in LEVELS:
            raise ValueError(
                f"Invalid config at backend.logger.overrides[{index}].level, '{level}' is not a valid "
                f"logging level, must be one of 'error', 'warn', 'info' or 'debug'."
            )
        overrides.append((dict(item.get("matchers")), LEVELS[level]))
    return overrides


def logging_settings(config: Any, *, production: bool) -> dict[str, Any]:
    """Django's LOGGING setting: one console handler with the Backstage format and filters."""
    log_state.set_level(read_level(config))
    log_state.set_overrides(read_overrides(config))
    formatter = (
        "backstage_core.services.logger.JsonFormatter"
        if production
        else ("backstage_core.services.logger.DevFormatter")
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "backstage_level": {"()": "backstage_core.services.logger.LevelFilter"},
            "django_request": {"()": "backstage_core.services.logger.DjangoRequestFilter"},
        },
        "formatters": {"backstage": {"()": formatter}},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stdout",
                "formatter": "backstage",
                "filters": ["backstage_level"],
            }
        },
        "root": {"handlers": ["console"], "level": "WARNING"},
        "loggers": {
            "backstage": {"level": "DEBUG", "propagate": True},
            "django": {"level": "INFO", "propagate": True},
            "django.request": {"level": "INFO", "propagate": True, "filters": ["django_request"]},
            "django.server": {"level": "INFO", "propagate": True},
            # django-q2 adds a handler of its own to a logger that has none.
            "django-q": {"level": "INFO", "handlers": ["console"], "propagate": False},
        },
    }


def root_logger_factory() -> ServiceFactory:
    """The root logger: ``service=backstage`` plus ``backend.logger.meta``; redacts config secrets."""

    async def factory(config: Any) -> LoggerService:
        from backstage_core.services.config import config_secrets

        meta = config.get_optional("backend.logger.meta") or {}
        logger = LoggerService(logging.getLogger("backstage"), {"service": "backstage", **meta})

        def refresh() -> None:
            secrets = config_secrets(config)
            log_state.add_redactions(secrets)
            log_state.set_level(read_level(config))
            log_state.set_overrides(read_overrides(config))
            logger.debug(f"Found {len(secrets)} new secrets in config that will be redacted")

        refresh()
        if hasattr(config, "subscribe"):
            config.subscribe(refresh)
        return logger

    return create_service_factory(
        service=core_services.root_logger,
        deps={"config": core_services.root_config},
        factory=factory,
    )


def logger_factory() -> ServiceFactory:
    """The plugin logger: the root logger with ``plugin=<id>`` on every line."""

    async def factory(root_logger: LoggerService, plugin: Any) -> LoggerService:
        return root_logger.child({"plugin": plugin.get_id()})

    return create_service_factory(
        service=core_services.logger,
        deps={"root_logger": core_services.root_logger, "plugin": core_services.plugin_metadata},
        factory=factory,
    )
