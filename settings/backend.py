"""The backend: the one place where plugins are added (Backstage's packages/backend/src/index.ts).

Adding a plugin here also installs its Django app; overriding a core service is adding its factory:

    backend.add("todo")
    backend.add(http_router_factory(get_path=lambda plugin_id: f"/plugins/{plugin_id}"))
"""

from backstage_core import create_backend

backend = create_backend()
backend.add("backstage_core.plugins.auth")
backend.add("backstage_core.plugins.permission")
backend.add("todo")
