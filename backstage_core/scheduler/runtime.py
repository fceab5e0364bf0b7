"""Which part this process plays in running scheduled tasks.

``web`` (the default) is a backend serving requests: it runs local tasks, and global ones when
``backend.scheduler.worker`` is ``embedded``. ``dispatcher`` is ``manage.py qcluster``'s main
process: it claims due global runs and hands them to django-q2. ``executor`` is a django-q2 worker
process: it runs what it is handed.
"""

from __future__ import annotations

from typing import Literal

__all__ = ["Role", "role", "set_role"]

Role = Literal["web", "dispatcher", "executor"]
_ROLE: Role = "web"


def role() -> Role:
    return _ROLE


def set_role(value: Role) -> None:
    global _ROLE
    _ROLE = value
