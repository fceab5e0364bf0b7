"""Helpers for tests that run the backend in a real process."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_config(directory: Path, data: dict[str, Any], name: str = "app-config.yaml") -> Path:
    path = directory / name
    path.write_text(yaml.safe_dump(data))
    return path


def server_config(directory: Path, port: int, **sections: Any) -> Path:
    """Config for a backend process on ``port``: SQLite files in ``directory/db``, shutdown hooks
    logged to ``directory/hooks.log``, and any other top-level ``sections``."""
    return write_config(
        directory,
        {
            "backend": {
                "baseUrl": f"http://localhost:{port}",
                "listen": {"port": port},
                "database": {
                    "client": "better-sqlite3",
                    "connection": {"directory": str(directory / "db")},
                },
            },
            "hooks": {"file": str(directory / "hooks.log")},
            **sections,
        },
    )


def wait_for(
    url: str, status: int = 200, timeout: float = 20, process: subprocess.Popen[Any] | None = None
) -> httpx.Response:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(
                f"server exited with {process.returncode}: {process.stdout.read() if process.stdout else ''}"
            )
        try:
            last = httpx.get(url, timeout=2)
            if last.status_code == status:
                return last
        except httpx.TransportError as error:
            last = error
        time.sleep(0.02)
    raise AssertionError(f"{url} did not answer {status} in {timeout}s: {last}")


@contextlib.contextmanager
def running(
    args: list[str], settings: str = "tests.project.settings", env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[str]]:
    """A ``manage.py`` process (stdout and stderr merged); killed at the end if still running."""
    process = subprocess.Popen(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": settings,
            "DJANGO_ENV": "development",
            **(env or {}),
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, 9)
            process.wait()
        if process.stdout:
            process.stdout.close()


class TcpProxy:
    """A TCP relay to a service, to take it away and bring it back (``stop()``/``start()``)."""

    def __init__(self, target: tuple[str, int]) -> None:
        import threading

        self.target = target
        self.port = free_port()
        self._threading = threading
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> TcpProxy:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        self._threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets |= {client, upstream}
            for source, sink in ((client, upstream), (upstream, client)):
                self._threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def stop(self) -> None:
        """Refuse new connections and cut every open one, as a service that went down."""
        if self._listener is not None:
            # shutdown() wakes the thread blocked in accept(); close() alone would leave it listening.
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
