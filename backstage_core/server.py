"""The production server: ``manage.py serve`` runs granian, one worker process per core.

    python manage.py serve [--config app-config.production.yaml] [--workers N] [--threads N]

The process reads the config it needs (``backend.listen``, ``backend.database``), loads Django and
the application's code once (:func:`preload`), and forks granian's workers from itself, so a worker
starts with everything imported and shares those pages. Each worker imports the WSGI application
(``<settings package>.wsgi``), whose backend starts in the background (readiness 503 until then);
its shutdown hooks run as the worker exits (SIGTERM or SIGINT to the server stops every worker).
Config files given with ``--config`` reach the workers through ``BACKSTAGE_CONFIG_FILES``.
Collected static files (``staticfiles/``, the admin's) are served by granian itself.

SIGTERM (or SIGINT) stops the workers; one that has not stopped ``--stop-timeout`` seconds later
(30) is killed, so the server always exits (a worker that got the signal while it was still
starting would otherwise be waited for forever).

Two request threads per worker on SQLite (the work is CPU-bound Python, and more threads only take
turns on the GIL; a second one runs while the first waits on a write lock or a checkpoint), four on
PostgreSQL and MySQL, where requests wait on the network. ``--threads`` sets it.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import importlib.util
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "command_line",
    "default_workers",
    "main",
    "preload",
    "serve_options",
    "worker_signals_from_any_thread",
]

STATIC_URL = "/static"


def default_workers() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="manage.py serve",
        description="Runs the backend on granian, a multi-process production server.",
    )
    parser.add_argument(
        "--workers", type=int, default=default_workers(), help="worker processes (one per core)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        help="request threads per worker (2 on SQLite, 4 on a database server)",
    )
    parser.add_argument(
        "--backpressure",
        type=int,
        default=32,
        help="requests a worker takes on before the others wait in the socket's queue (32)",
    )
    parser.add_argument(
        "--stop-timeout",
        type=int,
        default=30,
        help="seconds a worker has to stop after SIGTERM before it is killed (30)",
    )
    parser.add_argument("--host", help="address to listen on (backend.listen, else all)")
    parser.add_argument("--port", type=int, help="port to listen on (backend.listen, else 7007)")
    parser.add_argument("--access-log", action="store_true", help="log every request")
    parser.add_argument(
        "--dry-run", action="store_true", help="print the server command instead of running it"
    )
    parser.add_argument("--config", action="append", default=[], help="app-config file")
    return parser


def _database_clients(config: Any) -> set[str]:
    database = config.get_optional_config("backend.database")
    if database is None:
        return {"better-sqlite3"}
    clients = {database.get_optional_string("client") or "better-sqlite3"}
    plugins = database.get_optional_config("plugin")
    for plugin_id in plugins.keys() if plugins is not None else []:
        client = plugins.get_optional_string(f"{plugin_id}.client")
        if client:
            clients.add(client)
    return clients


def in_memory(config: Any) -> bool:
    """Whether the plugins' databases are in-memory SQLite (each process would have its own)."""
    database = config.get_optional_config("backend.database")
    if database is None:
        return True
    connection = database.get_optional("connection")
    client = database.get_optional_string("client") or ""
    return "sqlite" in client and (
        connection in (None, ":memory:")
        or (isinstance(connection, dict) and connection.get("filename") == ":memory:")
    )


def wsgi_application(environ: dict[str, str]) -> str:
    """``settings.wsgi:application`` for ``DJANGO_SETTINGS_MODULE=settings``, and so on."""
    if environ.get("BACKSTAGE_WSGI_APPLICATION"):
        return environ["BACKSTAGE_WSGI_APPLICATION"]
    module = environ.get("DJANGO_SETTINGS_MODULE", "settings")
    package = module.removesuffix(".settings") if module.endswith(".settings") else module
    return f"{package}.wsgi:application"


def serve_options(
    argv: Sequence[str], environ: dict[str, str], project_dir: Path
) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """(granian's options, environment to set, warnings) for ``manage.py serve`` with ``argv``."""
    from backstage_core.config.loader import config_targets
    from backstage_core.services.config import load_root_config
    from backstage_core.services.discovery import read_listen

    options = _parser().parse_args(list(argv))
    files = [str(Path(target).resolve()) for target in config_targets(list(argv))]
    if not files and environ.get("BACKSTAGE_CONFIG_FILES"):
        files = environ["BACKSTAGE_CONFIG_FILES"].split(os.pathsep)
    config_argv = [arg for path in files for arg in ("--config", path)]
    config = load_root_config(argv=config_argv, environ=environ, root_dir=project_dir)
    warnings = []
    if options.workers > 1 and in_memory(config):
        warnings.append(
            f"Warning: backend.database is in memory, so each of the {options.workers} workers "
            f"has data of its own. Use files (connection.directory) or a database server."
        )
    threads = options.threads
    if threads is None:
        sqlite_only = all("sqlite" in client for client in _database_clients(config))
        threads = 2 if sqlite_only else 4
    host, port = read_listen(config)
    granian: dict[str, Any] = {
        "target": wsgi_application(environ),
        "address": options.host or host or "0.0.0.0",
        "port": options.port or port,
        "interface": "wsgi",
        "workers": options.workers,
        "blocking_threads": threads,
        "backpressure": max(options.backpressure, threads),
        "respawn_failed_workers": True,
        "workers_kill_timeout": options.stop_timeout,
        "websockets": False,
        "log_access": options.access_log,
    }
    static_root = project_dir / "staticfiles"
    if static_root.is_dir():
        granian["static_path_route"] = [STATIC_URL]
        granian["static_path_mount"] = [static_root]
    env = {"BACKSTAGE_CONFIG_FILES": os.pathsep.join(files)} if files else {}
    return granian, env, warnings


def command_line(options: dict[str, Any]) -> list[str]:
    """The ``granian`` command line equivalent to ``options`` (what ``--dry-run`` prints)."""
    command = [sys.executable, "-m", "granian"]
    flags = {
        "interface": "--interface",
        "address": "--host",
        "port": "--port",
        "workers": "--workers",
        "blocking_threads": "--blocking-threads",
        "backpressure": "--backpressure",
        "workers_kill_timeout": "--workers-kill-timeout",
    }
    for key, flag in flags.items():
        command += [flag, str(options[key])]
    command += ["--respawn-failed-workers", "--no-ws"]
    if options["log_access"]:
        command.append("--access-log")
    for route, mount in zip(
        options.get("static_path_route", []), options.get("static_path_mount", []), strict=True
    ):
        command += ["--static-path-route", route, "--static-path-mount", str(mount)]
    return [*command, options["target"]]


def preload() -> None:
    """Load Django and the application's code in the server process, before it forks its workers.

    A worker then starts with all of it imported (it only starts its backend), and the workers
    share those memory pages with this process until they write to them. Nothing here opens a
    connection or starts a thread: both would be unsafe across a fork. The backend itself starts
    in each worker.

    Django's per-request connection housekeeping is swapped for one over the connections each
    thread has opened (:mod:`backstage_core.db.housekeeping`: about 20 µs less a request).

    The garbage collector is off while it loads (imports make many objects and few cycles; the
    passes the collector would make over the growing heap are a sixth of the start time), and
    what was loaded is frozen: the collector leaves it alone from then on. It is frozen without a
    collection first: a full pass over the hundred thousand objects of a loaded backend takes
    45-50 ms of the start and finds about a thousand unreachable ones (imports' cycles), which
    stay in memory, shared by the workers.
    """
    gc.disable()
    import django
    from django.apps import apps

    django.setup(set_prefix=False)
    from backstage_core.runtime import default_service_factories

    default_service_factories()  # imports every core service's module
    from backstage_core.services.database import migration_graph

    migration_graph()  # imports every app's migrations; each start checks its databases against it
    for app in apps.get_app_configs():
        for submodule in ("plugin", "urls"):
            name = f"{app.name}.{submodule}"
            if importlib.util.find_spec(name) is not None:
                importlib.import_module(name)
    from django.conf import settings
    from django.utils.module_loading import import_string

    for middleware in settings.MIDDLEWARE:  # what each worker's handler loads
        import_string(middleware)
    importlib.import_module(settings.ROOT_URLCONF)  # what a worker's first request resolves with
    from backstage_core.db import housekeeping

    housekeeping.install()
    gc.freeze()  # what is loaded now stays: the collector will not touch (and copy) its pages
    gc.enable()


def worker_signals_from_any_thread() -> None:
    """Have each granian worker stop on SIGINT or SIGTERM whichever of its threads the signal
    lands on, and on the first one only.

    A granian (2.8) worker stops when its main thread runs the Python handler of the signal,
    which then waits on an event. A signal the kernel hands to another of its threads (a
    tokio or request thread) runs only the C-level handler there: the main thread is not woken,
    the handler never runs, and the worker stays up until it is killed 30 s later, without
    running its shutdown hooks. With a terminal's Ctrl-C (SIGINT to every process of the
    group, then SIGTERM from the server process to each worker) that was 1 to 4 in 10 stops. Its
    handler also blocks on a second signal (``WorkerSignal.set()`` has room for one).

    Each worker's signals go to a pipe instead (``signal.set_wakeup_fd``: written by the C-level
    handler, on whichever thread it runs), read by a thread of its own that passes the first
    SIGINT or SIGTERM on to granian; later ones are ignored, as Backstage ignores a second signal
    within its shutdown.
    """
    try:
        from granian import _signals
    except ImportError:  # pragma: no cover - another granian: its own handling stands
        return
    install = getattr(_signals, "set_sync_signals", None)
    if install is None or getattr(install, "backstage", False):
        return
    stopping = (signal.SIGINT, signal.SIGTERM)

    def set_sync_signals() -> Any:
        shutdown = install()  # granian's event (and handlers, replaced below)
        readable, writable = os.pipe()
        os.set_blocking(writable, False)
        for signum in stopping:
            signal.signal(signum, lambda signum, frame: None)  # the pipe says it
        signal.set_wakeup_fd(writable, warn_on_full_buffer=False)

        def watch() -> None:
            while data := os.read(readable, 64):  # the numbers of the signals received
                if any(number in stopping for number in data):
                    shutdown.set()
                    return

        threading.Thread(target=watch, name="backstage-signals", daemon=True).start()
        return shutdown

    set_sync_signals.backstage = True  # type: ignore[attr-defined]
    _signals.set_sync_signals = set_sync_signals


def main(argv: Sequence[str], project_dir: Path | None = None) -> None:
    """Serve the backend on granian until it is stopped (SIGTERM or SIGINT)."""
    project_dir = project_dir or Path.cwd()
    options, env, warnings = serve_options(argv, dict(os.environ), project_dir)
    for warning in warnings:
        sys.stderr.write(f"{warning}\n")
    if "--dry-run" in argv:
        sys.stdout.write(" ".join(command_line(options)) + "\n")
        return
    os.environ.update(env)
    if str(project_dir) not in sys.path:
        sys.path.insert(0, str(project_dir))
    preload()
    worker_signals_from_any_thread()  # the workers fork from this process, patched
    from granian import Granian

    Granian(**options).serve()
