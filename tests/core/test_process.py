"""The backend in a real process: where runserver listens, and what SIGTERM does."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import httpx

from tests.helpers import free_port, running, wait_for, write_config


def project_config(tmp_path: Path, port: int, **hooks: object) -> Path:
    return write_config(
        tmp_path,
        {
            "backend": {"baseUrl": f"http://localhost:{port}", "listen": {"port": port}},
            "hooks": {"file": str(tmp_path / "hooks.log"), **hooks},
        },
    )


def test_runserver_without_an_address_listens_where_backend_listen_says(tmp_path: Path) -> None:
    port = free_port()
    config = project_config(tmp_path, port)
    with running(["runserver", "--noreload", "--config", str(config)]) as process:
        ready = wait_for(f"http://127.0.0.1:{port}/.backstage/health/v1/readiness", process=process)
        assert ready.json() == {"status": "ok"}
        assert httpx.get(f"http://127.0.0.1:{port}/api/hooks/ping").json() == {"pong": True}


def test_sigterm_turns_readiness_503_runs_the_hooks_and_exits_0(tmp_path: Path) -> None:
    port = free_port()
    config = write_config(
        tmp_path,
        {
            "backend": {
                "baseUrl": f"http://localhost:{port}",
                "listen": {"port": port},
                "lifecycle": {"serverShutdownDelay": "1s"},
            },
            "hooks": {"file": str(tmp_path / "hooks.log")},
        },
    )
    url = f"http://127.0.0.1:{port}/.backstage/health/v1/readiness"
    with running(["runserver", "--noreload", "--config", str(config)]) as process:
        wait_for(url, process=process)
        process.send_signal(signal.SIGTERM)
        draining = wait_for(url, status=503, timeout=1)
        assert draining.json() == {"message": "Backend is shutting down", "status": "error"}
        assert process.wait(timeout=20) == 0
        output = process.stdout.read()
    assert (tmp_path / "hooks.log").read_text().splitlines() == [
        "init",
        "plugin startup",
        "plugin shutdown",
        "root shutdown",
    ], output


def test_a_failing_shutdown_hook_makes_the_exit_status_1(tmp_path: Path) -> None:
    port = free_port()
    config = project_config(tmp_path, port, failShutdown=True)
    with running(["runserver", "--noreload", "--config", str(config)]) as process:
        wait_for(f"http://127.0.0.1:{port}/.backstage/health/v1/readiness", process=process)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 1
        output = process.stdout.read()
    assert "Plugin shutdown hook failed" in output
    assert "shutdown hook failed on purpose" in output
    assert (tmp_path / "hooks.log").read_text().splitlines() == [
        "init",
        "plugin startup",
        "root shutdown",
    ]


def test_sigint_is_handled_like_sigterm(tmp_path: Path) -> None:
    port = free_port()
    config = project_config(tmp_path, port)
    with running(["runserver", "--noreload", "--config", str(config)]) as process:
        wait_for(f"http://127.0.0.1:{port}/.backstage/health/v1/readiness", process=process)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0
    assert (tmp_path / "hooks.log").read_text().splitlines()[-2:] == [
        "plugin shutdown",
        "root shutdown",
    ]


def test_with_the_autoreloader_signals_reach_the_serving_process(tmp_path: Path) -> None:
    port = free_port()
    config = project_config(tmp_path, port, shutdownSeconds=0.5)
    with running(["runserver", "--config", str(config)]) as process:
        wait_for(
            f"http://127.0.0.1:{port}/.backstage/health/v1/readiness", timeout=30, process=process
        )
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    assert (tmp_path / "hooks.log").read_text().splitlines()[-2:] == [
        "plugin shutdown",
        "root shutdown",
    ]


def test_a_repeated_ctrl_c_does_not_cut_the_shutdown_short(tmp_path: Path) -> None:
    port = free_port()
    config = project_config(tmp_path, port, shutdownSeconds=0.5)
    with running(["runserver", "--noreload", "--config", str(config)]) as process:
        wait_for(f"http://127.0.0.1:{port}/.backstage/health/v1/readiness", process=process)
        process.send_signal(signal.SIGINT)
        time.sleep(0.1)
        process.send_signal(signal.SIGINT)  # a terminal's Ctrl-C reaches every process of the group
        assert process.wait(timeout=20) == 0
    assert (tmp_path / "hooks.log").read_text().splitlines()[-2:] == [
        "plugin shutdown",
        "root shutdown",
    ]


_ = threading
