"""The scheduler service: tasks that run once across every instance, or in each one.

    scheduler.schedule_task(
        id="purge-completed",
        fn=purge,                              # fn(signal) or async fn(signal)
        frequency={"hours": 1},                # or {"cron": "0 * * * *"}, {"trigger": "manual"}, a timedelta
        timeout={"minutes": 5},
        initial_delay={"seconds": 30},
        scope="global",                        # once across all instances (default), or "local": each
    )

A global task is coordinated through the plugin's own database (Backstage's
``backstage_backend_tasks__tasks``): an instance claims a due run with one conditional UPDATE, so
it runs once per due time however many instances there are; a run lost with a dead process is freed
by a janitor once its timeout has passed. ``fn`` gets an :class:`AbortSignal`, set on timeout, on
``cancel_task`` and at shutdown.

``backend.scheduler.worker`` says where global runs execute: ``embedded`` (default) in the backend
process that claims them, or ``django-q`` in ``manage.py qcluster`` workers (django-q2), apart from
the web processes. Every plugin also answers ``GET .backstage/scheduler/v1/tasks`` and
``POST .backstage/scheduler/v1/tasks/<taskId>/trigger`` and ``.../cancel``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from django.http import HttpRequest, HttpResponse
from django.urls import path

from backstage_core.config.duration import read_duration_from_config
from backstage_core.environment import is_development
from backstage_core.errors import InputError
from backstage_core.http.errors import json_response
from backstage_core.scheduler import runtime
from backstage_core.scheduler.schedule import (
    Scope,
    TaskSettings,
    read_task_schedule_from_config,
    settings_for,
)
from backstage_core.scheduler.signals import AbortError, AbortSignal
from backstage_core.scheduler.store import Claim, TaskStore
from backstage_core.scheduler.workers import GlobalTaskWorker, LocalTaskWorker, current_run, db_call
from backstage_core.services.definitions import core_services
from backstage_core.wiring.features import ServiceFactory, create_service_factory

__all__ = [
    "AbortSignal",
    "PluginScheduler",
    "current_run",
    "read_task_schedule_from_config",
    "scheduler_factory",
]

WorkerMode = Literal["embedded", "django-q"]
DEFAULT_JANITOR_INTERVAL = timedelta(minutes=1)
SHUTDOWN_GRACE_SECONDS = 5.0


@dataclass
class _Task:
    """A scheduled task: its settings, function and the worker running it."""

    id: str
    scope: Scope
    settings: TaskSettings
    fn: Callable[..., Any]
    worker: GlobalTaskWorker | LocalTaskWorker | None = None
    future: Any = None


@dataclass
class SchedulerOptions:
    """``backend.scheduler``: which worker runs tasks and how often expired runs are freed."""

    worker: WorkerMode = "embedded"
    janitor_interval: timedelta = DEFAULT_JANITOR_INTERVAL
    django_q_grace: float = 5.0
    extra: dict[str, Any] = field(default_factory=dict)


def read_scheduler_options(config: Any) -> SchedulerOptions:
    section = config.get_optional_config("backend.scheduler")
    options = SchedulerOptions()
    if section is None:
        return options
    worker = section.get_optional_string("worker") or "embedded"
    if worker not in ("embedded", "django-q"):
        raise InputError(
            f"Invalid backend.scheduler.worker '{worker}', must be 'embedded' or 'django-q'"
        )
    options.worker = worker  # type: ignore[assignment]
    if section.has("janitorInterval"):
        options.janitor_interval = read_duration_from_config(
            config, "backend.scheduler.janitorInterval"
        )
    return options


class PluginScheduler:
    """A plugin's scheduler service."""

    def __init__(
        self,
        plugin_id: str,
        store: TaskStore,
        logger: Any,
        loop: asyncio.AbstractEventLoop,
        options: SchedulerOptions,
    ) -> None:
        self.plugin_id = plugin_id
        self.store = store
        self.logger = logger
        self.loop = loop
        self.options = options
        self.signal = AbortSignal()
        self._tasks: dict[str, _Task] = {}
        self._order: list[str] = []
        self._lock = threading.Lock()
        self._janitor: Any = None
        self.include_stack = is_development()

    # -- registering ----------------------------------------------------------------------------

    def schedule_task(
        self,
        *,
        id: str,  # noqa: A002 - Backstage's name
        fn: Callable[..., Any],
        frequency: Any,
        timeout: Any,
        initial_delay: Any = None,
        scope: Scope = "global",
        signal: AbortSignal | None = None,
    ) -> None:
        """Schedule ``fn``; returns once a global task is stored. From async code, ``aschedule_task``."""
        if _in_thread_of(self.loop):
            raise RuntimeError(
                "schedule_task blocks; from async code, use `await scheduler.aschedule_task(...)`"
            )
        task = _task(id, fn, frequency, timeout, initial_delay, scope)
        if scope == "global":
            self._persist(task)
        self._register(task, signal)

    async def aschedule_task(
        self,
        *,
        id: str,  # noqa: A002 - Backstage's name
        fn: Callable[..., Any],
        frequency: Any,
        timeout: Any,
        initial_delay: Any = None,
        scope: Scope = "global",
        signal: AbortSignal | None = None,
    ) -> None:
        """:meth:`schedule_task`, for async code."""
        task = _task(id, fn, frequency, timeout, initial_delay, scope)
        if scope == "global":
            await db_call(self._persist, task)
        self._register(task, signal)

    def _persist(self, task: _Task) -> None:
        try:
            self.store.persist(task.id, task.settings)
        except Exception as error:
            raise RuntimeError(f"Failed to persist task, {error}") from error

    def _register(self, task: _Task, signal: AbortSignal | None) -> None:
        with self._lock:
            previous = self._tasks.get(task.id)
            self._tasks[task.id] = task
            if previous is None:
                self._order.append(task.id)
        if previous is not None and previous.worker is not None:
            previous.worker.signal.abort(AbortError("Task was rescheduled"))
        worker_signal = AbortSignal(self.signal)
        if signal is not None:
            signal.add_listener(worker_signal.abort)
        task.worker = self._worker_for(task, worker_signal)
        self._start(self._run(task), task)

    def _worker_for(
        self, task: _Task, signal: AbortSignal
    ) -> GlobalTaskWorker | LocalTaskWorker | None:
        logger = self.logger.child({"task": task.id})
        if task.scope == "local":
            if runtime.role() != "web":
                return None  # a local task belongs to the serving instances
            return LocalTaskWorker(
                self.plugin_id,
                task.id,
                task.fn,
                task.settings,
                logger,
                signal,
                include_stack=self.include_stack,
            )
        role = runtime.role()
        if role == "executor" or (role == "web" and self.options.worker == "django-q"):
            return None  # registered for its function; another process claims its runs
        worker = GlobalTaskWorker(
            self.plugin_id,
            task.id,
            task.fn,
            task.settings,
            logger,
            signal,
            store=self.store,
            run_claimed=lambda claim: None,
        )
        worker.run_claimed = (
            (lambda claim: self._enqueue(task, claim))
            if role == "dispatcher"
            else (lambda claim: worker.run_here(claim, include_stack=self.include_stack))
        )
        return worker

    def _start(self, coroutine: Any, task: _Task) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            task.future = self.loop.create_task(coroutine)
        else:
            task.future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    async def _run(self, task: _Task) -> None:
        if task.scope == "global":
            self._start_janitor()
        self.logger.info(f"Registered scheduled task: {task.id}, {task.settings.to_json()}")
        if task.worker is not None:
            await task.worker.loop()

    def create_scheduled_task_runner(self, schedule: Mapping[str, Any]) -> TaskRunner:
        """A runner that schedules any task with ``schedule``."""
        return TaskRunner(self, dict(schedule))

    def get_scheduled_tasks(self) -> list[dict[str, Any]]:
        """The tasks this instance registered: ``{id, scope, settings}``."""
        return [
            {"id": t, "scope": self._tasks[t].scope, "settings": self._tasks[t].settings.as_dict()}
            for t in self._order
        ]

    # -- operating ------------------------------------------------------------------------------

    def _local(self, task_id: str) -> LocalTaskWorker | None:
        task = self._tasks.get(task_id)
        return (
            task.worker if task is not None and isinstance(task.worker, LocalTaskWorker) else None
        )

    def trigger_task(self, task_id: str) -> None:
        """Run a task now (404 if it does not exist, 409 if it is running)."""
        local = self._local(task_id)
        if local is not None:
            local.trigger()
            self.loop.call_soon_threadsafe(local.wake)
            return
        self.store.trigger(task_id)
        task = self._tasks.get(task_id)
        if task is not None and isinstance(task.worker, GlobalTaskWorker):
            self.loop.call_soon_threadsafe(task.worker.wake)

    def cancel_task(self, task_id: str) -> None:
        """Abort a running task (404 if it does not exist, 409 if it is not running)."""
        local = self._local(task_id)
        if local is not None:
            local.cancel()
            return
        self.store.cancel(task_id)
        task = self._tasks.get(task_id)
        worker = task.worker if task is not None else None
        if isinstance(worker, GlobalTaskWorker) and worker.running:
            worker.cancel()

    def task_descriptions(self) -> list[dict[str, Any]]:
        """Each task with its state, as ``GET .backstage/scheduler/v1/tasks`` answers."""
        global_ids = [t for t in self._order if self._tasks[t].scope == "global"]
        states = self.store.states(global_ids) if global_ids else {}
        result = []
        for task_id in self._order:
            task = self._tasks[task_id]
            if isinstance(task.worker, LocalTaskWorker):
                task_state: Any = task.worker.task_state()
            else:
                task_state = states.get(task_id)
            result.append(
                {
                    "taskId": task_id,
                    "pluginId": self.plugin_id,
                    "scope": task.scope,
                    "settings": task.settings.as_dict(),
                    "taskState": task_state,
                    "workerState": {"status": task.worker.state}
                    if task.worker is not None
                    else None,
                }
            )
        return result

    # -- django-q2 -------------------------------------------------------------------------------

    async def _enqueue(self, task: _Task, claim: Claim) -> None:
        from backstage_core.scheduler.djangoq import enqueue

        await db_call(
            enqueue, self.plugin_id, task.id, claim, task.settings, self.options.django_q_grace
        )

    def execute_claimed(self, task_id: str, ticket: str, scheduled_at: Any = None) -> str:
        """Run a claimed run in this (django-q2 worker) process, then release it."""
        from backstage_core.scheduler.djangoq import execute_claimed

        return execute_claimed(self, self._tasks.get(task_id), task_id, ticket, scheduled_at)

    # -- janitor and shutdown --------------------------------------------------------------------

    def _start_janitor(self) -> None:
        if (
            self._janitor is not None
            or runtime.role() == "executor"
            or (runtime.role() == "web" and self.options.worker == "django-q")
        ):
            return
        self._janitor = asyncio.ensure_future(self._janitor_loop())

    async def _janitor_loop(self) -> None:
        interval = self.options.janitor_interval.total_seconds()
        while not self.signal.aborted:
            try:
                for task_id in await db_call(self.store.expire_lost_runs):
                    self.logger.warn(f"Task timed out and was lost: {task_id}")
            except Exception as error:
                self.logger.warn(f"Error while performing janitorial tasks, {error}")
            await self.signal.wait_async(interval)

    async def shutdown(self) -> None:
        """Abort every task; give running ones a moment to finish and release their runs."""
        self.signal.abort(AbortError("The backend is shutting down"))
        futures = [
            asyncio.wrap_future(t.future) if not isinstance(t.future, asyncio.Future) else t.future
            for t in self._tasks.values()
            if t.future is not None
        ]
        if self._janitor is not None:
            futures.append(self._janitor)
        if futures:
            await asyncio.wait(futures, timeout=SHUTDOWN_GRACE_SECONDS)

    # -- HTTP ------------------------------------------------------------------------------------

    def urls(self) -> list[Any]:
        def tasks(request: HttpRequest) -> HttpResponse:
            if request.method != "GET":
                return _not_found()
            return json_response({"tasks": self.task_descriptions()})

        def trigger(request: HttpRequest, task_id: str) -> HttpResponse:
            if request.method != "POST":
                return _not_found()
            self.trigger_task(task_id)
            return _empty(200)

        def cancel(request: HttpRequest, task_id: str) -> HttpResponse:
            if request.method != "POST":
                return _not_found()
            self.cancel_task(task_id)
            return _empty(200)

        return [
            path(".backstage/scheduler/v1/tasks", tasks, name="scheduler-tasks"),
            path(
                ".backstage/scheduler/v1/tasks/<str:task_id>/trigger",
                trigger,
                name="scheduler-trigger",
            ),
            path(
                ".backstage/scheduler/v1/tasks/<str:task_id>/cancel",
                cancel,
                name="scheduler-cancel",
            ),
        ]


def _empty(status: int) -> HttpResponse:
    response = HttpResponse(status=status)
    del response["Content-Type"]
    return response


def _not_found() -> HttpResponse:
    from backstage_core.http.urls import not_found

    return not_found(None)  # type: ignore[arg-type]


def _task(id: Any, fn: Any, frequency: Any, timeout: Any, initial_delay: Any, scope: Any) -> _Task:  # noqa: A002
    """A validated task: its id, scope and settings."""
    if not isinstance(id, str) or not id.strip():
        raise InputError(f"{id} is not a valid ID, expected non-empty string")
    if scope not in ("global", "local"):
        raise InputError(
            f'Only "global" or "local" are allowed for TaskScheduleDefinition.scope, but got: {scope}'
        )
    if not callable(fn):
        raise InputError(f"The function of task {id} is not callable")
    return _Task(
        id,
        scope,
        settings_for(frequency=frequency, timeout=timeout, initial_delay=initial_delay),
        fn,
    )


def _in_thread_of(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


class TaskRunner:
    """Schedules tasks on one schedule: ``runner.run(id=..., fn=...)``."""

    def __init__(self, scheduler: PluginScheduler, schedule: dict[str, Any]) -> None:
        self._scheduler = scheduler
        self._schedule = schedule

    def run(self, *, id: str, fn: Callable[..., Any], signal: AbortSignal | None = None) -> None:  # noqa: A002
        self._scheduler.schedule_task(id=id, fn=fn, signal=signal, **self._schedule)


def scheduler_factory() -> ServiceFactory:
    """The scheduler service, one per plugin, on the plugin's database."""

    async def factory(
        database: Any, logger: Any, root_lifecycle: Any, http_router: Any, plugin: Any, config: Any
    ) -> PluginScheduler:
        options = read_scheduler_options(config)
        store = TaskStore(database.alias, skip_migrations=database.migrations.skip)
        scheduler = PluginScheduler(
            plugin.get_id(), store, logger, asyncio.get_running_loop(), options
        )
        http_router.use(scheduler.urls())
        root_lifecycle.add_shutdown_hook(scheduler.shutdown)
        return scheduler

    return create_service_factory(
        service=core_services.scheduler,
        deps={
            "database": core_services.database,
            "logger": core_services.logger,
            "root_lifecycle": core_services.root_lifecycle,
            "http_router": core_services.http_router,
            "plugin": core_services.plugin_metadata,
            "config": core_services.root_config,
        },
        factory=factory,
        initialization="always",
    )
