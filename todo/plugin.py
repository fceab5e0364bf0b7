"""The todo backend plugin, as the seed's plugin.ts: its routes on the plugin's HTTP router.

With ``todo.allowUnauthenticated: true`` (the shipped development config) every route is open, as
the seed's ``addAuthPolicy({path: '/', allow: 'unauthenticated'})``; without it, callers need
credentials.
"""

from typing import Any

from backstage_core import core_services, create_backend_plugin


def register(env: Any) -> None:
    def init(http_router: Any, database: Any, logger: Any, config: Any) -> None:
        from todo.urls import todo_router

        http_router.use(todo_router(logger))
        if config.get_optional_boolean("todo.allowUnauthenticated"):
            http_router.add_auth_policy(path="/", allow="unauthenticated")
        logger.info("Todo plugin initialized")

    env.register_init(
        deps={
            "http_router": core_services.http_router,
            "database": core_services.database,
            "logger": core_services.logger,
            "config": core_services.root_config,
        },
        init=init,
    )


todo_plugin = create_backend_plugin(plugin_id="todo", register=register)
