"""An abort signal, as the one a Backstage task function receives.

    def purge(signal: AbortSignal) -> None:
        for batch in batches():
            if signal.aborted:
                return
            ...

It is set when the task runs past its timeout, when it is cancelled, and when the backend shuts down.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

__all__ = ["AbortError", "AbortSignal"]


class AbortError(Exception):
    """Raised by :meth:`AbortSignal.throw_if_aborted`."""

    name = "AbortError"


class AbortSignal:
    """Set once, never cleared; a child signal is set when its parent is."""

    def __init__(self, parent: AbortSignal | None = None) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._listeners: list[Callable[[BaseException], None]] = []
        self.reason: BaseException | None = None
        if parent is not None:
            parent.add_listener(self.abort)

    @property
    def aborted(self) -> bool:
        return self._event.is_set()

    def abort(self, reason: BaseException | None = None) -> None:
        with self._lock:
            if self._event.is_set():
                return
            self.reason = reason or AbortError("This operation was aborted")
            self._event.set()
            listeners, self._listeners = self._listeners, []
        for listener in listeners:
            listener(self.reason)

    def add_listener(self, listener: Callable[[BaseException], None]) -> None:
        """Call ``listener(reason)`` when the signal is set (at once if it is already)."""
        with self._lock:
            if not self._event.is_set():
                self._listeners.append(listener)
                return
        assert self.reason is not None
        listener(self.reason)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until set or ``timeout`` seconds pass; True when set."""
        return self._event.wait(timeout)

    async def wait_async(self, timeout: float | None = None) -> bool:
        """Like :meth:`wait`, for coroutines."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()

        def wake(_reason: BaseException) -> None:
            loop.call_soon_threadsafe(lambda: future.done() or future.set_result(None))

        self.add_listener(wake)
        try:
            await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            return False
        return True

    def throw_if_aborted(self) -> None:
        if self.aborted:
            assert self.reason is not None
            raise self.reason
