"""``manage.py runserver``: Django's development server running the backend.

Without an address it listens where ``backend.listen`` says (port 7007; an empty host means
127.0.0.1 for this development server). The server answers as soon as it is bound (readiness 503)
while the plugins start; SIGTERM or Ctrl-C runs the shutdown hooks and exits 0, or 1 if one failed.
With the autoreloader, the watching process passes signals on to the serving one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import Any

from django.contrib.staticfiles.management.commands.runserver import Command as StaticRunserver
from django.core.servers.basehttp import WSGIServer
from django.utils import autoreload

from backstage_core.http.wsgi import BackendWSGIHandler, start_in_background
from backstage_core.process import install_signal_handlers
from backstage_core.runtime import get_default_backend
from backstage_core.services.definitions import core_services
from backstage_core.services.discovery import read_listen


class _Server(WSGIServer):
    """The development server, remembered so shutdown can stop it."""

    instance: _Server | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        type(self).instance = self


def _stop_server() -> None:
    if _Server.instance is not None:
        _Server.instance.shutdown()


def _run_child_forwarding_signals() -> int:
    """The autoreloader's watching process: restart the server on code changes, pass signals on."""
    environ = {**os.environ, autoreload.DJANGO_AUTORELOAD_ENV: "true"}
    arguments = autoreload.get_child_arguments()
    while True:
        child = subprocess.Popen(arguments, env=environ, close_fds=False)

        def forward(signum: int, frame: Any, child: subprocess.Popen[bytes] = child) -> None:
            child.send_signal(signum)

        signal.signal(signal.SIGTERM, forward)
        signal.signal(signal.SIGINT, forward)
        code = child.wait()
        if code != 3:
            return code


class Command(StaticRunserver):
    help = "Starts the backend on Django's development server (and serves static files)."
    server_cls = _Server

    def handle(self, *args: Any, **options: Any) -> None:
        self.backend = get_default_backend()
        if not options.get("addrport"):
            config = self.backend.get_service(core_services.root_config)
            host, port = read_listen(config)
            host = host if host not in ("", "0.0.0.0", "::") else "127.0.0.1"
            options["addrport"] = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        super().handle(*args, **options)

    def run(self, **options: Any) -> None:
        if options["use_reloader"] and os.environ.get(autoreload.DJANGO_AUTORELOAD_ENV) != "true":
            sys.exit(_run_child_forwarding_signals())
        if options["use_reloader"]:
            # The reloader's main thread takes signals; hook in once it runs (after Django's handler).
            autoreload.autoreload_started.connect(self._install_signal_handlers, weak=False)
            autoreload.run_with_reloader(self.inner_run, **options)
        else:
            self._install_signal_handlers()
            self.inner_run(None, **options)

    def _install_signal_handlers(self, **kwargs: Any) -> None:
        install_signal_handlers(self.backend, before_exit=_stop_server)

    def check_migrations(self) -> None:
        """Plugins' migrations are applied when the backend starts; nothing to warn about here."""

    def get_handler(self, *args: Any, **options: Any) -> Any:
        handler = BackendWSGIHandler(self.backend)
        if options["use_static_handler"] and (self._debug() or options["insecure_serving"]):
            from django.contrib.staticfiles.handlers import StaticFilesHandler

            return StaticFilesHandler(handler)
        return handler

    @staticmethod
    def _debug() -> bool:
        from django.conf import settings

        return settings.DEBUG

    def on_bind(self, server_port: int) -> None:
        super().on_bind(server_port)
        start_in_background(self.backend)
