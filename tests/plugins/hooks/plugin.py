"""Plugin 'hooks': records its startup and shutdown hooks in the file ``hooks.file`` names.

``hooks.failShutdown: true`` makes its shutdown hook fail; ``hooks.shutdownSeconds`` makes it slow.
"""

import time
from pathlib import Path

from django.http import JsonResponse
from django.urls import path

from backstage_core import core_services, create_backend_plugin


def register(env):
    def init(config, lifecycle, root_lifecycle, http_router, logger):
        record = Path(config.get_string("hooks.file"))

        def write(line: str) -> None:
            with record.open("a") as handle:
                handle.write(line + "\n")

        def shutdown() -> None:
            time.sleep(config.get_optional_number("hooks.shutdownSeconds") or 0)
            if config.get_optional_boolean("hooks.failShutdown"):
                raise RuntimeError("shutdown hook failed on purpose")
            write("plugin shutdown")

        write("init")
        lifecycle.add_startup_hook(lambda: write("plugin startup"))
        lifecycle.add_shutdown_hook(shutdown)
        root_lifecycle.add_shutdown_hook(lambda: write("root shutdown"))
        http_router.use([path("ping", lambda request: JsonResponse({"pong": True}))])
        http_router.add_auth_policy(path="/ping", allow="unauthenticated")

    env.register_init(
        deps={
            "config": core_services.root_config,
            "lifecycle": core_services.lifecycle,
            "root_lifecycle": core_services.root_lifecycle,
            "http_router": core_services.http_router,
            "logger": core_services.logger,
        },
        init=init,
    )


default = create_backend_plugin(plugin_id="hooks", register=register, django_app=None)
