"""``manage.py serve``: the production server, granian, with one worker process per core.

It listens where ``backend.listen`` says (an empty host means every interface, as in Backstage)
and serves collected static files (the admin's) itself. Config files given with ``--config`` reach
the workers through ``BACKSTAGE_CONFIG_FILES``. Each worker runs its own backend: it starts in the
background when the worker starts (readiness 503 until then) and its shutdown hooks run when the
worker exits (SIGTERM or SIGINT to the server stops every worker).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from backstage_core.config.loader import config_targets
from backstage_core.runtime import get_default_backend
from backstage_core.services.definitions import core_services
from backstage_core.services.discovery import read_listen


def default_workers() -> int:
    return (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    )


class Command(BaseCommand):
    help = "Runs the backend on granian, a multi-process production server."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--workers",
            type=int,
            default=default_workers(),
            help="Worker processes (default: one per core).",
        )
        parser.add_argument(
            "--threads", type=int, default=8, help="Request threads per worker (default: 8)."
        )
        parser.add_argument(
            "--host", help="Address to listen on (default: backend.listen, else every interface)."
        )
        parser.add_argument(
            "--port", type=int, help="Port to listen on (default: backend.listen, else 7007)."
        )
        parser.add_argument("--access-log", action="store_true", help="Log every request.")
        parser.add_argument(
            "--dry-run", action="store_true", help="Print the server command instead of running it."
        )

    def handle(self, **options: Any) -> None:
        config = get_default_backend().get_service(core_services.root_config)
        if options["workers"] > 1 and _in_memory(config):
            self.stderr.write(
                f"Warning: backend.database is in memory, so each of the {options['workers']} workers "
                f"has data of its own. Use files (connection.directory) or a database server."
            )
        host, port = read_listen(config)
        host = options["host"] or host or "0.0.0.0"
        port = options["port"] or port
        module, _, attribute = settings.WSGI_APPLICATION.rpartition(".")
        command = [
            sys.executable, "-m", "granian",
            "--interface", "wsgi",
            "--host", host,
            "--port", str(port),
            "--workers", str(options["workers"]),
            "--blocking-threads", str(options["threads"]),
            "--backpressure", str(options["threads"]),
            "--respawn-failed-workers",
            "--no-ws",
        ]  # fmt: skip
        if options["access_log"]:
            command.append("--access-log")
        static_root = Path(settings.STATIC_ROOT) if settings.STATIC_ROOT else None
        if static_root is not None and static_root.is_dir():
            command += [
                "--static-path-route",
                "/" + settings.STATIC_URL.strip("/"),
                "--static-path-mount",
                str(static_root),
            ]
        command.append(f"{module}:{attribute}")
        environment = dict(os.environ)
        files = [str(Path(target).resolve()) for target in config_targets(sys.argv)]
        if files:
            environment["BACKSTAGE_CONFIG_FILES"] = os.pathsep.join(files)
        if options["dry_run"]:
            self.stdout.write(" ".join(command))
            return
        sys.stdout.flush()
        os.execvpe(command[0], command, environment)


def _in_memory(config: Any) -> bool:
    database = config.get_optional_config("backend.database")
    if database is None:
        return True
    connection = database.get_optional("connection")
    client = database.get_optional_string("client") or ""
    return "sqlite" in client and (
        connection in (None, ":memory:")
        or (isinstance(connection, dict) and connection.get("filename") == ":memory:")
    )
