"""Global task runs executed by django-q2 workers (``backend.scheduler.worker: django-q``).

The qcluster's main process claims a due run (the same conditional UPDATE as ever, so a run is
claimed once) and queues ``run_claimed_task``; a qcluster worker runs it with django-q2's timeout
(the task's own timeout plus a grace, after the abort signal had its chance) and django-q2 records
the result, which its admin pages show.
"""

from __future__ import annotations

import math
import threading
from datetime import datetime
from typing import Any

from backstage_core.errors import CustomErrorBase
from backstage_core.scheduler import runtime
from backstage_core.scheduler.signals import AbortError, AbortSignal
from backstage_core.scheduler.store import Claim
from backstage_core.scheduler.workers import TaskRun, TaskTimeoutError, error_json, run_sync

__all__ = ["enqueue", "execute_claimed", "run_claimed_task"]

_BACKEND_LOCK = threading.Lock()


def enqueue(plugin_id: str, task_id: str, claim: Claim, settings: Any, grace: float) -> None:
    from django_q.tasks import async_task

    async_task(
        "backstage_core.scheduler.djangoq.run_claimed_task",
        plugin_id,
        task_id,
        claim.ticket,
        claim.scheduled_at.isoformat() if claim.scheduled_at else None,
        task_name=f"{plugin_id}:{task_id}",
        group=plugin_id,
        timeout=math.ceil(settings.timeout_after.total_seconds() + grace),
    )


def _backend() -> Any:
    """This worker process's backend, started on first use (plugins register their tasks)."""
    from backstage_core.runtime import get_default_backend

    backend = get_default_backend()
    with _BACKEND_LOCK:
        if not backend.started:
            runtime.set_role("executor")
            backend.start()
    return backend


def run_claimed_task(
    plugin_id: str, task_id: str, ticket: str, scheduled_at: str | None = None
) -> str:
    """The django-q2 task: run one claimed run of ``plugin_id``'s ``task_id``."""
    from backstage_core.services.definitions import core_services

    scheduler = _backend().get_service(core_services.scheduler, plugin_id)
    due = datetime.fromisoformat(scheduled_at) if scheduled_at else None
    return scheduler.execute_claimed(task_id, ticket, due)


class TaskNotRegisteredError(CustomErrorBase):
    name = "TaskNotRegisteredError"


def execute_claimed(
    scheduler: Any, task: Any, task_id: str, ticket: str, scheduled_at: datetime | None
) -> str:
    store = scheduler.store
    if not store.still_ours(task_id, ticket):
        return f"{scheduler.plugin_id}:{task_id} skipped: the run was taken over or cancelled"
    if task is None:
        error = TaskNotRegisteredError(f"Task {task_id} is not registered in this worker")
        from backstage_core.scheduler.schedule import TaskSettings

        settings_json = (
            store.tasks.filter(id=task_id).values_list("settings_json", flat=True).first()
        )
        if settings_json:
            store.release(
                task_id,
                ticket,
                TaskSettings.from_json(settings_json),
                error_json(error, include_stack=False),
            )
        raise error
    signal = AbortSignal(scheduler.signal)
    timer = threading.Timer(
        task.settings.timeout_after.total_seconds(),
        signal.abort,
        [TaskTimeoutError("Task timed out")],
    )
    timer.daemon = True
    stop_watch = threading.Event()

    def watch() -> None:
        while not stop_watch.wait(
            min(5.0, max(0.1, task.settings.timeout_after.total_seconds() / 2))
        ):
            if not store.still_ours(task_id, ticket):
                scheduler.logger.info(
                    f'Task ticket for "{task_id}" is no longer valid; aborting execution'
                )
                signal.abort(AbortError("Task was cancelled"))
                return

    watcher = threading.Thread(target=watch, name=f"watch-{task_id}", daemon=True)
    timer.start()
    watcher.start()
    failure: BaseException | None = None
    try:
        run_sync(
            task.fn, signal, TaskRun(scheduler.plugin_id, task_id, scheduled_at, ticket, signal)
        )
    except BaseException as error:  # django-q2's timeout raises from inside the function
        failure = error
        raise
    finally:
        timer.cancel()
        stop_watch.set()
        errors = error_json(failure, include_stack=scheduler.include_stack) if failure else None
        store.release(task_id, ticket, task.settings, errors)
    return f"{scheduler.plugin_id}:{task_id} completed"
