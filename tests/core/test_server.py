"""``manage.py serve``: the granian options it derives from config, and its launcher."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from backstage_core.server import command_line, serve_options, wsgi_application
from tests.helpers import ROOT, free_port, running, server_config, wait_for, write_config


def options(tmp_path: Path, data: dict[str, Any], *argv: str, **environ: str) -> Any:
    config = write_config(tmp_path, data)
    return serve_options(["--config", str(config), *argv], dict(environ), tmp_path)


SQLITE = {"backend": {"database": {"client": "better-sqlite3", "connection": {"directory": "db"}}}}
PG = {"backend": {"database": {"client": "pg", "connection": "postgresql://x@127.0.0.1/x"}}}


def test_two_request_threads_per_worker_on_sqlite_four_on_a_database_server(
    tmp_path: Path,
) -> None:
    granian, env, warnings = options(tmp_path, SQLITE, "--workers", "3")
    assert (granian["workers"], granian["blocking_threads"], granian["backpressure"]) == (3, 2, 32)
    assert granian["workers_kill_timeout"] == 30
    assert options(tmp_path, SQLITE, "--stop-timeout", "5")[0]["workers_kill_timeout"] == 5
    assert env == {"BACKSTAGE_CONFIG_FILES": str(tmp_path / "app-config.yaml")}
    assert warnings == []
    assert options(tmp_path, PG)[0]["blocking_threads"] == 4
    assert options(tmp_path, PG, "--threads", "2")[0]["blocking_threads"] == 2
    mixed = {
        "backend": {
            "database": {
                **SQLITE["backend"]["database"],
                "plugin": {"catalog": {"client": "pg", "connection": "postgresql://x@h/x"}},
            }
        }
    }
    assert options(tmp_path, mixed)[0]["blocking_threads"] == 4


def test_listen_address_and_port_come_from_config_or_flags(tmp_path: Path) -> None:
    data = {**SQLITE, "backend": {**SQLITE["backend"], "listen": "127.0.0.2:7300"}}
    granian = options(tmp_path, data)[0]
    assert (granian["address"], granian["port"]) == ("127.0.0.2", 7300)
    granian = options(tmp_path, data, "--host", "0.0.0.0", "--port", "9000")[0]
    assert (granian["address"], granian["port"]) == ("0.0.0.0", 9000)
    assert options(tmp_path, SQLITE)[0]["address"] == "0.0.0.0"  # every interface, as Backstage


def test_several_workers_on_in_memory_databases_are_warned_about(tmp_path: Path) -> None:
    warnings = options(tmp_path, {"backend": {}}, "--workers", "2")[2]
    assert warnings and "in memory" in warnings[0]
    assert options(tmp_path, {"backend": {}}, "--workers", "1")[2] == []


def test_collected_static_files_are_served_by_granian(tmp_path: Path) -> None:
    assert "static_path_route" not in options(tmp_path, SQLITE)[0]
    (tmp_path / "staticfiles").mkdir()
    granian = options(tmp_path, SQLITE)[0]
    assert granian["static_path_route"] == ["/static"]
    assert granian["static_path_mount"] == [tmp_path / "staticfiles"]


@pytest.mark.parametrize(
    ("settings", "target"),
    [
        ("settings", "settings.wsgi:application"),
        ("tests.project.settings", "tests.project.wsgi:application"),
        ("mysite.production", "mysite.production.wsgi:application"),
    ],
)
def test_the_wsgi_application_follows_the_settings_module(settings: str, target: str) -> None:
    assert wsgi_application({"DJANGO_SETTINGS_MODULE": settings}) == target
    assert wsgi_application({"BACKSTAGE_WSGI_APPLICATION": "a.b:app"}) == "a.b:app"


def test_dry_run_prints_the_granian_command_without_loading_django(tmp_path: Path) -> None:
    config = write_config(
        tmp_path, {**SQLITE, "backend": {**SQLITE["backend"], "listen": {"port": 7301}}}
    )
    result = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "manage.py",
            "serve",
            "--config",
            str(config),
            "--dry-run",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "settings"},
        check=True,
    )
    assert result.stdout.split() == command_line(
        options(tmp_path, SQLITE | {"backend": {**SQLITE["backend"], "listen": {"port": 7301}}})[0]
    )
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines()}
    assert "django.apps" not in imported and "rest_framework" not in imported


PRELOAD_WITHOUT_OPTIONAL_PACKAGES = """
import importlib.util, sys
from backstage_core.server import preload
preload()
import rest_framework.compat as compat
if importlib.util.find_spec("markdown") is not None:
    sys.exit("Markdown is installed: DRF has a use for pygments then")
loaded = sorted(name for name in ("psycopg", "pygments") if name in sys.modules)
print(loaded, compat.pygments is None, compat.postgres_fields is None)
import pygments, django.contrib.postgres.fields  # still there for whoever imports them
print("imported afterwards")
"""


def test_the_server_loads_no_postgres_driver_or_pygments_for_drf_on_sqlite(tmp_path: Path) -> None:
    config = write_config(tmp_path, SQLITE)
    result = subprocess.run(
        [sys.executable, "-c", PRELOAD_WITHOUT_OPTIONAL_PACKAGES],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "settings",
            "BACKSTAGE_CONFIG_FILES": str(config),
        },
        check=True,
    )
    # DRF would map PostgreSQL's fields (loading psycopg) and style highlighted Markdown (loading
    # pygments); neither has a use here: the databases are SQLite and Markdown is not installed.
    assert result.stdout.split("\n")[:2] == ["[] True True", "imported afterwards"]


def test_qcluster_says_when_tasks_run_embedded() -> None:
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="backend.scheduler.worker is 'django-q'"):
        call_command("qcluster")


def test_a_worker_that_does_not_stop_is_killed_after_the_stop_timeout(tmp_path: Path) -> None:
    port = free_port()
    config = server_config(tmp_path, port)
    env = {"DJANGO_ENV": "production", "DJANGO_SECRET_KEY": "test-only-secret-key-for-serve"}
    args = ["serve", "--workers", "2", "--stop-timeout", "1", "--config", str(config)]
    with running(args, settings="settings", env=env) as server:
        wait_for(f"http://127.0.0.1:{port}/.backstage/health/v1/readiness", process=server)
        workers = [int(pid) for pid in os.popen(f"pgrep -P {server.pid}").read().split()]
        assert len(workers) == 2
        os.kill(workers[0], signal.SIGSTOP)  # it can not act on SIGTERM now
        began = time.monotonic()
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=20)
        assert time.monotonic() - began < 10
        for pid in workers:
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)


def test_ctrl_c_stops_every_worker_at_once_and_runs_their_shutdown_hooks(tmp_path: Path) -> None:
    """A terminal's Ctrl-C sends SIGINT to every process of its group, and the server process
    then sends each worker SIGTERM. A granian worker whose signals landed on a thread other than
    its main one stayed up until it was killed at the stop timeout (30 s), its hooks not run:
    in 1 to 4 of 10 stops before workers took their signals through a pipe."""
    env = {"DJANGO_ENV": "production", "DJANGO_SECRET_KEY": "test-only-secret-key-for-serve"}
    for attempt in range(5):
        directory = tmp_path / str(attempt)
        directory.mkdir()
        port = free_port()
        args = ["serve", "--workers", "2", "--config", str(server_config(directory, port))]
        with running(args, env=env) as server:
            wait_for(f"http://127.0.0.1:{port}/.backstage/health/v1/readiness", process=server)
            time.sleep(0.5)  # both workers have started their backends
            os.killpg(server.pid, signal.SIGINT)  # the server has a process group of its own
            try:
                assert server.wait(timeout=20) == 0, attempt
            finally:
                output = server.stdout.read() if server.stdout else ""
        assert "refused to gracefully stop" not in output, attempt
        hooks = (directory / "hooks.log").read_text().splitlines()
        assert hooks.count("plugin shutdown") == 2, (attempt, hooks)
        assert hooks.count("root shutdown") == 2, (attempt, hooks)
