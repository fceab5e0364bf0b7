#!/usr/bin/env python
"""Reads at scale: the todo API with 1,000 and with 1,000,000 todos in the table.

    .venv/bin/python scripts/bench_scale.py [--sizes 1000,1000000] [--write docs/benchmarks.md]

For each size, on SQLite files and on PostgreSQL when it answers: the todo table is filled
directly (100 todos about one entity, the rest spread over 5,000 others), the production server
starts on it, and wrk measures ``?entityRef=X`` (the 100), a read by id, the first page of
``?limit=100``, and a page from the middle of the table (``?limit=100&cursor=...``). Then the
whole table is paged through with ``?limit=1000``, following the ``Link`` headers. The table
compares each case's latency at 1,000,000 todos with its latency at 1,000.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import random
import re
import sqlite3
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import ROOT, Ours, machine, postgres, to_ms, write_section  # noqa: E402

TARGET = "component:default/target"
OTHERS = 5000
START = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
CASES = ["entityRef (100 of them)", "get by id", "first page (limit=100)", "middle page (cursor)"]


def rows(
    count: int, seed: int = 7
) -> tuple[list[tuple[uuid.UUID, str, str, datetime.datetime, bool]], int]:
    """``count`` todos, oldest first, one a millisecond; 100 are about TARGET. Also the index of
    the row in the middle."""
    chooser = random.Random(seed)
    target = set(chooser.sample(range(count), 100))
    result = []
    for index in range(count):
        ref = TARGET if index in target else f"component:default/e{index % OTHERS}"
        result.append(
            (
                uuid.UUID(int=chooser.getrandbits(128), version=4),
                f"Todo number {index}",
                ref,
                START + datetime.timedelta(milliseconds=index),
                index % 3 == 0,
            )
        )
    return result, count // 2


def fill_sqlite(path: Path, todos: list[Any]) -> None:
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA synchronous=OFF")
    with connection:
        connection.executemany(
            "INSERT INTO todos (id, title, entity_ref, created_at, completed) VALUES (?,?,?,?,?)",
            (
                (t[0].hex, t[1], t[2], t[3].replace(tzinfo=None).isoformat(sep=" "), t[4])
                for t in todos
            ),
        )
    connection.execute("ANALYZE")
    connection.close()


def fill_postgres(url: str, todos: list[Any]) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        with connection.cursor() as cursor:
            columns = "id, title, entity_ref, created_at, completed"
            with cursor.copy(f"COPY todos ({columns}) FROM STDIN") as copy:
                for todo in todos:
                    copy.write_row(todo)
        connection.execute("ANALYZE todos")


def cursor_after(todo: Any) -> str:
    """The page cursor for the todos older than ``todo`` (the format todo.queries.Cursor reads)."""
    text = f"{todo[3].isoformat(timespec='microseconds')}|{todo[0].hex}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def wrk(url: str, duration: str) -> dict[str, float]:
    """wrk on ``url`` for ``duration``, after a second of the same load that is not measured
    (every request thread opens its connection and reads its pages first, at either size)."""
    for run in ("1s", duration):
        out = subprocess.run(
            ["wrk", "-t2", "-c8", f"-d{run}", "--latency", url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = to_ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = to_ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50": p50, "p99": p99, "bad": float(bad.group(1)) if bad else 0.0}


def page_through(base: str) -> tuple[int, float, int]:
    """(todos seen, seconds, pages) following ``Link: rel="next"`` with ``limit=1000``."""
    url: str | None = f"{base}/api/todo/todos?limit=1000"
    seen, pages, began = 0, 0, time.perf_counter()
    while url:
        with urllib.request.urlopen(url, timeout=60) as response:
            body = response.read()
            link = response.headers.get("Link")
        seen += body.count(b'"id":')
        pages += 1
        match = re.match(r"<([^>]+)>;\s*rel=\"next\"", link or "")
        url = match.group(1) if match else None
    return seen, time.perf_counter() - began, pages


def measure(engine: str, size: int, duration: str) -> dict[str, Any]:
    todos, middle = rows(size)
    pg = postgres() if engine == "PostgreSQL" else None
    if engine == "PostgreSQL" and pg is None:
        return {}
    database = (
        pg[0]
        if pg is not None
        else {"client": "better-sqlite3", "connection": {"directory": "__DIR__/db"}}
    )

    def fill(server: Ours) -> None:
        if pg is None:
            fill_sqlite(server.directory / "db" / "todo.sqlite", todos)
        else:
            fill_postgres(f"{database['connection']}/{database['prefix']}todo", todos)

    server = Ours(engine, database, cleanup=pg[1] if pg else None, before_serve=fill)
    try:
        server.start()
        base = f"http://127.0.0.1:{server.port}"
        probe = todos[middle]
        results = {
            CASES[0]: wrk(f"{base}/api/todo/todos?entityRef={TARGET}", duration),
            CASES[1]: wrk(f"{base}/api/todo/todos/{probe[0]}", duration),
            CASES[2]: wrk(f"{base}/api/todo/todos?limit=100", duration),
            CASES[3]: wrk(
                f"{base}/api/todo/todos?limit=100&cursor={cursor_after(probe)}", duration
            ),
        }
        seen, seconds, pages = page_through(base)
        return {"cases": results, "paged": (seen, seconds, pages)}
    finally:
        server.stop()


def report(results: dict[tuple[str, int], dict[str, Any]], sizes: list[int]) -> str:
    small, large = sizes[0], sizes[-1]
    lines = []
    for engine in dict.fromkeys(e for e, _ in results):
        a, b = results.get((engine, small)), results.get((engine, large))
        if not a or not b:
            continue
        lines += [
            f"**{engine}**",
            "",
            f"| case | p50 ms at {small:,} | p50 ms at {large:,} | ratio | p99 ms at {small:,} | "
            f"p99 ms at {large:,} | req/s at {large:,} |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for case in CASES:
            x, y = a["cases"][case], b["cases"][case]
            lines.append(
                f"| {case} | {x['p50']:.2f} | {y['p50']:.2f} | {y['p50'] / x['p50']:.2f} | "
                f"{x['p99']:.2f} | {y['p99']:.2f} | {y['rps']:,.0f} |"
            )
        seen, seconds, pages = b["paged"]
        lines += [
            "",
            f"Paging through all {large:,} with `limit=1000`: {seen:,} todos in {pages:,} pages, "
            f"{seconds:.1f} s ({seconds / pages * 1000:.1f} ms a page).",
            "",
        ]
    return "\n".join(lines).rstrip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,1000000")
    parser.add_argument("--duration", default="5s")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    engines = ["SQLite"] + ([] if args.no_postgres else ["PostgreSQL"])
    results = {}
    for engine in engines:
        for size in sizes:
            print(f"scale: {engine}, {size:,} todos ...", file=sys.stderr)
            results[(engine, size)] = measure(engine, size, args.duration)
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = (
        f"{when}; {machine()}; wrk 2 threads, 8 connections, {args.duration} per case.\n\n"
        f"{report(results, sizes)}"
    )
    print(text)
    if args.write:
        write_section(args.write, "scale", text)


if __name__ == "__main__":
    main()
    _ = ROOT
