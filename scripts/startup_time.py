#!/usr/bin/env python
"""Start-to-ready time: from spawning the server to its first 200 on readiness, median of N runs.

    .venv/bin/python scripts/startup_time.py                    # manage.py runserver, 5 runs
    .venv/bin/python scripts/startup_time.py --runs 9 --reload  # with the autoreloader
    .venv/bin/python scripts/startup_time.py -- <command...>    # any server; PORT is set for it

The server gets a free port through APP_CONFIG_backend_listen_port (and PORT); it is stopped with
SIGTERM after each run.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{port}/.backstage/health/v1/readiness", timeout=1
        ) as response:
            return response.status == 200
    except OSError:
        return False


def measure(command: list[str], timeout: float) -> float:
    port = free_port()
    env = {**os.environ, "APP_CONFIG_backend_listen_port": str(port), "PORT": str(port)}
    start = time.perf_counter()
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        while time.perf_counter() - start < timeout:
            if ready(port):
                return time.perf_counter() - start
            if process.poll() is not None:
                raise SystemExit(f"server exited with {process.returncode}: {' '.join(command)}")
            time.sleep(0.005)
        raise SystemExit(f"not ready after {timeout}s: {' '.join(command)}")
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--reload", action="store_true", help="measure runserver with its autoreloader"
    )
    parser.add_argument("--timeout", type=float, default=60)
    parser.add_argument("command", nargs="*", help="the server command (after --)")
    args = parser.parse_args()
    command = args.command or [
        sys.executable,
        "manage.py",
        "runserver",
        *([] if args.reload else ["--noreload"]),
    ]
    times = [measure(command, args.timeout) for _ in range(args.runs)]
    print(
        f"start to ready: median {statistics.median(times):.3f}s  min {min(times):.3f}s  max {max(times):.3f}s  runs {len(times)}"
    )
    print("command:", " ".join(command))


if __name__ == "__main__":
    main()
