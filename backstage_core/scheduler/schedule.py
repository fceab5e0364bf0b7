"""Task schedules: how often, how long, from when, and where (every instance or once across all).

    {"frequency": {"minutes": 10}, "timeout": {"minutes": 1}}
    {"frequency": {"cron": "*/5 * * * *"}, "timeout": "1m", "initial_delay": {"seconds": 30}}
    {"frequency": {"trigger": "manual"}, "timeout": timedelta(minutes=5), "scope": "local"}

A schedule becomes Backstage's settings JSON, ``{"version":2,"cadence":...,"timeoutAfterDuration":...}``
with the cadence a cron expression, ``manual`` or an ISO 8601 duration (``PT10M``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from backstage_core.config.duration import DURATION_UNITS, read_duration_from_config, to_timedelta
from backstage_core.errors import InputError

__all__ = [
    "Scope",
    "TaskSettings",
    "backstage_cron_to_croniter",
    "iso_duration",
    "read_task_schedule_from_config",
    "settings_for",
    "validate_cron",
]

Scope = Literal["global", "local"]
_ISO_DATE_UNITS = (("years", "Y"), ("months", "M"), ("weeks", "W"), ("days", "D"))
_ISO_TIME_UNITS = (("hours", "H"), ("minutes", "M"))


def _number(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))


def iso_duration(value: Any) -> str:
    """An ISO 8601 duration as luxon writes it: units kept as given (``{minutes: 90}`` is ``PT90M``)."""
    if isinstance(value, str):
        if value.startswith("P"):
            to_timedelta(value)  # validate
            return value
        value = to_timedelta(value)
    if isinstance(value, timedelta):
        value = {"milliseconds": value / timedelta(milliseconds=1)}
    if not isinstance(value, Mapping):
        raise InputError(f"Invalid duration {value!r}")
    parts = {_singular(k): v for k, v in value.items()}
    unknown = [k for k in parts if k not in DURATION_UNITS]
    if unknown:
        raise InputError(f"Invalid duration, unknown unit {unknown[0]}")
    date = "".join(
        f"{_number(parts[unit])}{letter}" for unit, letter in _ISO_DATE_UNITS if parts.get(unit)
    )
    time = "".join(
        f"{_number(parts[unit])}{letter}" for unit, letter in _ISO_TIME_UNITS if parts.get(unit)
    )
    seconds = parts.get("seconds", 0) + parts.get("milliseconds", 0) / 1000
    if seconds:
        time += f"{_number(seconds)}S"
    if not date and not time:
        return "PT0S"
    return f"P{date}" + (f"T{time}" if time else "")


def _singular(unit: str) -> str:
    return unit if unit.endswith("s") else f"{unit}s"


def backstage_cron_to_croniter(cron: str) -> str:
    """Backstage writes an optional seconds field first; croniter wants it last."""
    fields = cron.split()
    if len(fields) == 6:
        fields = fields[1:] + fields[:1]
    return " ".join(fields)


def validate_cron(cron: str) -> str:
    from croniter import croniter  # imported when a cron schedule is used: it is slow to load

    if not cron.strip() or not croniter.is_valid(backstage_cron_to_croniter(cron)):
        raise InputError(f"Invalid cron '{cron}'")
    return cron


@dataclass(frozen=True)
class TaskSettings:
    """A task's settings (Backstage's TaskSettingsV2)."""

    cadence: str
    timeout: str
    initial_delay: str | None = None

    @property
    def kind(self) -> Literal["manual", "duration", "cron"]:
        if self.cadence == "manual":
            return "manual"
        return "duration" if self.cadence.startswith("P") else "cron"

    @property
    def interval(self) -> timedelta:
        return to_timedelta(self.cadence)

    @property
    def timeout_after(self) -> timedelta:
        return to_timedelta(self.timeout)

    @property
    def initial_delay_after(self) -> timedelta | None:
        return to_timedelta(self.initial_delay) if self.initial_delay else None

    def next_cron_time(self, after: datetime | None = None) -> datetime:
        """The next time the cron expression fires after ``after`` (in the server's zone), in UTC."""
        start = (after or datetime.now(UTC)).astimezone()
        return (
            _croniter()(backstage_cron_to_croniter(self.cadence), start)
            .get_next(datetime)
            .astimezone(UTC)
        )

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"version": 2, "cadence": self.cadence}
        if self.initial_delay:
            data["initialDelayDuration"] = self.initial_delay
        data["timeoutAfterDuration"] = self.timeout
        return data

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> TaskSettings:
        data = json.loads(text)
        if data.get("version") != 2:
            raise InputError(f"Unsupported task settings version {data.get('version')!r}")
        return cls(
            cadence=data["cadence"],
            timeout=data["timeoutAfterDuration"],
            initial_delay=data.get("initialDelayDuration"),
        )


def _cadence(frequency: Any) -> str:
    if isinstance(frequency, Mapping) and frequency.get("cron"):
        return validate_cron(str(frequency["cron"]))
    if isinstance(frequency, Mapping) and frequency.get("trigger") is not None:
        if frequency["trigger"] != "manual":
            raise InputError("Invalid trigger, expecting 'manual'")
        return "manual"
    cadence = iso_duration(frequency)
    if to_timedelta(cadence) <= timedelta(0):
        raise InputError("A task's frequency must be longer than zero")
    return cadence


def settings_for(*, frequency: Any, timeout: Any, initial_delay: Any = None) -> TaskSettings:
    """Validated settings from a schedule's frequency, timeout and initial delay."""
    if timeout is None:
        raise InputError("A task needs a timeout")
    return TaskSettings(
        cadence=_cadence(frequency),
        timeout=iso_duration(timeout),
        initial_delay=iso_duration(initial_delay) if initial_delay is not None else None,
    )


def read_task_schedule_from_config(config: Any) -> dict[str, Any]:
    """A schedule from config (``frequency``, ``timeout``, ``initialDelay``, ``scope``), for
    ``create_scheduled_task_runner`` or ``schedule_task``."""
    value = config.get("frequency")
    if isinstance(value, Mapping) and value.get("cron"):
        frequency: Any = {"cron": value["cron"]}
    elif isinstance(value, Mapping) and value.get("trigger") == "manual":
        frequency = {"trigger": "manual"}
    else:
        frequency = read_duration_from_config(config, "frequency")
    schedule: dict[str, Any] = {
        "frequency": frequency,
        "timeout": read_duration_from_config(config, "timeout"),
    }
    if config.has("initialDelay"):
        schedule["initial_delay"] = read_duration_from_config(config, "initialDelay")
    scope = config.get_optional_string("scope")
    if scope is not None:
        if scope not in ("global", "local"):
            raise ValueError(
                f'Only "global" or "local" are allowed for TaskScheduleDefinition.scope, but got: {scope}'
            )
        schedule["scope"] = scope
    return schedule


def _croniter() -> Any:
    from croniter import croniter

    return croniter
