"""Durations as Backstage writes them: ``{minutes: 10}``, ``'2 seconds'``, ``'PT1M'`` or a timedelta.

read_duration_from_config(config, "backend.lifecycle.serverShutdownDelay")  # -> timedelta
to_timedelta({"minutes": 10})
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from backstage_core.errors import InputError, stringify_error

__all__ = [
    "DURATION_UNITS",
    "HumanDuration",
    "read_duration_from_config",
    "to_milliseconds",
    "to_timedelta",
]

HumanDuration = Mapping[str, float]
DURATION_UNITS = ("years", "months", "weeks", "days", "hours", "minutes", "seconds", "milliseconds")
_UNIT_MS = {
    "years": 365.25 * 86_400_000,
    "months": 30 * 86_400_000,
    "weeks": 7 * 86_400_000,
    "days": 86_400_000,
    "hours": 3_600_000,
    "minutes": 60_000,
    "seconds": 1000,
    "milliseconds": 1,
}
_MS_PATTERN = re.compile(
    r"(-?(?:\d+)?\.?\d+) *(milliseconds?|msecs?|ms|seconds?|secs?|s|minutes?|mins?|m|hours?|hrs?|h"
    r"|days?|d|weeks?|w|years?|yrs?|y)?",
    re.IGNORECASE,
)
_MS_UNITS = {
    "y": "years", "yr": "years", "yrs": "years", "year": "years", "years": "years",
    "w": "weeks", "week": "weeks", "weeks": "weeks",
    "d": "days", "day": "days", "days": "days",
    "h": "hours", "hr": "hours", "hrs": "hours", "hour": "hours", "hours": "hours",
    "m": "minutes", "min": "minutes", "mins": "minutes", "minute": "minutes", "minutes": "minutes",
    "s": "seconds", "sec": "seconds", "secs": "seconds", "second": "seconds", "seconds": "seconds",
    "ms": "milliseconds", "msec": "milliseconds", "msecs": "milliseconds",
    "millisecond": "milliseconds", "milliseconds": "milliseconds",
}  # fmt: skip
_ISO_PATTERN = re.compile(
    r"P(?:(?P<years>\d+(?:[.,]\d+)?)Y)?(?:(?P<months>\d+(?:[.,]\d+)?)M)?(?:(?P<weeks>\d+(?:[.,]\d+)?)W)?"
    r"(?:(?P<days>\d+(?:[.,]\d+)?)D)?(?:T(?:(?P<hours>\d+(?:[.,]\d+)?)H)?"
    r"(?:(?P<minutes>\d+(?:[.,]\d+)?)M)?(?:(?P<seconds>\d+(?:[.,]\d+)?)S)?)?"
)


def _from_mapping(value: Mapping[str, Any]) -> timedelta:
    unknown = [k for k in value if k not in DURATION_UNITS]
    if unknown:
        noun = "properties" if len(unknown) > 1 else "property"
        names = ", ".join(f"'{k}'" for k in unknown)
        expected = ", ".join(f"'{u}'" for u in DURATION_UNITS)
        raise ValueError(f"Unknown {noun} {names}; expected one or more of {expected}")
    if not value:
        expected = ", ".join(f"'{u}'" for u in DURATION_UNITS)
        raise ValueError(f"Needs one or more of {expected}")
    total = 0.0
    for unit, amount in value.items():
        if not isinstance(amount, int | float) or isinstance(amount, bool):
            raise ValueError(f"Value of '{unit}' must be a number")
        total += amount * _UNIT_MS[unit]
    return timedelta(milliseconds=total)


def _from_string(text: str) -> timedelta:
    text = text.strip()
    if text.startswith("P"):
        match = _ISO_PATTERN.fullmatch(text)
        if not match:
            raise ValueError(
                "Invalid ISO format, expected a value similar to 'P2DT6H' (2 days 6 hours) or "
                "'PT1M' (1 minute)"
            )
        parts = {k: float(v.replace(",", ".")) for k, v in match.groupdict().items() if v}
        if not parts:
            raise ValueError("Invalid ISO format, no values given")
        return _from_mapping(parts)
    if re.fullmatch(r"-?\d+(?:\.\d+)?", text):
        raise ValueError(
            "The value cannot be a plain number; try adding a unit like 'ms' or 'seconds'"
        )
    match = _MS_PATTERN.fullmatch(text)
    if not match or not match.group(2):
        raise ValueError(
            "Not a valid duration string, try a number followed by a unit such as '1d' or "
            "'2 seconds'"
        )
    amount = float(match.group(1))
    if amount < 0:
        raise ValueError("Negative durations are not allowed")
    return timedelta(milliseconds=amount * _UNIT_MS[_MS_UNITS[match.group(2).lower()]])


def to_timedelta(value: timedelta | HumanDuration | str | float) -> timedelta:
    """A timedelta from a timedelta, a HumanDuration mapping, a duration string or milliseconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, Mapping):
        return _from_mapping(value)
    if isinstance(value, str):
        return _from_string(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(milliseconds=value)
    raise TypeError(f"Not a duration: {value!r}")


def to_milliseconds(value: timedelta | HumanDuration | str | float) -> float:
    return to_timedelta(value) / timedelta(milliseconds=1)


def read_duration_from_config(config: Any, key: str) -> timedelta:
    """Read a duration (string, or object of units) from config, with Backstage's messages."""
    value = config.get(key)
    if isinstance(value, str):
        try:
            return _from_string(value)
        except ValueError as error:
            raise InputError(
                f"Invalid duration '{value.strip()}' in config at '{key}', Error: {error}"
            ) from error
    try:
        sub = config.get_config(key)
        data = {unit: sub.get_optional_number(unit) for unit in sub.keys()}
    except Exception as error:
        raise InputError(
            f"Failed to read duration from config, {stringify_error(error)}"
        ) from error
    try:
        return _from_mapping(data)
    except ValueError as error:
        raise InputError(
            f"Failed to read duration from config at '{key}', Error: {error}"
        ) from error
