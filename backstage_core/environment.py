"""The run mode, Backstage's ``NODE_ENV``: ``DJANGO_ENV=development`` (default), ``production`` or ``test``.

Development shows stack traces in error bodies, logs readable coloured lines and runs Django with
``DEBUG``; production logs JSON lines and requires a real secret key.
"""

from __future__ import annotations

import os
from typing import Literal

__all__ = ["Mode", "is_development", "is_production", "mode"]

Mode = Literal["development", "production", "test"]
MODES: tuple[Mode, ...] = ("development", "production", "test")


def mode() -> Mode:
    value = os.environ.get("DJANGO_ENV", "development").strip().lower() or "development"
    if value not in MODES:
        raise ValueError(f"Invalid DJANGO_ENV '{value}', must be one of {', '.join(MODES)}")
    return value  # type: ignore[return-value]


def is_production() -> bool:
    return mode() == "production"


def is_development() -> bool:
    return mode() == "development"
