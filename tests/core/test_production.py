"""The production server (``manage.py serve``: granian, several workers) on PostgreSQL and Redis."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import psycopg
import pytest

from backstage_core.testing.engines import drop_databases, new_prefix, require_service
from tests.helpers import TcpProxy, free_port, running, wait_for, write_config


@pytest.fixture
def services() -> Iterator[dict[str, Any]]:
    postgres = require_service("postgres", pytest.skip, pytest.fail)
    redis = urlparse(require_service("redis", pytest.skip, pytest.fail))
    proxy = TcpProxy((redis.hostname, redis.port or 6379)).start()
    prefix = new_prefix()
    yield {"postgres": postgres, "prefix": prefix, "redis_proxy": proxy}
    proxy.stop()
    drop_databases("postgres", postgres, prefix)


def production_config(tmp_path: Path, port: int, services: dict[str, Any]) -> Path:
    return write_config(
        tmp_path,
        {
            "backend": {
                "baseUrl": f"http://localhost:{port}",
                "listen": {"host": "127.0.0.1", "port": port},
                "database": {
                    "client": "pg",
                    "connection": services["postgres"],
                    "prefix": services["prefix"],
                    "pool": {"max": 8},
                },
                "cache": {
                    "store": "redis",
                    "connection": f"redis://127.0.0.1:{services['redis_proxy'].port}",
                    "redis": {"client": {"namespace": services["prefix"], "socketTimeout": 200}},
                },
            },
            "todo": {"allowUnauthenticated": True},
            "hooks": {"file": str(tmp_path / "hooks.log")},
        },
    )


PRODUCTION = {
    "DJANGO_ENV": "production",
    "DJANGO_SECRET_KEY": "test-only-secret-key-for-the-production-server",
    "LOG_LEVEL": "warn",
}


def test_several_workers_on_postgres_store_exactly_800_todos_while_redis_goes_away(
    tmp_path: Path, services: dict[str, Any]
) -> None:
    port = free_port()
    config = production_config(tmp_path, port, services)
    base = f"http://127.0.0.1:{port}"
    with running(["serve", "--workers", "2", "--config", str(config)], env=PRODUCTION) as server:
        wait_for(f"{base}/.backstage/health/v1/readiness", process=server, timeout=30)
        sent = 0
        lock = threading.Lock()
        redis_gone = threading.Event()

        hits: list[tuple[bool, int]] = []  # (Redis gone?, the count the cache gave)

        def client(number: int) -> list[int]:
            nonlocal sent
            statuses = []
            with httpx.Client(base_url=base, timeout=30) as http:
                for i in range(100):
                    statuses.append(
                        http.post(
                            "/api/todo/todos", json={"title": f"client {number} todo {i}"}
                        ).status_code
                    )
                    with lock:
                        gone = redis_gone.is_set()
                    counted = http.post("/api/counter/hits")  # the cache is on this path
                    statuses.append(counted.status_code)
                    with lock:
                        hits.append((gone, counted.json()["hits"]))
                        sent += 1
                        if sent == 300:
                            services["redis_proxy"].stop()  # Redis goes away mid-run
                            redis_gone.set()
            return statuses

        with ThreadPoolExecutor(8) as pool:
            statuses = [s for result in pool.map(client, range(8)) for s in result]
        workers = {int(p) for p in os.popen(f"pgrep -P {server.pid}").read().split()}

        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
        output = server.stdout.read()

    assert len(workers) == 2
    assert max(count for gone, count in hits if not gone) > 50  # Redis counted while it was there
    assert {count for gone, count in hits if gone} == {
        1
    }  # then every read was a miss, not an error
    assert "treating it as a miss until it answers again" in output
    assert sorted(set(statuses)) == [200, 201]
    assert statuses.count(201) == 800
    with psycopg.connect(f"{services['postgres']}/{services['prefix']}todo") as connection:
        assert connection.execute("select count(*), count(distinct id) from todos").fetchone() == (
            800,
            800,
        )
    hooks = (tmp_path / "hooks.log").read_text().splitlines()
    assert (
        hooks.count("plugin shutdown") == 2 and hooks.count("root shutdown") == 2
    )  # each worker's hooks ran
