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
