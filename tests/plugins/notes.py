"""The test plugins alpha and beta: each stores notes in its own table named ``notes``.

POST /api/<id>/notes adds the request body as a note; GET lists them. Open to unauthenticated callers.
"""

from importlib import import_module

from django.http import HttpRequest, JsonResponse
from django.urls import path

from backstage_core import core_services, create_backend_plugin


def notes_plugin(plugin_id: str, app: str):
    def notes(request: HttpRequest) -> JsonResponse:
        note = import_module(f"{app}.models").Note
        if request.method == "POST":
            note.objects.create(text=request.body.decode())
        return JsonResponse([n.text for n in note.objects.order_by("id")], safe=False)

    def register(env):
        def init(http_router, database):
            http_router.use([path("notes", notes)])
            http_router.add_auth_policy(path="/", allow="unauthenticated")

        env.register_init(
            deps={"http_router": core_services.http_router, "database": core_services.database},
            init=init,
        )

    return create_backend_plugin(plugin_id=plugin_id, register=register, django_app=app)
