"""The permissionsRegistry service: what a plugin checks, and how its resources meet conditions.

    permissions_registry.add_resource_type(
        resource_ref=todo_item,
        permissions=[todo_item_read, todo_item_update, todo_item_delete],
        rules=[is_creator],
        get_resources=lambda ids: [todos.get(i) for i in ids],
    )
    permissions_registry.add_permissions([todo_item_create])

Everything is declared during the plugin's init (afterwards it is an error). Each plugin then
answers, behind its credentials barrier:

- ``GET /api/<id>/.well-known/backstage/permissions/metadata``: its permissions and rules;
- ``POST /api/<id>/.well-known/backstage/permissions/apply-conditions``: whether resources meet
  conditions a policy returned (for plugins and the permission backend, not for users directly).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from backstage_core.errors import InputError, NotAllowedError, NotImplementedError
from backstage_core.permissions.common import (
    AuthorizeResult,
    Permission,
    check_resource_ref,
    read_items,
)
from backstage_core.permissions.rules import (
    PermissionResourceRef,
    PermissionRule,
    apply_conditions,
    validate_criteria,
)
from backstage_core.services.definitions import core_services
from backstage_core.services.local_plugins import local_plugins_ref
from backstage_core.wiring.features import ServiceFactory, create_service_factory

__all__ = ["PermissionRuleset", "PermissionsRegistryService", "permissions_registry_factory"]

METADATA_PATH = ".well-known/backstage/permissions/metadata"
APPLY_CONDITIONS_PATH = ".well-known/backstage/permissions/apply-conditions"


@dataclass
class _ResourceType:
    """A registered resource type and how to load its resources by ref."""

    resource_ref: PermissionResourceRef
    get_resources: Callable[[list[str]], Sequence[Any]] | None


class PermissionRuleset:
    """The rules of one resource type, by name."""

    def __init__(self, rules: Mapping[str, PermissionRule], resource_type: str) -> None:
        self._rules = rules
        self._resource_type = resource_type

    def get_rule_by_name(self, name: str) -> PermissionRule:
        rule = self._rules.get(name)
        if rule is None:
            raise LookupError(
                f"Permission rule '{name}' does not exist for resource type '{self._resource_type}'"
            )
        return rule

    __call__ = get_rule_by_name


class PermissionsRegistryService:
    """One plugin's permissions, rules and resource types."""

    def __init__(self, plugin_id: str) -> None:
        self.plugin_id = plugin_id
        self._permissions: dict[str, Permission] = {}
        self._rules: dict[str, dict[str, PermissionRule]] = {}
        self._resource_types: dict[str, _ResourceType] = {}
        self.started = False

    def _check_open(self, what: str) -> None:
        if self.started:
            raise RuntimeError(f"Cannot add {what} after the plugin has started")

    def _check_owner(self, resource_ref: PermissionResourceRef) -> None:
        if resource_ref.plugin_id != self.plugin_id:
            raise ValueError(
                f"Resource type '{resource_ref.resource_type}' belongs to plugin "
                f"'{resource_ref.plugin_id}', but was used with plugin '{self.plugin_id}'"
            )

    def add_permissions(self, permissions: Iterable[Permission]) -> None:
        self._check_open("permissions")
        for permission in permissions:
            self._permissions[permission.name] = permission

    def add_permission_rules(self, rules: Iterable[PermissionRule]) -> None:
        self._check_open("permission rules")
        for rule in rules:
            existing = self._rules.setdefault(rule.resource_type, {})
            if rule.name in existing:
                raise ValueError(
                    f"Refused to add permission rule for type '{rule.resource_type}' with name "
                    f"'{rule.name}' because it already exists"
                )
            existing[rule.name] = rule

    def add_resource_type(
        self,
        *,
        resource_ref: PermissionResourceRef,
        rules: Iterable[PermissionRule] = (),
        permissions: Iterable[Permission] = (),
        get_resources: Callable[[list[str]], Sequence[Any]] | None = None,
    ) -> None:
        self._check_open("permission resource types")
        self._check_owner(resource_ref)
        resource_type = resource_ref.resource_type
        if resource_type in self._resource_types:
            raise ValueError(
                f"Refused to add permission resource with type '{resource_type}' because it "
                f"already exists"
            )
        self._resource_types[resource_type] = _ResourceType(resource_ref, get_resources)
        self.add_permission_rules(rules)
        self.add_permissions(permissions)

    def get_permission_ruleset(self, resource_ref: PermissionResourceRef) -> PermissionRuleset:
        self._check_owner(resource_ref)
        return PermissionRuleset(
            self._rules.get(resource_ref.resource_type, {}), resource_ref.resource_type
        )

    # -- answering -----------------------------------------------------------------------------

    def metadata(self) -> dict[str, Any]:
        return {
            "permissions": [p.to_json() for p in self._permissions.values()],
            "rules": [r.to_json() for rules in self._rules.values() for r in rules.values()],
        }

    def apply_conditions(
        self, resource_type: str, items: Sequence[tuple[str | list[str], Any]]
    ) -> list[AuthorizeResult | list[AuthorizeResult]]:
        """For each (resource ref or refs, conditions): whether each resource meets them."""
        entry = self._resource_types.get(resource_type)
        if entry is None:
            raise InputError(f"Unexpected resource types: {resource_type}.")
        if entry.get_resources is None:
            raise NotImplementedError(
                f"This plugin does not expose any permission rule or can't evaluate the "
                f"conditions request for {resource_type}"
            )
        refs = list(
            dict.fromkeys(r for ref, _ in items for r in ([ref] if isinstance(ref, str) else ref))
        )
        resources = dict(zip(refs, entry.get_resources(refs), strict=True)) if refs else {}
        ruleset = self.get_permission_ruleset(entry.resource_ref)

        def result(ref: str, conditions: Any) -> AuthorizeResult:
            met = apply_conditions(conditions, resources.get(ref), ruleset)
            return AuthorizeResult.ALLOW if met else AuthorizeResult.DENY

        return [
            result(ref, conditions)
            if isinstance(ref, str)
            else [result(r, conditions) for r in ref]
            for ref, conditions in items
        ]

    def urls(self, http_auth: Any) -> list[Any]:
        from django.urls import path

        from backstage_core.http.errors import json_response
        from backstage_core.http.urls import not_found

        def metadata(request: Any) -> Any:
            if request.method != "GET":
                return not_found(request)
            return json_response(self.metadata())

        def apply(request: Any) -> Any:
            if request.method != "POST":
                return not_found(request)
            credentials = http_auth.credentials(request, allow=["user", "service"])
            principal = credentials.principal
            if principal.type == "user" and principal.actor is None:
                raise NotAllowedError()
            items = _parse_apply_request(request.body)
            unknown = sorted({t for _, _, t, _ in items if t not in self._resource_types})
            if unknown:
                raise InputError(f"Unexpected resource types: {', '.join(unknown)}.")
            results: dict[str, Any] = {}
            for resource_type in dict.fromkeys(t for _, _, t, _ in items):
                batch = [(i, ref, c) for i, ref, t, c in items if t == resource_type]
                answers = self.apply_conditions(resource_type, [(ref, c) for _, ref, c in batch])
                for (item_id, _, _), answer in zip(batch, answers, strict=True):
                    results[item_id] = answer
            return json_response(
                {"items": [{"id": i, "result": results[i]} for i, _, _, _ in items]}
            )

        return [
            path(METADATA_PATH, metadata, name="permissions-metadata"),
            path(APPLY_CONDITIONS_PATH, apply, name="permissions-apply-conditions"),
        ]


def _parse_apply_request(body: bytes) -> list[tuple[str, Any, str, Any]]:
    """(id, resourceRef, resourceType, conditions) of each item; 400 for a malformed body."""

    def read(item: dict[str, Any], where: str) -> tuple[str, Any, str, Any]:
        check_resource_ref(item.get("resourceRef"), where)
        if not isinstance(item.get("resourceType"), str):
            raise ValueError(f"{where}.resourceType must be a string")
        validate_criteria(item.get("conditions"), f"{where}.conditions")
        return item["id"], item["resourceRef"], item["resourceType"], item["conditions"]

    return read_items(body, read)


def permissions_registry_factory() -> ServiceFactory:
    async def factory(
        plugin: Any, lifecycle: Any, http_router: Any, http_auth: Any, local: Any
    ) -> PermissionsRegistryService:
        registry = PermissionsRegistryService(plugin.get_id())

        def started() -> None:
            registry.started = True

        lifecycle.add_startup_hook(started)
        http_router.use(registry.urls(http_auth))
        local.provide(registry.plugin_id, "permissions", registry)
        return registry

    return create_service_factory(
        service=core_services.permissions_registry,
        deps={
            "plugin": core_services.plugin_metadata,
            "lifecycle": core_services.lifecycle,
            "http_router": core_services.http_router,
            "http_auth": core_services.http_auth,
            "local": local_plugins_ref,
        },
        factory=factory,
    )
