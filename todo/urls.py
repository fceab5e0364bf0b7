"""The todo plugin's routes, relative to its mount (``/api/todo``); a trailing slash is optional."""

from typing import Any

from rest_framework.routers import SimpleRouter

from todo.views import TodoViewSet


def todo_router(logger: Any, *, http_auth: Any, permissions: Any) -> SimpleRouter:
    """``/todos`` and ``/todos/<id>``, served by a TodoViewSet with the plugin's services."""
    router = SimpleRouter()
    router.trailing_slash = "/?"
    services = {"logger": logger, "http_auth": http_auth, "permissions": permissions}
    router.register("todos", type("TodoViewSet", (TodoViewSet,), services), basename="todo")
    return router
