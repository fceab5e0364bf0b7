"""Plugin 'ticker': the tasks named in config, each appending a JSON line per run to ``ticker.file``.

    ticker:
      file: /tmp/ticks.jsonl
      tasks:
        tick: {frequency: {seconds: 1}, timeout: {seconds: 5}}        # records and returns
        hang: {frequency: {seconds: 1}, timeout: {seconds: 2}, behaviour: hang-once}
        wait: {frequency: {seconds: 1}, timeout: {seconds: 30}, behaviour: wait-for-abort}
        local-tick: {frequency: {seconds: 1}, timeout: {seconds: 5}, scope: local}

``hang-once`` blocks for a minute on its first run (in the whole test), ignoring the abort signal;
``wait-for-abort`` waits until its signal is set and records why.
"""

import fcntl
import json
import os
import time
from pathlib import Path

from backstage_core import core_services, create_backend_plugin
from backstage_core.services.scheduler import current_run, read_task_schedule_from_config


def record(path: Path, **fields) -> None:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.write(json.dumps(fields) + "\n")
        fcntl.flock(handle, fcntl.LOCK_UN)


def make_task(task_id: str, behaviour: str, path: Path):
    def fn(signal) -> None:
        run = current_run()
        started = time.time()
        common = {
            "task": task_id,
            "pid": os.getpid(),
            "scheduled": run.scheduled_at.isoformat() if run and run.scheduled_at else None,
        }
        record(path, event="start", at=started, **common)
        if behaviour == "hang-once":
            marker = path.with_suffix(".hung")
            if not marker.exists():
                marker.write_text(str(os.getpid()))
                time.sleep(60)
        elif behaviour == "wait-for-abort":
            signal.wait(60)
        record(path, event="end", at=time.time(), started=started, aborted=signal.aborted,
               reason=type(signal.reason).__name__ if signal.reason else None,
               message=str(signal.reason) if signal.reason else None, **common)  # fmt: skip

    return fn


def register(env):
    def init(config, scheduler):
        if not config.has("ticker.file"):
            return
        path = Path(config.get_string("ticker.file"))
        tasks = config.get_optional_config("ticker.tasks")
        for task_id in tasks.keys() if tasks else []:
            section = tasks.get_config(task_id)
            schedule = read_task_schedule_from_config(section)
            behaviour = section.get_optional_string("behaviour") or "record"
            scheduler.schedule_task(id=task_id, fn=make_task(task_id, behaviour, path), **schedule)

    env.register_init(
        deps={"config": core_services.root_config, "scheduler": core_services.scheduler}, init=init
    )


default = create_backend_plugin(plugin_id="ticker", register=register, django_app=None)
