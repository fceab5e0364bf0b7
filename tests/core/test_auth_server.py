"""Tokens against a real server process: the README's curl session, ``manage.py issue_token``, and
keys that outlive a restart."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx

from tests.helpers import ROOT, free_port, running, server_config, wait_for, write_config

README = ROOT / "README.md"


def config_for(tmp_path: Path, port: int) -> Path:
    return server_config(tmp_path, port, auth={"providers": {"guest": {}}})


def readme_session() -> str:
    text = README.read_text()
    match = re.search(
        r"<!-- readme-auth-session -->\n```sh\n(.*?)```\n<!-- /readme-auth-session -->", text, re.S
    )
    assert match, "the README's auth session is missing"
    return match.group(1)


CLOSED = {"APP_CONFIG_todo_allowUnauthenticated": "false", "LOG_LEVEL": "warn"}


def issue_token(config: Path, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", "issue_token", *args, "--config", str(config)],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.project.settings", "LOG_LEVEL": "warn"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.strip()


def test_the_readme_curl_session(tmp_path: Path) -> None:
    port = free_port()
    config = config_for(tmp_path, port)
    session = readme_session().replace("http://localhost:7007", f"http://localhost:{port}")
    with running(["runserver", "--noreload", "--config", str(config)], env=CLOSED) as process:
        wait_for(f"http://127.0.0.1:{port}/.backstage/health/v1/readiness", process=process)
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", session],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "HTTP/1.1 401 Unauthorized" in out
    assert '"message":"Missing credentials"' in out
    assert "[]" in out
    assert '"title":"Mine"' in out and '"createdBy":"user:development/guest"' in out


def test_issued_tokens_and_keys_outlive_a_restart(tmp_path: Path) -> None:
    port = free_port()
    config = config_for(tmp_path, port)
    base = f"http://127.0.0.1:{port}"
    jane = issue_token(config, "user:default/jane", "--ownership", "group:default/team-a")
    assert jane.count(".") == 2 and "\n" not in jane

    with running(["runserver", "--noreload", "--config", str(config)], env=CLOSED) as process:
        wait_for(f"{base}/.backstage/health/v1/readiness", process=process)
        headers = {"Authorization": f"Bearer {jane}"}
        created = httpx.post(f"{base}/api/todo/todos", json={"title": "t"}, headers=headers)
        assert (created.status_code, created.json()["createdBy"]) == (201, "user:default/jane")
        info = httpx.get(f"{base}/api/auth/v1/userinfo", headers=headers).json()
        assert info["claims"]["ent"] == ["user:default/jane", "group:default/team-a"]
        guest = httpx.post(f"{base}/api/auth/guest/refresh").json()["backstageIdentity"]["token"]
        huge = httpx.get(
            f"{base}/api/todo/todos", headers={"Authorization": f"Bearer {'a' * 63_990}.b.c"}
        )
        assert (huge.status_code, huge.json()["error"]["message"]) == (
            401,
            "Illegal token, it is too large",
        )

    # Another process, the same database: the keys are there, the tokens still verify.
    with running(["runserver", "--noreload", "--config", str(config)], env=CLOSED) as process:
        wait_for(f"{base}/.backstage/health/v1/readiness", process=process)
        for token in (jane, guest):
            response = httpx.get(
                f"{base}/api/todo/todos", headers={"Authorization": f"Bearer {token}"}
            )
            assert response.status_code == 200, response.text


def test_issue_token_refuses_what_no_server_could_verify(tmp_path: Path) -> None:
    in_memory = write_config(tmp_path, {"backend": {"baseUrl": "http://localhost:7007"}})
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "issue_token",
            "user:default/jane",
            "--config",
            str(in_memory),
        ],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.project.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "The auth plugin's database is in memory" in result.stderr
    bad = subprocess.run(
        [sys.executable, "manage.py", "issue_token", "jane", "--config", str(in_memory)],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.project.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Invalid entity ref 'jane'" in bad.stderr
