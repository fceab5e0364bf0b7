"""``manage.py startplugin``: scaffold a plugin, and with the one added line its route answers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.helpers import ROOT, free_port, wait_for

SETTINGS = """
from pathlib import Path
from backstage_core.conf import django_settings
from proj_backend import backend

BASE_DIR = Path(__file__).resolve().parent
globals().update(django_settings(backend, base_dir=BASE_DIR, backend_path="proj_backend:backend"))
ROOT_URLCONF = "proj_urls"
"""
URLS = """
from backstage_core.http.urls import backend_urlpatterns
from proj_backend import backend

urlpatterns = backend_urlpatterns(backend)
"""


def project(tmp_path: Path, port: int) -> dict[str, str]:
    (tmp_path / "proj_backend.py").write_text(
        "from backstage_core import create_backend\n\nbackend = create_backend()\n"
    )
    (tmp_path / "proj_settings.py").write_text(SETTINGS)
    (tmp_path / "proj_urls.py").write_text(URLS)
    (tmp_path / "app-config.yaml").write_text(
        f"backend:\n  baseUrl: http://localhost:{port}\n  listen:\n    port: {port}\n"
        f"  database:\n    client: better-sqlite3\n    connection:\n      directory: ./db\n"
    )
    return {
        **os.environ,
        "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}",
        "DJANGO_SETTINGS_MODULE": "proj_settings",
        "DJANGO_ENV": "development",
    }


def manage(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_scaffolded_plugin_answers_once_added_and_its_own_tests_pass(tmp_path: Path) -> None:
    port = free_port()
    env = project(tmp_path, port)

    result = manage(tmp_path, env, "startplugin", "hello-world")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "proj_backend.py").read_text().endswith('backend.add("hello_world")\n')
    for name in (
        "plugin.py",
        "urls.py",
        "models.py",
        "admin.py",
        "migrations/0001_initial.py",
        "tests/test_plugin.py",
    ):
        assert (tmp_path / "hello_world" / name).exists(), name

    assert (
        manage(tmp_path, env, "makemigrations", "--check", "--dry-run").returncode == 0
    )  # the migration matches the model
    assert manage(tmp_path, env, "migrate").returncode == 0

    process = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "runserver", "--noreload"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/.backstage/health/v1/readiness", process=process)
        response = httpx.get(f"http://127.0.0.1:{port}/api/hello-world/health")
        assert (response.status_code, response.json()) == (200, {"status": "ok"})
        assert httpx.get(f"http://127.0.0.1:{port}/api/hello-world/items").status_code == 401
    finally:
        process.terminate()
        process.wait(10)
        process.stdout.close()

    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "hello_world"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )  # fmt: skip
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "3 passed" in tests.stdout


def test_startplugin_refuses_a_bad_id(tmp_path: Path) -> None:
    env = project(tmp_path, free_port())
    result = manage(tmp_path, env, "startplugin", "Bad_Id!")
    assert result.returncode == 1
    assert "'Bad_Id!' is not a valid plugin id" in result.stderr
