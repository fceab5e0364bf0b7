"""Plugin 'beta': POST/GET /api/beta/notes, open to unauthenticated callers."""

from django.http import HttpRequest, JsonResponse
from django.urls import path

from backstage_core import core_services, create_backend_plugin


def notes(request: HttpRequest) -> JsonResponse:
    from tests.plugins.beta.models import Note

    if request.method == "POST":
        Note.objects.create(text=request.body.decode())
    return JsonResponse([n.text for n in Note.objects.order_by("id")], safe=False)


def register(env):
    def init(http_router, database):
        http_router.use([path("notes", notes)])
        http_router.add_auth_policy(path="/", allow="unauthenticated")

    env.register_init(
        deps={"http_router": core_services.http_router, "database": core_services.database},
        init=init,
    )


default = create_backend_plugin(plugin_id="beta", register=register)
