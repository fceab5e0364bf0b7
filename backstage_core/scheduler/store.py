"""The task table of one plugin's database, and every query the scheduler makes of it.

Times are the database's (``now()``), so that instances agree whatever their clocks say. A run is
claimed by one conditional UPDATE (``WHERE ticket IS NULL AND next_run_start_at <= now()``) that
exactly one instance can win; it is released, and the next run set, by an UPDATE guarded by the
ticket, so a run that another instance took over can not release it.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import BooleanField, Case, DateTimeField, ExpressionWrapper, F, Q, Value, When
from django.db.models.functions import Greatest, Now

from backstage_core.db.engines import ensure_table
from backstage_core.errors import ConflictError, NotFoundError
from backstage_core.scheduler.schedule import TaskSettings

__all__ = ["TIMED_OUT", "CANCELLED", "TaskStore"]

TIMED_OUT = json.dumps({"name": "Error", "message": "Task timed out"}, separators=(",", ":"))
CANCELLED = json.dumps({"name": "Error", "message": "Task was cancelled"}, separators=(",", ":"))


def _plus(delta: timedelta) -> Any:
    return ExpressionWrapper(Now() + Value(delta), output_field=DateTimeField())


def _model() -> Any:
    from backstage_core.models import SchedulerTask  # models load once Django's apps are ready

    return SchedulerTask


@dataclass(frozen=True)
class Claim:
    """A task run this instance claimed: its ticket and when it was due."""

    ticket: str
    scheduled_at: datetime | None


class TaskStore:
    """Queries of the task table in the database ``alias``."""

    def __init__(self, alias: str, *, skip_migrations: bool = False) -> None:
        self.alias = alias
        self._ready = skip_migrations

    @property
    def tasks(self) -> Any:
        self.ensure_table()
        return _model().objects.using(self.alias)

    def ensure_table(self) -> None:
        """Create the task table if it is missing (once per process; several processes may race)."""
        if not self._ready:
            ensure_table(self.alias, _model())
            self._ready = True

    # -- registering -------------------------------------------------------------------------

    def persist(self, task_id: str, settings: TaskSettings) -> None:
        """Insert or update a task; on update the earlier of the stored and the new next run wins."""
        start_at, next_start_at = self._start_times(settings)
        self.ensure_table()  # before any transaction: SQLite changes schemas outside of one
        try:
            with transaction.atomic(using=self.alias):
                self.tasks.create(
                    id=task_id, settings_json=settings.to_json(), next_run_start_at=start_at
                )
            return
        except IntegrityError:
            pass
        if next_start_at is None:
            self.tasks.filter(id=task_id).update(settings_json=settings.to_json())
            return
        self.tasks.filter(id=task_id).update(
            settings_json=settings.to_json(),
            next_run_start_at=Case(
                When(next_run_start_at__isnull=True, then=next_start_at),
                When(next_run_start_at__gt=next_start_at, then=next_start_at),
                default=F("next_run_start_at"),
            ),
        )

    @staticmethod
    def _start_times(settings: TaskSettings) -> tuple[Any, Any]:
        """(next run on first insert, next run on re-registering): Backstage's rules."""
        if settings.kind == "cron":
            next_start: Any = settings.next_cron_time() - timedelta(seconds=1)
        elif settings.kind == "manual":
            next_start = None
        else:
            next_start = _plus(settings.interval)
        delay = settings.initial_delay_after
        if delay is not None:
            return _plus(delay), next_start
        if settings.kind == "duration":
            return Now(), next_start
        return next_start, next_start

    # -- running -----------------------------------------------------------------------------

    def is_ready(self, task_id: str) -> bool | None:
        """True when due and not running, False when not, None when the task is gone."""
        ready = ExpressionWrapper(
            Q(next_run_start_at__lte=Now()) & Q(current_run_ticket__isnull=True),
            output_field=BooleanField(),
        )
        row = self.tasks.filter(id=task_id).annotate(ready=ready).values_list("id", "ready").first()
        return (
            None if row is None else bool(row[1])
        )  # NULL (a manual task not triggered) is not ready

    def claim(self, task_id: str, timeout: timedelta) -> Claim | None:
        """Take the due run for this instance; None when another instance has it (or it is not due)."""
        ticket = str(uuid.uuid4())
        won = self.tasks.filter(
            id=task_id, current_run_ticket__isnull=True, next_run_start_at__lte=Now()
        ).update(
            current_run_ticket=ticket,
            current_run_started_at=Now(),
            current_run_expires_at=_plus(timeout),
        )
        if won != 1:
            return None
        scheduled = (
            self.tasks.filter(id=task_id, current_run_ticket=ticket)
            .values_list("next_run_start_at", flat=True)
            .first()
        )
        return Claim(ticket, scheduled)

    def still_ours(self, task_id: str, ticket: str) -> bool:
        return self.tasks.filter(id=task_id, current_run_ticket=ticket).exists()

    def _next_run(self, settings: TaskSettings) -> Any:
        if settings.kind == "cron":
            return settings.next_cron_time()
        if settings.kind == "manual":
            return None
        return Greatest(
            ExpressionWrapper(
                F("next_run_start_at") + Value(settings.interval), output_field=DateTimeField()
            ),
            Now(),
        )

    def release(
        self, task_id: str, ticket: str, settings: TaskSettings, error_json: str | None
    ) -> bool:
        """End a run and set the next one; False when the run was no longer this ticket's."""
        return 1 == self.tasks.filter(id=task_id, current_run_ticket=ticket).update(
            next_run_start_at=self._next_run(settings),
            current_run_ticket=None,
            current_run_started_at=None,
            current_run_expires_at=None,
            last_run_ended_at=Now(),
            last_run_error_json=error_json,
        )

    # -- operations --------------------------------------------------------------------------

    def trigger(self, task_id: str) -> None:
        if not self.tasks.filter(id=task_id).exists():
            raise NotFoundError(f"Task {task_id} does not exist")
        if not self.tasks.filter(id=task_id, current_run_ticket__isnull=True).update(
            next_run_start_at=Now()
        ):
            raise ConflictError(f"Task {task_id} is currently running")

    def cancel(self, task_id: str) -> None:
        row = (
            self.tasks.filter(id=task_id).values_list("settings_json", "current_run_ticket").first()
        )
        if row is None:
            raise NotFoundError(f"Task {task_id} does not exist")
        settings_json, ticket = row
        if ticket is None or not self.release(
            task_id, ticket, TaskSettings.from_json(settings_json), CANCELLED
        ):
            raise ConflictError(f"Task {task_id} is not running")

    def expire_lost_runs(self) -> list[str]:
        """Free runs whose claim expired (their instance died or hung); returns their task ids."""
        lost = list(
            self.tasks.filter(current_run_expires_at__lt=Now()).values_list("id", flat=True)
        )
        if lost:
            self.tasks.filter(id__in=lost, current_run_expires_at__lt=Now()).update(
                current_run_ticket=None,
                current_run_started_at=None,
                current_run_expires_at=None,
                last_run_ended_at=Now(),
                last_run_error_json=TIMED_OUT,
            )
        return lost

    def states(self, task_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Each task's state as the scheduler endpoints show it."""
        rows = self.tasks.filter(id__in=task_ids).values(
            "id", "next_run_start_at", "current_run_started_at", "current_run_expires_at",
            "last_run_error_json", "last_run_ended_at",
        )  # fmt: skip
        result = {}
        for row in rows:
            if row["current_run_started_at"] is not None:
                state: dict[str, Any] = {
                    "status": "running",
                    "startedAt": iso(row["current_run_started_at"]),
                    "timesOutAt": iso(row["current_run_expires_at"]),
                }
            else:
                state = {"status": "idle", "startsAt": iso(row["next_run_start_at"])}
            state["lastRunEndedAt"] = iso(row["last_run_ended_at"])
            state["lastRunError"] = row["last_run_error_json"] or None
            result[row["id"]] = {k: v for k, v in state.items() if v is not None}
        return result


def iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="milliseconds") if value is not None else None
