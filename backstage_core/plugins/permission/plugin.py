"""The permission backend plugin (id ``permission``), as Backstage's permission backend.

- ``POST /api/permission/authorize`` with ``{"items": [{"id", "permission", "resourceRef"?}]}``
  answers ``{"items": [{"id", "result", ...}]}``: the policy's decisions (conditional ones with
  their conditions when no resource is named; settled by the owning plugin when one is). Users and
  other plugins acting for users may call it; service tokens get 403.
- ``GET /api/permission/health``: ``{"status": "ok"}``, open to everyone.
"""

from __future__ import annotations

from typing import Any

from backstage_core import core_services, create_backend_plugin

__all__ = ["permission_plugin"]

RESOURCE_REF_REQUIRED = (
    "Resource permissions require a resourceRef to be set. Direct user requests without a "
    "resourceRef are not allowed."
)


def _parse(body: bytes) -> list[tuple[str, Any, Any]]:
    """(id, permission, resourceRef) of each item of an /authorize request; 400 when malformed."""
    from backstage_core.permissions import Permission
    from backstage_core.permissions.common import check_resource_ref, read_items

    def read(item: dict[str, Any], where: str) -> tuple[str, Any, Any]:
        try:
            permission = Permission.from_json(item.get("permission"))
        except ValueError as error:
            raise ValueError(f"{where}.{error}") from error
        ref = item.get("resourceRef")
        if ref is not None:
            if permission.resource_type is None:
                raise ValueError(f"{where}.resourceRef is only allowed for resource permissions")
            check_resource_ref(ref, where)
        return item["id"], permission, ref

    return read_items(body, read)


def register(env: Any) -> None:
    def init(http_router: Any, http_auth: Any, permissions: Any, config: Any, logger: Any) -> None:
        from django.urls import path

        from backstage_core.errors import InputError
        from backstage_core.http.errors import json_response
        from backstage_core.http.urls import not_found

        if not config.get_optional_boolean("permission.enabled"):
            logger.warn(
                "Permission backend started with permissions disabled. Enable permissions by "
                "setting permission.enabled=true."
            )
        open_by_default = bool(
            config.get_optional_boolean("backend.auth.dangerouslyDisableDefaultAuthPolicy")
        )

        def authorize(request: Any) -> Any:
            if request.method != "POST":
                return not_found(request)
            credentials = http_auth.credentials(request, allow=["user", "none"])
            items = _parse(request.body)
            principal = credentials.principal
            direct = (principal.type == "none" and not open_by_default) or (
                principal.type == "user" and principal.actor is None
            )
            if direct and any(p.resource_type and ref is None for _, p, ref in items):
                raise InputError(RESOURCE_REF_REQUIRED)
            decisions = permissions.decide(
                [{"permission": p, "resource_ref": ref} for _, p, ref in items],
                credentials=credentials,
            )
            body = []
            for (item_id, _, _), decision in zip(items, decisions, strict=True):
                if isinstance(decision, list):
                    body.append({"id": item_id, "result": [d.result.value for d in decision]})
                else:
                    body.append({"id": item_id, **decision.to_json()})
            return json_response({"items": body})

        def health(request: Any) -> Any:
            return json_response({"status": "ok"})

        http_router.use([path("authorize", authorize), path("health", health)])
        http_router.add_auth_policy(path="/health", allow="unauthenticated")

    env.register_init(
        deps={
            "http_router": core_services.http_router,
            "http_auth": core_services.http_auth,
            "permissions": core_services.permissions,
            "config": core_services.root_config,
            "logger": core_services.logger,
        },
        init=init,
    )


permission_plugin = create_backend_plugin(
    plugin_id="permission", register=register, django_app=None
)
