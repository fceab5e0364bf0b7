"""The todo API on a real server process: concurrent writers, and the seed's curl session."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.helpers import free_port, running, server_config, wait_for


def serve(tmp_path: Path, port: int) -> Path:
    return server_config(tmp_path, port, todo={"allowUnauthenticated": True})


def test_8_concurrent_clients_creating_100_todos_each_store_exactly_800(tmp_path: Path) -> None:
    port = free_port()
    config = serve(tmp_path, port)
    base = f"http://127.0.0.1:{port}"
    with running(
        ["runserver", "--noreload", "--config", str(config)], env={"LOG_LEVEL": "warn"}
    ) as process:
        wait_for(f"{base}/.backstage/health/v1/readiness", process=process)

        def client(number: int) -> list[int]:
            with httpx.Client(base_url=base, timeout=30) as http:
                return [
                    http.post(
                        "/api/todo/todos",
                        json={
                            "title": f"client {number} todo {i}",
                            "entityRef": f"component:default/c{number}",
                        },
                    ).status_code
                    for i in range(100)
                ]

        with ThreadPoolExecutor(8) as pool:
            statuses = [status for result in pool.map(client, range(8)) for status in result]
        listed = httpx.get(f"{base}/api/todo/todos").json()

    assert statuses.count(201) == 800, sorted(set(statuses))
    assert len(listed) == 800
    with sqlite3.connect(tmp_path / "db" / "todo.sqlite") as connection:
        assert connection.execute("select count(*), count(distinct id) from todos").fetchone() == (
            800,
            800,
        )
        per_client = dict(
            connection.execute(
                "select entity_ref, count(*) from todos group by entity_ref"
            ).fetchall()
        )
    assert per_client == {f"component:default/c{n}": 100 for n in range(8)}


def test_the_seed_curl_session_works_word_for_word(tmp_path: Path) -> None:
    port = free_port()
    config = serve(tmp_path, port)
    session = """
# Create a todo
curl -X POST http://localhost:7007/api/todo/todos \\
-H "Content-Type: application/json" \\
-d '{"title": "My first todo", "entityRef": "component:default/my-service"}'
# List all todos
curl http://localhost:7007/api/todo/todos
# List todos for a specific entity
curl "http://localhost:7007/api/todo/todos?entityRef=component:default/my-service"
""".replace("7007", str(port))
    with running(["runserver", "--noreload", "--config", str(config)]) as process:
        wait_for(f"http://127.0.0.1:{port}/.backstage/health/v1/readiness", process=process)
        result = subprocess.run(
            ["bash", "-c", "set -e\n" + session], capture_output=True, text=True, timeout=30
        )
    assert result.returncode == 0, result.stderr
    created, listed, filtered = _split_json(result.stdout)
    todo = json.loads(created)
    assert (todo["title"], todo["entityRef"], todo["completed"]) == (
        "My first todo",
        "component:default/my-service",
        False,
    )
    assert json.loads(listed) == [todo]
    assert json.loads(filtered) == [todo]


def _split_json(text: str) -> list[str]:
    """curl prints the three bodies back to back; split them where one JSON value ends."""
    decoder = json.JSONDecoder()
    parts, index = [], 0
    while index < len(text):
        _, end = decoder.raw_decode(text, index)
        parts.append(text[index:end])
        index = end
    return parts


def test_data_in_db_todo_sqlite_survives_a_restart(tmp_path: Path) -> None:
    port = free_port()
    config = serve(tmp_path, port)
    base = f"http://127.0.0.1:{port}"
    for round_ in range(2):
        with running(["runserver", "--noreload", "--config", str(config)]) as process:
            wait_for(f"{base}/.backstage/health/v1/readiness", process=process)
            if round_ == 0:
                httpx.post(f"{base}/api/todo/todos", json={"title": "kept"})
            else:
                assert [t["title"] for t in httpx.get(f"{base}/api/todo/todos").json()] == ["kept"]
            process.terminate()
            assert process.wait(10) == 0
    assert (tmp_path / "db" / "todo.sqlite").exists()
