"""Task workers: the loop that waits for a task to be due, runs it, and waits again.

A global task's worker claims each run in the plugin's database, so one instance runs it; a local
task's worker runs it in this instance, with no database. Both run on the backend's event loop; a
plain function runs in a worker thread, a coroutine function on the loop.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from backstage_core.errors import ConflictError, serialize_error
from backstage_core.scheduler.schedule import TaskSettings
from backstage_core.scheduler.signals import AbortError, AbortSignal
from backstage_core.scheduler.store import Claim, TaskStore, iso

__all__ = ["GlobalTaskWorker", "LocalTaskWorker", "TaskRun", "current_run", "db_call"]

WORK_CHECK_FREQUENCY = timedelta(seconds=5)
MIN_POLL_INTERVAL = timedelta(milliseconds=100)


@dataclass(frozen=True)
class TaskRun:
    """The run a task function is executing (see :func:`current_run`)."""

    plugin_id: str
    task_id: str
    scheduled_at: datetime | None
    ticket: str | None
    signal: AbortSignal


_CURRENT_RUN: contextvars.ContextVar[TaskRun | None] = contextvars.ContextVar(
    "backstage_task_run", default=None
)


async def db_call(fn: Callable[..., Any], *args: Any) -> Any:
    """Run a database call in a worker thread, giving the thread's connections back after (a
    worker thread has no request to end and would otherwise keep them)."""
    from backstage_core.wiring.backend import call_maybe_async

    return await call_maybe_async(fn, *args)


def current_run() -> TaskRun | None:
    """The run the calling task function is part of (its due time, its ticket), or None."""
    return _CURRENT_RUN.get()


class TaskTimeoutError(AbortError):
    name = "TaskTimeoutError"


def error_json(error: BaseException, *, include_stack: bool) -> str:
    return json.dumps(serialize_error(error, include_stack=include_stack), separators=(",", ":"))


async def execute(fn: Callable[..., Any], signal: AbortSignal, run: TaskRun) -> None:
    """Call ``fn(signal)`` (or ``fn()``) with ``run`` as the current run."""
    import inspect

    takes_signal = _takes_an_argument(fn)
    args = (signal,) if takes_signal else ()
    token = _CURRENT_RUN.set(run)
    try:
        if inspect.iscoroutinefunction(fn):
            await fn(*args)
        else:
            from backstage_core.wiring.backend import call_maybe_async

            await call_maybe_async(fn, *args)
    finally:
        _CURRENT_RUN.reset(token)


def _takes_an_argument(fn: Callable[..., Any]) -> bool:
    import inspect

    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(
        p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL) for p in parameters
    )


def run_sync(fn: Callable[..., Any], signal: AbortSignal, run: TaskRun) -> None:
    """Call a task function from synchronous code (a django-q2 worker)."""
    import inspect

    args = (signal,) if _takes_an_argument(fn) else ()
    token = _CURRENT_RUN.set(run)
    try:
        result = fn(*args)
        if inspect.isawaitable(result):
            asyncio.run(_await(result))
    finally:
        _CURRENT_RUN.reset(token)


async def _await(awaitable: Any) -> Any:
    return await awaitable


class _WorkerBase:
    def __init__(
        self,
        plugin_id: str,
        task_id: str,
        fn: Callable[..., Any],
        settings: TaskSettings,
        logger: Any,
        signal: AbortSignal,
    ) -> None:
        self.plugin_id = plugin_id
        self.task_id = task_id
        self.fn = fn
        self.settings = settings
        self.logger = logger
        self.signal = signal
        self.state = "idle"
        self._run_signal: AbortSignal | None = None
        self._wake = asyncio.Event()

    @property
    def running(self) -> bool:
        return self._run_signal is not None

    def wake(self) -> None:
        """Stop waiting and look for work now (call on the worker's loop)."""
        self._wake.set()

    async def _sleep(self, seconds: float) -> None:
        """Sleep, waking early when the worker stops or is woken (a wake before the sleep counts)."""
        stop = asyncio.ensure_future(self.signal.wait_async())
        wake = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait(
                {stop, wake}, timeout=max(0.0, seconds), return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for future in (stop, wake):
                future.cancel()
            self._wake.clear()

    async def loop(self) -> None:
        attempt = 1
        while not self.signal.aborted:
            try:
                delay = self.settings.initial_delay_after
                if delay is not None:
                    self.state = "initial-wait"
                    await self._sleep(delay.total_seconds())
                self.state = "idle"
                await self._work()
                self.logger.info(f"Task worker finished: {self.task_id}")
                return
            except Exception as error:
                if self.signal.aborted:
                    return
                attempt += 1
                self.logger.warn(
                    f"Task worker failed unexpectedly, attempt number {attempt}, {error}"
                )
                await self._sleep(1)

    async def _work(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def cancel(self) -> None:
        if self._run_signal is None:
            raise ConflictError(f"Task {self.task_id} is not running")
        self._run_signal.abort(AbortError("Task was cancelled"))


class GlobalTaskWorker(_WorkerBase):
    """Runs a task at most once per due time across every instance sharing the plugin's database."""

    def __init__(
        self, *args: Any, store: TaskStore, run_claimed: Callable[[Claim], Any], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.store = store
        self.run_claimed = run_claimed
        if self.settings.kind == "duration":
            cadence = self.settings.interval
        elif self.settings.kind == "cron":  # a cron that fires every second is checked as often
            first = self.settings.next_cron_time()
            cadence = self.settings.next_cron_time(first) - first
        else:
            cadence = WORK_CHECK_FREQUENCY
        self.poll_interval = max(
            min(cadence, WORK_CHECK_FREQUENCY), MIN_POLL_INTERVAL
        ).total_seconds()

    async def _work(self) -> None:
        while not self.signal.aborted:
            ready = await db_call(self.store.is_ready, self.task_id)
            if ready is None:
                self.logger.info(
                    f'No longer able to find task "{self.task_id}"; aborting and assuming that it has '
                    f"been unregistered or expired"
                )
                return
            if ready:
                claim = await db_call(self.store.claim, self.task_id, self.settings.timeout_after)
                if claim is not None:
                    await self.run_claimed(claim)
                    continue
            await self._sleep(self.poll_interval)

    async def run_here(self, claim: Claim, *, include_stack: bool) -> None:
        """Run a claimed run in this process, then release it."""
        run_signal = AbortSignal(self.signal)
        self._run_signal = run_signal
        self.state = "running"
        loop = asyncio.get_running_loop()
        timer = loop.call_later(
            self.settings.timeout_after.total_seconds(),
            run_signal.abort,
            TaskTimeoutError("Task timed out"),
        )
        watch = asyncio.ensure_future(self._watch_ticket(claim.ticket, run_signal))
        run = TaskRun(self.plugin_id, self.task_id, claim.scheduled_at, claim.ticket, run_signal)
        failure: BaseException | None = None
        try:
            await execute(self.fn, run_signal, run)
        except Exception as error:
            failure = error
            self.logger.error(f"Task {self.task_id} failed, {error}", error)
        finally:
            timer.cancel()
            watch.cancel()
            self._run_signal = None
            self.state = "idle"
        errors = error_json(failure, include_stack=include_stack) if failure else None
        await db_call(self.store.release, self.task_id, claim.ticket, self.settings, errors)

    async def _watch_ticket(self, ticket: str, run_signal: AbortSignal) -> None:
        """Abort the run if its claim is taken away (cancelled elsewhere, or expired by a janitor)."""
        check_every = min(
            WORK_CHECK_FREQUENCY, max(MIN_POLL_INTERVAL, self.settings.timeout_after / 2)
        ).total_seconds()
        while not run_signal.aborted:
            await asyncio.sleep(check_every)
            try:
                ours = await db_call(self.store.still_ours, self.task_id, ticket)
            except Exception as error:
                self.logger.warn(f'Failed to check liveness for task "{self.task_id}", {error}')
                continue
            if not ours:
                self.logger.info(
                    f'Task ticket for "{self.task_id}" is no longer valid; aborting execution'
                )
                run_signal.abort(AbortError("Task was cancelled"))
                return


class LocalTaskWorker(_WorkerBase):
    """Runs a task in this instance on its own schedule; a manual one only when triggered."""

    def __init__(self, *args: Any, include_stack: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.include_stack = include_stack
        self.starts_at: datetime | None = None
        self.last_run_ended_at: datetime | None = None
        self.last_run_error: str | None = None
        self.started_at: datetime | None = None
        self._triggered = False

    def trigger(self) -> None:
        """Mark the task to run now; the caller wakes the worker on its loop (``wake``)."""
        if self.running:
            raise ConflictError(f"Task {self.task_id} is currently running")
        self._triggered = True

    def task_state(self) -> dict[str, Any]:
        if self.running:
            assert self.started_at is not None
            state = {
                "status": "running",
                "startedAt": iso(self.started_at),
                "timesOutAt": iso(self.started_at + self.settings.timeout_after),
            }
        else:
            state = {"status": "idle", "startsAt": iso(self.starts_at)}
        state.update(
            {"lastRunEndedAt": iso(self.last_run_ended_at), "lastRunError": self.last_run_error}
        )
        return {k: v for k, v in state.items() if v is not None}

    def _until_next(self, last_start: float) -> float | None:
        if self.settings.kind == "manual":
            return None
        if self.settings.kind == "cron":
            return (self.settings.next_cron_time() - datetime.now(UTC)).total_seconds()
        return self.settings.interval.total_seconds() - (time.monotonic() - last_start)

    async def _work(self) -> None:
        first = True
        while not self.signal.aborted:
            if not first or self.settings.kind == "manual":
                wait = self._until_next(self._last_start)
                self.starts_at = (
                    datetime.now(UTC) + timedelta(seconds=max(0.0, wait))
                    if wait is not None
                    else None
                )
                self.state = "idle"
                if not self._triggered:
                    await self._sleep(wait if wait is not None else 365 * 86400.0)
                if self.signal.aborted:
                    return
                if wait is None and not self._triggered:
                    continue  # a manual task runs only when triggered
            first = False
            self._triggered = False
            await self._run_once()

    _last_start = 0.0

    async def _run_once(self) -> None:
        self._last_start = time.monotonic()
        run_signal = AbortSignal(self.signal)
        self._run_signal = run_signal
        self.started_at = datetime.now(UTC)
        self.state = "running"
        loop = asyncio.get_running_loop()
        timer = loop.call_later(
            self.settings.timeout_after.total_seconds(),
            run_signal.abort,
            TaskTimeoutError("Task timed out"),
        )
        try:
            await execute(
                self.fn,
                run_signal,
                TaskRun(self.plugin_id, self.task_id, self.started_at, None, run_signal),
            )
            self.last_run_error = None
        except Exception as error:
            self.last_run_error = error_json(error, include_stack=self.include_stack)
        finally:
            timer.cancel()
            self._run_signal = None
            self.last_run_ended_at = datetime.now(UTC)
