"""The scheduler across real processes sharing a database: once per due time, lost runs, shutdown.

Backends are ``manage.py runserver`` processes of the test project, whose 'ticker' plugin records
every run of its tasks in a file (see tests/plugins/ticker).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from backstage_core.testing.engines import drop_databases, new_prefix, require_service
from tests.helpers import ROOT, free_port, wait_for, write_config

TICK = {"frequency": {"seconds": 1}, "timeout": {"seconds": 5}}


@pytest.fixture(params=["sqlite-file", "postgres"])
def shared_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A ``backend.database`` section that several processes share."""
    if request.param == "sqlite-file":
        yield {"client": "better-sqlite3", "connection": {"directory": str(tmp_path / "db")}}
        return
    url = require_service("postgres", pytest.skip, pytest.fail)
    prefix = new_prefix()
    yield {"client": "pg", "connection": url, "prefix": prefix, "pool": {"max": 4}}
    drop_databases("postgres", url, prefix)


def config_file(
    tmp_path: Path, database: dict[str, Any], tasks: dict[str, Any], **scheduler: Any
) -> Path:
    return write_config(
        tmp_path,
        {
            "backend": {
                "baseUrl": "http://localhost:7007",
                "database": database,
                "scheduler": {"janitorInterval": "300ms", **scheduler},
            },
            "ticker": {"file": str(tmp_path / "ticks.jsonl"), "tasks": tasks},
            "hooks": {"file": str(tmp_path / "hooks.log")},
        },
    )


@contextlib.contextmanager
def backends(config: Path, count: int, *extra: list[str]) -> Iterator[list[subprocess.Popen[str]]]:
    """``count`` runserver processes (and any ``extra`` manage.py commands) on one config."""
    processes = []
    try:
        for _ in range(count):
            port = free_port()
            env = {
                **os.environ,
                "DJANGO_SETTINGS_MODULE": "tests.project.settings",
                "DJANGO_ENV": "development",
                "APP_CONFIG_backend_listen_port": str(port),
            }
            process = subprocess.Popen(
                [sys.executable, "manage.py", "runserver", "--noreload", "--config", str(config)],
                cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
            )  # fmt: skip
            process.port = port  # type: ignore[attr-defined]
            processes.append(process)
            wait_for(
                f"http://127.0.0.1:{port}/.backstage/health/v1/readiness",
                process=process,
                timeout=30,
            )
        for command in extra:
            env = {
                **os.environ,
                "DJANGO_SETTINGS_MODULE": "tests.project.settings",
                "DJANGO_ENV": "development",
            }
            processes.append(
                subprocess.Popen(
                    [sys.executable, "manage.py", *command, "--config", str(config)],
                    cwd=ROOT,
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                    start_new_session=True,
                )  # fmt: skip
            )
        yield processes
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            if process.stdout:
                process.stdout.close()


def stop(processes: list[subprocess.Popen[str]]) -> list[int]:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    return [process.wait(timeout=30) for process in processes]


def runs(path: Path, task: str) -> list[dict[str, Any]]:
    """Completed runs of ``task``: start and end events joined."""
    events = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    ends = [e for e in events if e["task"] == task and e["event"] == "end"]
    return sorted(ends, key=lambda e: e["started"])


def starts(path: Path, task: str) -> list[dict[str, Any]]:
    events = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    return [e for e in events if e["task"] == task and e["event"] == "start"]


def assert_once_per_due_time(done: list[dict[str, Any]], seconds: float, window: float) -> None:
    """Each due time of a one-second task ran once, one run at a time, over a test that slept
    ``seconds`` with the processes up for ``window`` seconds in all (their starts included: the
    first one schedules while the others start, which takes seconds on a slow machine)."""
    scheduled = [r["scheduled"] for r in done]
    assert len(scheduled) == len(set(scheduled)), "a due time ran twice"
    for earlier, later in zip(done, done[1:], strict=False):
        assert later["started"] >= earlier["at"], "two runs at once"
    due = sorted(datetime.fromisoformat(s) for s in scheduled)
    assert all((b - a).total_seconds() >= 0.9 for a, b in zip(due, due[1:], strict=False))
    assert seconds - 3 <= len(done) <= window + 2


def test_three_processes_run_a_global_task_once_per_due_time_and_a_local_task_each(
    tmp_path: Path, shared_database: dict[str, Any]
) -> None:
    config = config_file(
        tmp_path, shared_database, {"tick": TICK, "local-tick": {**TICK, "scope": "local"}}
    )
    ticks = tmp_path / "ticks.jsonl"
    began = time.monotonic()
    with backends(config, 3) as processes:
        time.sleep(10)
        assert stop(processes) == [0, 0, 0]
    window = time.monotonic() - began
    done = runs(ticks, "tick")
    assert_once_per_due_time(done, 10, window)
    local = runs(ticks, "local-tick")
    assert {r["pid"] for r in local} == {p.pid for p in processes}  # each process ran its own
    assert all(sum(r["pid"] == p.pid for r in local) >= 7 for p in processes)


def test_a_run_lost_with_a_killed_process_is_freed_after_its_timeout_and_runs_elsewhere(
    tmp_path: Path, shared_database: dict[str, Any]
) -> None:
    config = config_file(
        tmp_path,
        shared_database,
        {
            "hang": {
                "frequency": {"seconds": 1},
                "timeout": {"seconds": 2},
                "behaviour": "hang-once",
            }
        },
    )
    ticks = tmp_path / "ticks.jsonl"
    with backends(config, 2) as processes:
        deadline = time.monotonic() + 20
        while not starts(ticks, "hang") and time.monotonic() < deadline:
            time.sleep(0.05)
        first = starts(ticks, "hang")[0]
        victim = next(p for p in processes if p.pid == first["pid"])
        survivor = next(p for p in processes if p is not victim)
        os.killpg(victim.pid, signal.SIGKILL)
        killed_at = time.time()

        deadline = time.monotonic() + 15
        while (
            not [s for s in starts(ticks, "hang") if s["pid"] == survivor.pid]
            and time.monotonic() < deadline
        ):
            time.sleep(0.05)
        assert stop([survivor]) == [0]
        output = survivor.stdout.read()

    again = [s for s in starts(ticks, "hang") if s["pid"] == survivor.pid]
    assert again, "the lost run was never run again"
    assert again[0]["at"] >= first["at"] + 2  # not before the lost run's timeout had passed
    assert again[0]["at"] - killed_at < 8
    assert "Task timed out and was lost: hang" in output


def test_sigterm_sets_the_signal_of_a_running_task_and_the_process_exits_0(
    tmp_path: Path, shared_database: dict[str, Any]
) -> None:
    config = config_file(
        tmp_path,
        shared_database,
        {
            "wait": {
                "frequency": {"seconds": 1},
                "timeout": {"seconds": 30},
                "behaviour": "wait-for-abort",
            }
        },
    )
    ticks = tmp_path / "ticks.jsonl"
    with backends(config, 1) as processes:
        deadline = time.monotonic() + 20
        while not starts(ticks, "wait") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert stop(processes) == [0]
    [run] = runs(ticks, "wait")
    assert run["aborted"] is True
    assert (run["reason"], run["message"]) == ("AbortError", "The backend is shutting down")


def test_with_django_q_the_qcluster_workers_run_the_task_once_per_due_time(tmp_path: Path) -> None:
    url = require_service("postgres", pytest.skip, pytest.fail)
    prefix = new_prefix()
    database = {"client": "pg", "connection": url, "prefix": prefix, "pool": {"max": 4}}
    config = config_file(
        tmp_path, database, {"tick": TICK}, worker="django-q", djangoQ={"workers": 2}
    )
    ticks = tmp_path / "ticks.jsonl"
    began = time.monotonic()
    try:
        with backends(config, 3, ["qcluster"]) as processes:
            web, cluster = processes[:3], processes[3]
            time.sleep(12)
            assert stop(web) == [0, 0, 0]
            assert stop([cluster]) == [0]
            workers = {
                int(p)
                for p in subprocess.run(
                    ["pgrep", "-f", "qcluster"], capture_output=True, text=True
                ).stdout.split()
            }
        done = runs(ticks, "tick")
        assert_once_per_due_time(done, 12, time.monotonic() - began)
        assert not {r["pid"] for r in done} & {p.pid for p in web}  # none ran in a web process
        assert {r["pid"] for r in done} - {cluster.pid}, "the runs were done by django-q2 workers"
        with psycopg.connect(f"{url}/{prefix}default") as connection:
            successes = connection.execute(
                "select count(*) from django_q_task where success and name = 'ticker:tick'"
            ).fetchone()[0]
        assert successes == len(done)
        assert workers is not None
    finally:
        drop_databases("postgres", url, prefix)
