"""One connection budget per process, across every plugin's database.

Backstage gives each plugin a pool of its own, so twenty plugins can hold hundreds of PostgreSQL
connections (backstage/backstage#30412, #19863). Here a process opens at most ``max`` server
connections in all (``backend.database.pool.max``). A connection goes back to the budget when its
request ends and is reused by the next request for the same database; when the budget is spent, the
longest-idle connection of another database is closed to make room, and a request that still finds
no room waits up to ``acquireTimeout`` and then fails (a 503).
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ConnectionBudget", "PoolSettings", "budget"]


@dataclass(frozen=True)
class PoolSettings:
    max: int = 10
    idle_timeout: float = 30.0
    acquire_timeout: float = 10.0
    check_after: float = 1.0  # an idle connection older than this is checked before reuse


class PoolTimeout(Exception):
    """No connection could be had within the acquire timeout."""


@dataclass
class _Idle:
    connection: Any
    since: float = field(default_factory=time.monotonic)


class ConnectionBudget:
    """Open connections, in use or idle, never exceed ``settings.max`` in this process."""

    def __init__(self, settings: PoolSettings) -> None:
        self.settings = settings
        self._condition = threading.Condition()
        self._open = 0
        self._in_use = 0
        self._idle: OrderedDict[int, tuple[str, _Idle]] = OrderedDict()  # oldest first
        self.peak_open = 0

    @property
    def open(self) -> int:
        return self._open

    def configure(self, settings: PoolSettings) -> None:
        with self._condition:
            self.settings = settings
            self._condition.notify_all()

    def acquire(
        self,
        key: str,
        connect: Callable[[], Any],
        usable: Callable[[Any], bool],
        close: Callable[[Any], None],
    ) -> Any:
        """A connection for database ``key``: an idle one, a new one, or one made room for."""
        deadline = time.monotonic() + self.settings.acquire_timeout
        while True:
            to_close: list[Any] = []
            reuse: _Idle | None = None
            with self._condition:
                to_close += self._expire_idle()
                for slot, (idle_key, idle) in reversed(self._idle.items()):
                    if idle_key == key:
                        del self._idle[slot]
                        reuse = idle
                        self._in_use += 1
                        break
                else:
                    if self._open >= self.settings.max and self._idle:
                        _slot, (_key, victim) = self._idle.popitem(last=False)
                        to_close.append(victim.connection)
                        self._open -= 1
                    if self._open < self.settings.max:
                        self._open += 1
                        self._in_use += 1
                        self.peak_open = max(self.peak_open, self._open)
                    else:
                        remaining = deadline - time.monotonic()
                        if remaining <= 0:
                            raise PoolTimeout(
                                f"no database connection free within {self.settings.acquire_timeout:g}s "
                                f"({self._open} open, the most this process may hold)"
                            )
                        self._condition.wait(remaining)
                        continue
            for connection in to_close:
                _quietly(close, connection)
            if reuse is not None:
                if time.monotonic() - reuse.since < self.settings.check_after or usable(
                    reuse.connection
                ):
                    return reuse.connection
                _quietly(close, reuse.connection)  # its slot goes to the replacement
                return self._connect(connect)
            return self._connect(connect)

    def _connect(self, connect: Callable[[], Any]) -> Any:
        try:
            return connect()
        except BaseException:
            self._give_back_slot()
            raise

    def _give_back_slot(self) -> None:
        with self._condition:
            self._open -= 1
            self._in_use -= 1
            self._condition.notify()

    def release(
        self, key: str, connection: Any, reusable: bool, close: Callable[[Any], None]
    ) -> None:
        """Give a connection back: kept idle for its database if ``reusable``, else closed."""
        with self._condition:
            self._in_use -= 1
            if reusable:
                self._idle[id(connection)] = (key, _Idle(connection))
                to_close = self._expire_idle()
            else:
                self._open -= 1
                to_close = []
            self._condition.notify()
        if not reusable:
            _quietly(close, connection)
        for idle in to_close:
            _quietly(close, idle)

    def _expire_idle(self) -> list[Any]:
        """Drop idle connections past the idle timeout (call with the lock held)."""
        expired = []
        cutoff = time.monotonic() - self.settings.idle_timeout
        while self._idle:
            slot, (_key, idle) = next(iter(self._idle.items()))
            if idle.since > cutoff:
                break
            del self._idle[slot]
            self._open -= 1
            expired.append(idle.connection)
        if expired:
            self._condition.notify_all()
        return expired

    def close_idle(self, close: Callable[[Any], None]) -> int:
        """Close every idle connection (at shutdown); returns how many."""
        with self._condition:
            idle = [entry.connection for _key, entry in self._idle.values()]
            self._open -= len(idle)
            self._idle.clear()
            self._condition.notify_all()
        for connection in idle:
            _quietly(close, connection)
        return len(idle)


def _quietly(close: Callable[[Any], None], connection: Any) -> None:
    try:
        close(connection)
    except Exception:  # a dead connection may fail to close; it is gone either way
        pass


_BUDGET: ConnectionBudget | None = None
_LOCK = threading.Lock()


def _forget_after_fork() -> None:
    """A forked child shares no connections with its parent: it starts with an empty budget."""
    global _BUDGET
    _BUDGET = None


os.register_at_fork(after_in_child=_forget_after_fork)


def budget(settings: PoolSettings | None = None) -> ConnectionBudget:
    """The process's connection budget (created on first use; ``settings`` update it)."""
    global _BUDGET
    with _LOCK:
        if _BUDGET is None:
            _BUDGET = ConnectionBudget(settings or PoolSettings())
        elif settings is not None and settings != _BUDGET.settings:
            _BUDGET.configure(settings)
        return _BUDGET
