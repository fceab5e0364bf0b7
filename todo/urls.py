"""The todo plugin's routes, relative to its mount (``/api/todo``); a trailing slash is optional."""

from typing import Any

from rest_framework.routers import SimpleRouter

from todo.views import TodoViewSet


def todo_router(logger: Any) -> SimpleRouter:
    """``/todos`` and ``/todos/<id>``, served by a TodoViewSet that logs with ``logger``."""
    router = SimpleRouter()
    router.trailing_slash = "/?"
    router.register(
        "todos", type("TodoViewSet", (TodoViewSet,), {"logger": logger}), basename="todo"
    )
    return router
