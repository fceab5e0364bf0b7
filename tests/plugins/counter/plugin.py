"""Plugin 'counter': POST /api/counter/hits counts in the cache; a cache that is down counts from 0."""

from django.http import JsonResponse
from django.urls import path

from backstage_core import core_services, create_backend_plugin


def register(env):
    def init(http_router, cache):
        def hits(request):
            count = (cache.get("hits") or 0) + 1
            cache.set("hits", count)
            return JsonResponse({"hits": count})

        http_router.use([path("hits", hits)])
        http_router.add_auth_policy(path="/", allow="unauthenticated")

    env.register_init(
        deps={"http_router": core_services.http_router, "cache": core_services.cache}, init=init
    )


default = create_backend_plugin(plugin_id="counter", register=register, django_app=None)
