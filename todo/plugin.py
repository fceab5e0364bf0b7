"""The todo backend plugin, as the seed's plugin.ts: its routes on the plugin's HTTP router.

It declares its permissions (``todo.item.create``, ``.read``, ``.update``, ``.delete``) and the
``todo-item`` resource type with its rules (``todo.permissions``), so policies can decide on them.

With ``todo.allowUnauthenticated: true`` (the shipped development config) every route is open, as
the seed's ``addAuthPolicy({path: '/', allow: 'unauthenticated'})``; without it, callers need
credentials. With ``todo.purgeCompletedAfter`` (a duration, e.g. ``{days: 30}``) a scheduled task
deletes completed todos created longer ago than that, once across all instances, on
``todo.purgeSchedule`` (default: every hour, 5 minute timeout).
"""

from datetime import timedelta
from typing import Any

from backstage_core import core_services, create_backend_plugin

DEFAULT_PURGE_SCHEDULE = {"frequency": {"hours": 1}, "timeout": {"minutes": 5}}


def register(env: Any) -> None:
    def init(
        http_router: Any,
        database: Any,
        logger: Any,
        config: Any,
        scheduler: Any,
        http_auth: Any,
        permissions: Any,
        permissions_registry: Any,
    ) -> None:
        from todo.permissions import todo_item, todo_permissions, todo_rules
        from todo.urls import todo_router

        permissions_registry.add_resource_type(
            resource_ref=todo_item,
            permissions=todo_permissions[1:],
            rules=todo_rules,
            get_resources=load_todos,
        )
        permissions_registry.add_permissions(todo_permissions[:1])
        http_router.use(todo_router(logger, http_auth=http_auth, permissions=permissions))
        if config.get_optional_boolean("todo.allowUnauthenticated"):
            http_router.add_auth_policy(path="/", allow="unauthenticated")
        if config.has("todo.purgeCompletedAfter"):
            schedule_purge(config, scheduler, logger)
        logger.info("Todo plugin initialized")

    env.register_init(
        deps={
            "http_router": core_services.http_router,
            "database": core_services.database,
            "logger": core_services.logger,
            "config": core_services.root_config,
            "scheduler": core_services.scheduler,
            "http_auth": core_services.http_auth,
            "permissions": core_services.permissions,
            "permissions_registry": core_services.permissions_registry,
        },
        init=init,
    )


def load_todos(refs: list[str]) -> list[Any]:
    """The todos with these ids (None for each that does not exist), for permission conditions."""
    import uuid

    from todo.models import Todo

    ids = {}
    for ref in refs:
        try:
            ids[ref] = uuid.UUID(ref)
        except ValueError:
            ids[ref] = None
    found = Todo.objects.in_bulk([i for i in ids.values() if i is not None])
    return [found.get(ids[ref]) if ids[ref] is not None else None for ref in refs]


def schedule_purge(config: Any, scheduler: Any, logger: Any) -> None:
    from backstage_core.config.duration import read_duration_from_config
    from backstage_core.services.scheduler import read_task_schedule_from_config
    from todo.purge import purge_completed

    older_than = read_duration_from_config(config, "todo.purgeCompletedAfter")
    schedule = DEFAULT_PURGE_SCHEDULE
    if config.has("todo.purgeSchedule"):
        schedule = read_task_schedule_from_config(config.get_config("todo.purgeSchedule"))

    def purge(signal: Any) -> None:
        deleted = purge_completed(older_than, signal)
        if deleted:
            logger.info(
                f"Purged {deleted} completed todos created more than {_describe(older_than)} ago"
            )

    scheduler.schedule_task(id="purge-completed", fn=purge, **schedule)


def _describe(duration: timedelta) -> str:
    return f"{duration.total_seconds():g} seconds"


todo_plugin = create_backend_plugin(plugin_id="todo", register=register)
