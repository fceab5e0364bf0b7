"""Process signals, as Backstage handles them: SIGTERM or SIGINT stops the backend, then the process.

Readiness turns 503, the shutdown hooks run (plugins', then root ones), and the process exits with
status 0, or 1 if a hook failed. A repeated signal during shutdown is ignored for a second (a
terminal sends Ctrl-C to every process of the group); after that it ends the process at once.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["install_signal_handlers", "stop_and_exit", "stop_at_exit"]

log = logging.getLogger("backstage.backend")
REPEAT_GRACE_SECONDS = 1.0


def stop_and_exit(backend: Any, before_exit: Callable[[], None] | None = None) -> None:
    """Stop the backend, then end the process: status 0, or 1 if a hook failed."""
    code = 1
    try:
        result = backend.stop()
        code = 0 if result.ok else 1
    except BaseException as error:  # the process ends either way; say why
        log.error("Backend failed to stop: %s", error, exc_info=error)
    finally:
        if before_exit is not None:
            try:
                before_exit()
            except Exception as error:
                log.error("Stopping the server failed: %s", error, exc_info=error)
        for handler in logging.getLogger().handlers:
            handler.flush()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def install_signal_handlers(backend: Any, before_exit: Callable[[], None] | None = None) -> bool:
    """Handle SIGTERM and SIGINT by stopping ``backend``; only possible from the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return False
    first_signal_at: list[float] = []

    def on_signal(signum: int, frame: Any) -> None:
        now = time.monotonic()
        if first_signal_at:
            if now - first_signal_at[0] > REPEAT_GRACE_SECONDS:
                os._exit(0)
            return
        first_signal_at.append(now)
        log.info(f"Received {signal.Signals(signum).name}, shutting down")
        threading.Thread(
            target=stop_and_exit, args=(backend, before_exit), name="backstage-shutdown"
        ).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return True


def stop_at_exit(backend: Any) -> None:
    """Run the backend's shutdown hooks when this process exits, however the server ends it.

    A worker that a server started with ``multiprocessing`` (granian) ends without running
    ``atexit`` callbacks, but with ``multiprocessing``'s finalizers; one that forked (gunicorn)
    runs ``atexit``. Both are registered; stopping twice is harmless.
    """
    import atexit
    import multiprocessing.util

    def stop() -> None:
        try:
            result = backend.stop()
            if not result.ok:
                log.error(
                    "Backend stopped with %d failed shutdown hooks", len(result.hook_failures)
                )
        except Exception as error:
            log.error("Backend failed to stop: %s", error, exc_info=error)
        for handler in logging.getLogger().handlers:
            handler.flush()

    multiprocessing.util.Finalize(None, stop, exitpriority=100)
    atexit.register(stop)
