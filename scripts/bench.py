#!/usr/bin/env python
"""``make bench``: this backend against the Backstage reference backend, in one run, same load.

    .venv/bin/python scripts/bench.py                    # 3 rounds, 10 s per case, + the scale run
    .venv/bin/python scripts/bench.py --runs 1 --duration 5s --no-scale
    .venv/bin/python scripts/bench.py --write docs/benchmarks.md

Each round starts, one after the other and each on fresh data: the Backstage backend with the todo
plugin (``../shared/peer/backstage-todo``), this backend's production server (``manage.py serve``,
one worker per core) on SQLite files, and the same on PostgreSQL when it answers. For each it
measures start to ready (spawn to the first 200 on readiness), the PSS of all its processes at idle
(``/proc/<pid>/smaps_rollup``), then runs ``../shared/bench/todo-load.sh`` (100 todos seeded, wrk
on each case) and the RSS after. The CPU steal over the round says how much the host's other
machines took meanwhile. The table shows the median of the rounds and each case's ratio to
the reference. ``scripts/bench_scale.py`` then measures reads at 1,000 and 1,000,000 todos.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("BACKSTAGE_SHARED", ROOT.parent / "shared"))
PEER = SHARED / "peer" / "backstage-todo"
LOAD = SHARED / "bench" / "todo-load.sh"
CASES = ["readiness", "list100", "list50-ref", "get-by-id", "create"]
CASE_NAMES = {
    "readiness": "readiness",
    "list100": "list of 100",
    "list50-ref": "list filtered by entityRef (50)",
    "get-by-id": "get by id",
    "create": "create",
}
LINE = re.compile(
    r"^(?P<case>\S+)\s+req/s=(?P<rps>[\d.]+)\s+p50=(?P<p50>\S+)\s+p99=(?P<p99>\S+)\s+non2xx=(?P<bad>\d+)"
)
SECRET = "bench-only-secret-key-not-for-production-0123456789"
# The README's first production step: the project's bytecode, written once (PYTHONDONTWRITEBYTECODE
# would otherwise have every start compile the project's sources again).
COMPILE = [sys.executable, "-m", "compileall", "-q", "-x", r"/\.", "."]

sys.path.insert(0, str(Path(__file__).resolve().parent))
from startup_time import free_port, ready  # noqa: E402


def to_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not match:
        return float("nan")
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def wait_ready(port: int, start: float, timeout: float = 60) -> float:
    while time.perf_counter() - start < timeout:
        if ready(port):
            return time.perf_counter() - start
        time.sleep(0.005)
    raise TimeoutError(f"nothing ready on port {port} after {timeout} s")


def process_tree(pid: int) -> list[int]:
    pids, queue = [], [pid]
    while queue:
        current = queue.pop()
        pids.append(current)
        try:
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            children = []
        queue += [int(child) for child in children]
    return pids


def memory_kib(pids: list[int], field_name: str) -> int:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith(f"{field_name}:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


@dataclass
class Result:
    server: str
    start_s: float
    idle_pss_mib: float
    rss_after_mib: float = 0.0
    cases: dict[str, dict[str, float]] = field(default_factory=dict)
    steal_pct: float = float("nan")


def cpu_jiffies() -> tuple[int, int]:
    """(all, stolen) CPU time since boot, from ``/proc/stat``: what the hypervisor gave to other
    machines while this one had work is "steal", and it slows whatever runs then."""
    try:
        fields = [
            int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        ]
    except (OSError, ValueError):
        return 0, 0
    return sum(fields[:8]), fields[7] if len(fields) > 7 else 0


def run_load(base: str, pids: list[int], duration: str) -> tuple[dict[str, dict[str, float]], int]:
    env = {**os.environ, "DUR": duration}
    output = subprocess.run(
        ["bash", str(LOAD), base, *map(str, pids)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=600,
    ).stdout
    cases, rss_after = {}, 0
    for line in output.splitlines():
        match = LINE.match(line.strip())
        if match:
            cases[match["case"]] = {
                "rps": float(match["rps"]),
                "p50": to_ms(match["p50"]),
                "p99": to_ms(match["p99"]),
                "bad": float(match["bad"]) + (1 if "Socket errors" in line else 0),
            }
        elif line.startswith("rss_kib_after:"):
            rss_after = int(line.split()[1])
    return cases, rss_after


# -- the servers ---------------------------------------------------------------------------


class Peer:
    """The Backstage reference backend, started and stopped with the peer's own scripts."""

    name = "Backstage"

    def __init__(self) -> None:
        self.port = free_port()
        self.env = {**os.environ, "PORT": str(self.port), "LOG_LEVEL": "warn"}
        home = Path(os.environ.get("BACKSTAGE_PEER_HOME", "/tmp/backstage-peer"))
        self.pid_file = home / "run" / f"backend-{self.port}.pid"

    def start(self) -> float:
        subprocess.run(
            ["bash", str(PEER / "setup.sh")], env=self.env, check=True, capture_output=True
        )
        began = time.perf_counter()
        process = subprocess.Popen(
            ["bash", str(PEER / "start.sh")],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        elapsed = wait_ready(self.port, began)
        process.wait(timeout=60)
        return elapsed

    def pids(self) -> list[int]:
        return process_tree(int(self.pid_file.read_text()))

    def stop(self) -> None:
        subprocess.run(
            ["bash", str(PEER / "stop.sh")], env=self.env, capture_output=True, check=False
        )


class Ours:
    """This backend's production server on a fresh database (SQLite files or PostgreSQL)."""

    def __init__(
        self, name: str, database: dict[str, Any], cleanup: Any = None, before_serve: Any = None
    ) -> None:
        self.name = name
        self.before_serve = before_serve
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="backstage-bench-"))
        self.cleanup = cleanup
        config = {
            "backend": {
                "baseUrl": f"http://localhost:{self.port}",
                "listen": {"port": self.port},
                "database": database,
            },
            "todo": {"allowUnauthenticated": True},
        }
        text = json.dumps(config).replace("__DIR__", str(self.directory))
        (self.directory / "app-config.yaml").write_text(text)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        env = {
            **os.environ,
            "DJANGO_ENV": "production",
            "DJANGO_SECRET_KEY": SECRET,
            "LOG_LEVEL": "warn",
        }
        env.pop("BACKSTAGE_CONFIG_FILES", None)
        config = str(self.directory / "app-config.yaml")
        # As the README's production steps: compile the bytecode, migrate (creating the
        # databases), then serve.
        subprocess.run(COMPILE, cwd=ROOT, check=True, capture_output=True)
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--verbosity", "0", "--config", config],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )
        if self.before_serve is not None:
            self.before_serve(self)
        command = [sys.executable, "manage.py", "serve", "--config", config, "--host", "127.0.0.1"]
        began = time.perf_counter()
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            # A process group of its own (to stop it whole), in the session wrk and the reference
            # run in: Linux's autogroup shares the CPU between sessions first, so a server in a
            # session of its own would be scheduled as a group against wrk (A/B: 10-15 % fewer
            # requests a second, a third more context switches), unlike the reference.
            process_group=0,
        )
        return wait_ready(self.port, began)

    def pids(self) -> list[int]:
        assert self.process is not None
        return process_tree(self.process.pid)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self.cleanup is not None:
            self.cleanup()
        shutil.rmtree(self.directory, ignore_errors=True)


def postgres() -> tuple[dict[str, Any], Any] | None:
    """A ``backend.database`` section on fresh PostgreSQL databases, and how to drop them."""
    sys.path.insert(0, str(ROOT))
    from backstage_core.testing.engines import _problem, drop_databases, new_prefix, service_url

    problem = _problem("postgres")
    if problem is not None:
        print(f"PostgreSQL is not reachable ({problem}); skipping it", file=sys.stderr)
        return None
    url, prefix = service_url("postgres"), new_prefix()
    section = {"client": "pg", "connection": url, "prefix": prefix, "pool": {"max": 10}}
    return section, lambda: drop_databases("postgres", url, prefix)


def measure(server: Any, duration: str) -> Result:
    try:
        total_before, stolen_before = cpu_jiffies()
        start = server.start()
        time.sleep(1.0)  # idle: started, no requests yet
        pids = server.pids()
        pss = memory_kib(pids, "Pss") / 1024
        cases, rss_after = run_load(f"http://127.0.0.1:{server.port}", pids, duration)
        total_after, stolen_after = cpu_jiffies()
        total = total_after - total_before
        steal = 100 * (stolen_after - stolen_before) / total if total else float("nan")
        return Result(server.name, start, pss, rss_after / 1024, cases, steal)
    finally:
        server.stop()


# -- reporting -----------------------------------------------------------------------------


def median(values: list[float]) -> float:
    values = [v for v in values if v == v]
    return statistics.median(values) if values else float("nan")


def summarize(results: list[Result]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for name in dict.fromkeys(r.server for r in results):
        rounds = [r for r in results if r.server == name]
        summary[name] = {
            "start_s": median([r.start_s for r in rounds]),
            "idle_pss_mib": median([r.idle_pss_mib for r in rounds]),
            "rss_after_mib": median([r.rss_after_mib for r in rounds]),
            "steal_pct": median([r.steal_pct for r in rounds]),
            "rounds": len(rounds),
            "cases": {
                case: {
                    key: median([r.cases.get(case, {}).get(key, float("nan")) for r in rounds])
                    for key in ("rps", "p50", "p99", "bad")
                }
                for case in CASES
            },
        }
    return summary


def table(summary: dict[str, Any]) -> str:
    reference = summary.get("Backstage")
    ours = [name for name in summary if name != "Backstage"]
    head = ["case"]
    for name in ours:
        head += [f"{name} req/s", "p50 ms", "p99 ms", "non-2xx", "× ref"]
    if reference:
        head += ["Backstage req/s", "p50 ms", "p99 ms", "non-2xx"]
    rows = [head, ["---"] * len(head)]
    for case in CASES:
        row = [CASE_NAMES[case]]
        for name in ours:
            c = summary[name]["cases"][case]
            ratio = c["rps"] / reference["cases"][case]["rps"] if reference else float("nan")
            row += [
                f"{c['rps']:,.0f}",
                f"{c['p50']:.2f}",
                f"{c['p99']:.2f}",
                f"{c['bad']:.0f}",
                f"{ratio:.2f}",
            ]
        if reference:
            c = reference["cases"][case]
            row += [f"{c['rps']:,.0f}", f"{c['p50']:.2f}", f"{c['p99']:.2f}", f"{c['bad']:.0f}"]
        rows.append(row)
    for label, key, fmt in (
        ("start to ready (s)", "start_s", "{:.2f}"),
        ("idle PSS, all processes (MiB)", "idle_pss_mib", "{:.0f}"),
        ("RSS after the load (MiB)", "rss_after_mib", "{:.0f}"),
        ("CPU steal while it ran (%)", "steal_pct", "{:.1f}"),
    ):
        row = [label]
        for name in ours:
            row += [fmt.format(summary[name][key]), "", "", "", ""]
        if reference:
            row += [fmt.format(reference[key]), "", "", ""]
        rows.append(row)
    return "\n".join("| " + " | ".join(r) + " |" for r in rows)


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    import granian

    return (
        f"{os.cpu_count()} cores ({cpu}), Linux {platform.release()}, Python "
        f"{platform.python_version()}, granian {granian.__version__}, Node.js {node}"
    )


def write_section(path: Path, marker: str, content: str) -> None:
    text = path.read_text() if path.exists() else ""
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    block = f"{start}\n{content}\n{end}"
    if start in text and end in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end) :]
    else:
        text = f"{text.rstrip()}\n\n{block}\n"
    path.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="rounds (the table shows medians)")
    parser.add_argument("--duration", default="10s", help="wrk duration per case")
    parser.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL server")
    parser.add_argument("--no-peer", action="store_true", help="skip the Backstage reference")
    parser.add_argument("--no-scale", action="store_true", help="skip scripts/bench_scale.py")
    parser.add_argument("--write", type=Path, help="put the table in this Markdown file")
    parser.add_argument("--json", type=Path, help="save every round's figures as JSON")
    args = parser.parse_args()

    results: list[Result] = []
    for round_number in range(1, args.runs + 1):
        servers: list[Any] = []
        if not args.no_peer:
            servers.append(Peer())
        servers.append(
            Ours("SQLite", {"client": "better-sqlite3", "connection": {"directory": "__DIR__/db"}})
        )
        if not args.no_postgres:
            pg = postgres()
            if pg is not None:
                servers.append(Ours("PostgreSQL", pg[0], cleanup=pg[1]))
        for server in servers:
            print(f"round {round_number}/{args.runs}: {server.name} ...", file=sys.stderr)
            result = measure(server, args.duration)
            results.append(result)
            rates = ", ".join(f"{name} {case['rps']:,.0f}" for name, case in result.cases.items())
            print(
                f"  start {result.start_s:.2f} s, {result.idle_pss_mib:.0f} MiB, "
                f"steal {result.steal_pct:.1f} %; req/s: {rates}",
                file=sys.stderr,
            )

    summary = summarize(results)
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    rounds = max(s["rounds"] for s in summary.values())
    report = (
        f"{when}; {machine()}; median of {rounds} round(s), wrk for {args.duration} per case "
        f"(2 threads, 32 connections) on the same cores.\n\n{table(summary)}"
    )
    print(report)
    if args.json:
        args.json.write_text(json.dumps([r.__dict__ for r in results], indent=2))
    if args.write:
        write_section(args.write, "bench", report)
    if not args.no_scale:
        command = [sys.executable, str(ROOT / "scripts" / "bench_scale.py")]
        if args.write:
            command += ["--write", str(args.write)]
        subprocess.run(command, check=True)


if __name__ == "__main__":
    main()
