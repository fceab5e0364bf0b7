"""The scheduler service in one backend: schedules, runs, triggers, cancels, timeouts, endpoints.

Tests taking ``database_config`` run on SQLite, PostgreSQL and MySQL/MariaDB in turn.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from backstage_core import BackendStartupError, InputError, core_services, create_backend_plugin
from backstage_core.config.reader import ConfigReader
from backstage_core.scheduler.schedule import TaskSettings, settings_for
from backstage_core.scheduler.store import TaskStore
from backstage_core.services.scheduler import (
    AbortSignal,
    current_run,
    read_task_schedule_from_config,
)
from backstage_core.testing import mock_credentials

NONE = {"Authorization": mock_credentials.none.header()}


class Recorder:
    """A task function that records its runs; ``behaviour`` makes it wait for its signal."""

    def __init__(self, wait_for_abort: bool = False) -> None:
        self.runs: list[dict[str, Any]] = []
        self.started = threading.Event()
        self.wait_for_abort = wait_for_abort

    def __call__(self, signal: AbortSignal) -> None:
        run = current_run()
        entry: dict[str, Any] = {
            "start": time.monotonic(),
            "scheduled": run.scheduled_at if run else None,
        }
        self.runs.append(entry)
        self.started.set()
        if self.wait_for_abort:
            signal.wait(10)
        entry.update(end=time.monotonic(), aborted=signal.aborted, reason=signal.reason)


def scheduler_plugin(tasks: dict[str, dict[str, Any]], seen: dict[str, Any] | None = None) -> Any:
    def register(env: Any) -> None:
        def init(scheduler: Any) -> None:
            if seen is not None:
                seen["scheduler"] = scheduler
            for task_id, options in tasks.items():
                scheduler.schedule_task(id=task_id, **options)

        env.register_init(deps={"scheduler": core_services.scheduler}, init=init)

    return create_backend_plugin(plugin_id="sched", register=register, django_app=None)


def wait_until(condition: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def with_database(database_config: dict[str, Any], **backend: Any) -> dict[str, Any]:
    return {"backend": {"database": database_config, **backend}}


# -- schedules -----------------------------------------------------------------------------------


def test_settings_are_backstages_json() -> None:
    assert (
        settings_for(frequency={"minutes": 10}, timeout={"minutes": 1}).to_json()
        == '{"version":2,"cadence":"PT10M","timeoutAfterDuration":"PT1M"}'
    )
    assert settings_for(
        frequency={"cron": "0 0 * * *"}, timeout={"minutes": 1}, initial_delay={"seconds": 10}
    ).to_json() == (
        '{"version":2,"cadence":"0 0 * * *","initialDelayDuration":"PT10S","timeoutAfterDuration":"PT1M"}'
    )
    assert (
        settings_for(frequency={"trigger": "manual"}, timeout=timedelta(minutes=1)).to_json()
        == '{"version":2,"cadence":"manual","timeoutAfterDuration":"PT60S"}'
    )
    assert TaskSettings.from_json(
        '{"version":2,"cadence":"PT2S","timeoutAfterDuration":"PT1M"}'
    ).interval == timedelta(seconds=2)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"id": "", "frequency": {"seconds": 1}, "timeout": {"seconds": 1}},
            " is not a valid ID, expected non-empty string",
        ),
        (
            {"id": "x", "frequency": {"cron": "not a cron"}, "timeout": {"seconds": 1}},
            "Invalid cron 'not a cron'",
        ),
        (
            {"id": "x", "frequency": {"trigger": "sometimes"}, "timeout": {"seconds": 1}},
            "Invalid trigger, expecting 'manual'",
        ),
        ({"id": "x", "frequency": {"seconds": 1}, "timeout": None}, "A task needs a timeout"),
        (
            {"id": "x", "frequency": {"fortnights": 1}, "timeout": {"seconds": 1}},
            "Invalid duration, unknown unit fortnights",
        ),
        (
            {"id": "x", "frequency": {"seconds": 1}, "timeout": {"seconds": 1}, "scope": "cluster"},
            'Only "global" or "local" are allowed for TaskScheduleDefinition.scope, but got: cluster',
        ),
    ],
)
def test_bad_schedules_are_refused(
    test_backend_factory: Any, options: dict[str, Any], message: str
) -> None:
    seen: dict[str, Any] = {}
    test_backend_factory(features=[scheduler_plugin({}, seen)])
    with pytest.raises(InputError) as error:
        seen["scheduler"].schedule_task(fn=lambda: None, **options)
    assert str(error.value).endswith(message)


def test_schedules_are_read_from_config() -> None:
    assert read_task_schedule_from_config(ConfigReader({"frequency": {"cron": "*/5 * * * *"}, "timeout": "1m", "initialDelay": {"seconds": 3}, "scope": "local"})) == {
        "frequency": {"cron": "*/5 * * * *"}, "timeout": timedelta(minutes=1), "initial_delay": timedelta(seconds=3), "scope": "local",
    }  # fmt: skip
    assert read_task_schedule_from_config(
        ConfigReader({"frequency": {"minutes": 10}, "timeout": "PT1M"})
    )["frequency"] == timedelta(minutes=10)
    with pytest.raises(
        ValueError,
        match='^Only "global" or "local" are allowed for TaskScheduleDefinition.scope, but got: x$',
    ):
        read_task_schedule_from_config(
            ConfigReader({"frequency": "1m", "timeout": "1m", "scope": "x"})
        )
    with pytest.raises(
        InputError, match="^Invalid duration '\\*/5 \\* \\* \\* \\*' in config at 'frequency'"
    ):
        read_task_schedule_from_config(ConfigReader({"frequency": "*/5 * * * *", "timeout": "1m"}))


# -- running -------------------------------------------------------------------------------------


def test_a_global_task_runs_at_its_frequency_one_run_at_a_time(
    test_backend_factory: Any, database_config: dict[str, Any]
) -> None:
    recorder = Recorder()
    plugin = scheduler_plugin(
        {"tick": {"fn": recorder, "frequency": {"milliseconds": 300}, "timeout": {"seconds": 5}}}
    )
    test_backend_factory(features=[plugin], config=with_database(database_config))
    wait_until(lambda: len(recorder.runs) >= 4)
    runs = [r for r in recorder.runs if "end" in r]
    assert all(
        later["start"] >= earlier["end"] for earlier, later in zip(runs, runs[1:], strict=False)
    )
    scheduled = [r["scheduled"] for r in recorder.runs[:4]]
    assert len(set(scheduled)) == 4  # each run is a due time of its own


def test_a_cron_task_with_a_seconds_field_runs_every_second(test_backend_factory: Any) -> None:
    recorder = Recorder()
    test_backend_factory(
        features=[
            scheduler_plugin(
                {
                    "cron": {
                        "fn": recorder,
                        "frequency": {"cron": "* * * * * *"},
                        "timeout": {"seconds": 5},
                    }
                }
            )
        ]
    )
    wait_until(lambda: len(recorder.runs) >= 3)
    starts = [r["start"] for r in recorder.runs[:3]]
    assert all(0.5 < b - a < 2.0 for a, b in zip(starts, starts[1:], strict=False))


def test_a_manual_task_runs_only_when_triggered(
    test_backend_factory: Any, database_config: dict[str, Any]
) -> None:
    recorder = Recorder()
    backend = test_backend_factory(
        features=[
            scheduler_plugin(
                {
                    "manual": {
                        "fn": recorder,
                        "frequency": {"trigger": "manual"},
                        "timeout": {"seconds": 5},
                    }
                }
            )
        ],
        config=with_database(database_config),
    )
    time.sleep(0.5)
    assert recorder.runs == []
    response = backend.client.post("/api/sched/.backstage/scheduler/v1/tasks/manual/trigger")
    assert (response.status_code, response.content) == (200, b"")
    wait_until(lambda: len(recorder.runs) == 1)
    time.sleep(0.5)
    assert len(recorder.runs) == 1


def test_trigger_and_cancel_errors(
    test_backend_factory: Any, database_config: dict[str, Any]
) -> None:
    recorder = Recorder(wait_for_abort=True)
    backend = test_backend_factory(
        features=[
            scheduler_plugin(
                {
                    "long": {
                        "fn": recorder,
                        "frequency": {"trigger": "manual"},
                        "timeout": {"seconds": 30},
                    }
                }
            )
        ],
        config=with_database(database_config),
    )
    base = "/api/sched/.backstage/scheduler/v1/tasks"

    def error(response: Any) -> tuple[int, str, str]:
        body = response.json()
        return response.status_code, body["error"]["name"], body["error"]["message"]

    assert error(backend.client.post(f"{base}/nope/trigger")) == (
        404,
        "NotFoundError",
        "Task nope does not exist",
    )
    assert error(backend.client.post(f"{base}/nope/cancel")) == (
        404,
        "NotFoundError",
        "Task nope does not exist",
    )
    assert error(backend.client.post(f"{base}/long/cancel")) == (
        409,
        "ConflictError",
        "Task long is not running",
    )
    assert backend.client.post(f"{base}/long/trigger").status_code == 200
    assert recorder.started.wait(10)
    assert error(backend.client.post(f"{base}/long/trigger")) == (
        409,
        "ConflictError",
        "Task long is currently running",
    )

    assert backend.client.post(f"{base}/long/cancel").status_code == 200
    wait_until(lambda: "end" in recorder.runs[0])
    assert recorder.runs[0]["aborted"] is True
    assert str(recorder.runs[0]["reason"]) == "Task was cancelled"
    wait_until(
        lambda: (
            json.loads((task_state(backend, "long") or {}).get("lastRunError", "{}")).get("message")
            == "Task was cancelled"
        )
    )


def task_state(backend: Any, task_id: str) -> dict[str, Any]:
    tasks = backend.client.get("/api/sched/.backstage/scheduler/v1/tasks").json()["tasks"]
    return next(t["taskState"] for t in tasks if t["taskId"] == task_id)


def test_a_task_over_its_timeout_sees_its_signal_set(
    test_backend_factory: Any, database_config: dict[str, Any]
) -> None:
    recorder = Recorder(wait_for_abort=True)
    test_backend_factory(
        features=[
            scheduler_plugin(
                {
                    "slow": {
                        "fn": recorder,
                        "frequency": {"minutes": 10},
                        "timeout": {"milliseconds": 500},
                    }
                }
            )
        ],
        config=with_database(database_config),
    )
    wait_until(lambda: recorder.runs and "end" in recorder.runs[0])
    run = recorder.runs[0]
    assert run["aborted"] is True and str(run["reason"]) == "Task timed out"
    assert 0.4 < run["end"] - run["start"] < 3


def test_shutdown_sets_the_signal_of_a_running_task(
    test_backend_factory: Any, database_config: dict[str, Any]
) -> None:
    recorder = Recorder(wait_for_abort=True)
    backend = test_backend_factory(
        features=[
            scheduler_plugin(
                {"slow": {"fn": recorder, "frequency": {"minutes": 10}, "timeout": {"minutes": 5}}}
            )
        ],
        config=with_database(database_config),
    )
    assert recorder.started.wait(10)
    backend.stop()
    assert recorder.runs[0]["aborted"] is True
    assert str(recorder.runs[0]["reason"]) == "The backend is shutting down"


def test_local_tasks_run_in_this_instance_and_obey_trigger_and_cancel(
    test_backend_factory: Any,
) -> None:
    ticks, waiter = Recorder(), Recorder(wait_for_abort=True)
    seen: dict[str, Any] = {}
    backend = test_backend_factory(
        features=[
            scheduler_plugin(
                {
                    "local-tick": {
                        "fn": ticks,
                        "frequency": {"milliseconds": 200},
                        "timeout": {"seconds": 5},
                        "scope": "local",
                    },
                    "local-manual": {
                        "fn": waiter,
                        "frequency": {"trigger": "manual"},
                        "timeout": {"seconds": 30},
                        "scope": "local",
                    },
                },
                seen,
            )
        ]
    )
    wait_until(lambda: len(ticks.runs) >= 3)
    assert waiter.runs == []
    scheduler = seen["scheduler"]
    scheduler.trigger_task("local-manual")
    assert waiter.started.wait(5)
    with pytest.raises(Exception, match="^Task local-manual is currently running$"):
        scheduler.trigger_task("local-manual")
    state = task_state(backend, "local-manual")
    assert state["status"] == "running" and state["startedAt"].endswith("+00:00")
    scheduler.cancel_task("local-manual")
    wait_until(lambda: "end" in waiter.runs[0])
    assert waiter.runs[0]["aborted"] is True


def test_the_endpoints_list_each_task_with_its_state_and_need_credentials(
    test_backend_factory: Any, database_config: dict[str, Any]
) -> None:
    def fail(signal: AbortSignal) -> None:
        raise ValueError("kaboom")

    backend = test_backend_factory(
        features=[
            scheduler_plugin(
                {
                    "failing": {"fn": fail, "frequency": {"hours": 1}, "timeout": {"minutes": 1}},
                    "later": {
                        "fn": lambda: None,
                        "frequency": {"trigger": "manual"},
                        "timeout": {"minutes": 1},
                        "initial_delay": {"hours": 1},
                    },
                    "local": {
                        "fn": lambda: None,
                        "frequency": {"hours": 1},
                        "timeout": {"minutes": 1},
                        "scope": "local",
                    },
                }
            )
        ],
        config=with_database(database_config),
    )
    assert (
        backend.client.get("/api/sched/.backstage/scheduler/v1/tasks", headers=NONE).status_code
        == 401
    )
    wait_until(lambda: "lastRunError" in (task_state(backend, "failing") or {}))

    tasks = backend.client.get("/api/sched/.backstage/scheduler/v1/tasks").json()["tasks"]
    assert [(t["taskId"], t["pluginId"], t["scope"]) for t in tasks] == [
        ("failing", "sched", "global"),
        ("later", "sched", "global"),
        ("local", "sched", "local"),
    ]
    failing, later, local = tasks
    assert failing["settings"] == {"version": 2, "cadence": "PT1H", "timeoutAfterDuration": "PT1M"}
    assert failing["taskState"]["status"] == "idle"
    assert json.loads(failing["taskState"]["lastRunError"]) == {
        "name": "ValueError",
        "message": "kaboom",
    }
    assert {"startsAt", "lastRunEndedAt"} <= set(failing["taskState"])
    assert failing["workerState"] == {"status": "idle"}
    assert later["taskState"]["status"] == "idle" and later["workerState"] == {
        "status": "initial-wait"
    }
    assert local["taskState"]["status"] in ("idle", "running")


def test_the_janitor_frees_runs_whose_timeout_passed(
    test_backend_factory: Any, database_config: dict[str, Any], caplog: Any
) -> None:
    from backstage_core.testing import mock_services

    backend = test_backend_factory(
        features=[
            scheduler_plugin(
                {
                    "lost": {
                        "fn": lambda: None,
                        "frequency": {"trigger": "manual"},
                        "timeout": {"seconds": 1},
                    }
                }
            ),
            mock_services.root_logger.factory(level="warn"),
        ],
        config=with_database(database_config, scheduler={"janitorInterval": "200ms"}),
    )
    store = TaskStore("sched")
    store.trigger("lost")  # schedule_task returns once the task is stored
    store.tasks.filter(id="lost").update(
        current_run_ticket="someone-who-died"
    )  # claimed, then the claimer vanished
    due = store.tasks.get(id="lost").next_run_start_at or timezone.now()
    store.tasks.filter(id="lost").update(
        current_run_started_at=due,
        current_run_expires_at=due,
        next_run_start_at=None,  # not due again once freed: only the janitor touches it
    )
    with caplog.at_level("WARNING"):
        wait_until(lambda: store.tasks.get(id="lost").current_run_ticket is None)
        wait_until(
            lambda: any(
                r.getMessage() == "Task timed out and was lost: lost" for r in caplog.records
            )
        )
    assert json.loads(store.tasks.get(id="lost").last_run_error_json) == {
        "name": "Error",
        "message": "Task timed out",
    }
    assert backend is not None


def test_re_registering_keeps_the_earlier_next_run(
    test_backend_factory: Any, database_config: dict[str, Any]
) -> None:
    test_backend_factory(features=[scheduler_plugin({})], config=with_database(database_config))
    store = TaskStore("sched")
    hourly = settings_for(frequency={"hours": 1}, timeout={"minutes": 1})
    store.persist(
        "job",
        settings_for(frequency={"hours": 1}, timeout={"minutes": 1}, initial_delay={"days": 1}),
    )
    first = store.tasks.get(id="job").next_run_start_at
    store.persist("job", hourly)  # now + 1h is earlier than now + 1 day: it wins
    second = store.tasks.get(id="job").next_run_start_at
    assert second < first
    store.persist(
        "job", settings_for(frequency={"days": 2}, timeout={"minutes": 1})
    )  # later: the stored one stays
    assert store.tasks.get(id="job").next_run_start_at == second
    assert json.loads(store.tasks.get(id="job").settings_json)["cadence"] == "P2D"


def test_a_run_is_claimed_once_even_by_racing_instances(
    test_backend_factory: Any, database_config: dict[str, Any]
) -> None:
    test_backend_factory(features=[scheduler_plugin({})], config=with_database(database_config))
    store = TaskStore("sched")
    settings = settings_for(frequency={"hours": 1}, timeout={"minutes": 1})
    store.persist("job", settings)
    barrier = threading.Barrier(8)
    claims: list[Any] = []

    def race() -> None:
        from django.db import connections

        barrier.wait()
        claims.append(store.claim("job", settings.timeout_after))
        connections.close_all()

    threads = [threading.Thread(target=race) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    won = [c for c in claims if c is not None]
    assert len(won) == 1
    assert store.claim("job", settings.timeout_after) is None  # running: no second claim
    assert store.release("job", won[0].ticket, settings, None)
    assert store.claim("job", settings.timeout_after) is None  # released, but not due for an hour


def test_the_todo_plugin_purges_old_completed_todos(
    test_backend_factory: Any, database_config: dict[str, Any]
) -> None:
    from django.utils import timezone

    from todo.models import Todo

    config = with_database(database_config)
    config.update(
        {
            "todo": {
                "allowUnauthenticated": True,
                "purgeCompletedAfter": {"days": 30},
                "purgeSchedule": {"frequency": {"trigger": "manual"}, "timeout": {"minutes": 1}},
            }
        }
    )
    backend = test_backend_factory(features=["todo"], config=config)
    old = timezone.now() - timedelta(days=31)
    Todo.objects.create(title="old and done", completed=True, created_at=old)
    Todo.objects.create(title="old, not done", completed=False, created_at=old)
    Todo.objects.create(title="new and done", completed=True)

    assert (
        backend.client.post(
            "/api/todo/.backstage/scheduler/v1/tasks/purge-completed/trigger"
        ).status_code
        == 200
    )
    wait_until(lambda: not Todo.objects.filter(title="old and done").exists())
    assert sorted(Todo.objects.values_list("title", flat=True)) == ["new and done", "old, not done"]


def test_without_purge_completed_after_there_is_no_purge_task(test_backend_factory: Any) -> None:
    backend = test_backend_factory(
        features=["todo"], config={"todo": {"allowUnauthenticated": True}}
    )
    assert backend.client.get("/api/todo/.backstage/scheduler/v1/tasks").json() == {"tasks": []}


def test_a_bad_purge_schedule_fails_the_plugin(test_backend_factory: Any) -> None:
    with pytest.raises(BackendStartupError, match="purgeCompletedAfter"):
        test_backend_factory(features=["todo"], config={"todo": {"purgeCompletedAfter": "soon"}})


def test_get_scheduled_tasks_and_a_task_runner(test_backend_factory: Any) -> None:
    seen: dict[str, Any] = {}
    recorder = Recorder()
    test_backend_factory(features=[scheduler_plugin({}, seen)])
    scheduler = seen["scheduler"]
    runner = scheduler.create_scheduled_task_runner(
        {"frequency": {"milliseconds": 200}, "timeout": {"seconds": 5}}
    )
    runner.run(id="from-runner", fn=recorder)
    scheduler.schedule_task(
        id="local-one",
        fn=lambda: None,
        frequency={"hours": 1},
        timeout={"minutes": 1},
        scope="local",
    )
    assert scheduler.get_scheduled_tasks() == [
        {
            "id": "from-runner",
            "scope": "global",
            "settings": {"version": 2, "cadence": "PT0.2S", "timeoutAfterDuration": "PT5S"},
        },
        {
            "id": "local-one",
            "scope": "local",
            "settings": {"version": 2, "cadence": "PT1H", "timeoutAfterDuration": "PT1M"},
        },
    ]
    wait_until(lambda: len(recorder.runs) >= 2)


def test_an_async_init_schedules_with_aschedule_task(test_backend_factory: Any) -> None:
    recorder = Recorder()

    def register(env: Any) -> None:
        async def init(scheduler: Any) -> None:
            with pytest.raises(
                RuntimeError, match="from async code, use `await scheduler.aschedule_task"
            ):
                scheduler.schedule_task(
                    id="blocking", fn=recorder, frequency={"seconds": 1}, timeout={"seconds": 5}
                )
            await scheduler.aschedule_task(
                id="async", fn=recorder, frequency={"milliseconds": 200}, timeout={"seconds": 5}
            )

        env.register_init(deps={"scheduler": core_services.scheduler}, init=init)

    test_backend_factory(
        features=[create_backend_plugin(plugin_id="asyncsched", register=register, django_app=None)]
    )
    wait_until(lambda: len(recorder.runs) >= 2)
