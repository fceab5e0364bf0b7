"""Permissions and decisions, as ``@backstage/plugin-permission-common``.

    todo_item_delete = create_permission(
        name="todo.item.delete", attributes={"action": "delete"}, resource_type="todo-item"
    )
    decision.result is AuthorizeResult.ALLOW

A permission is *basic* (a yes or no for the whole action) or a *resource* permission (about one
resource of a type, which a policy may answer with conditions the owning plugin checks). Everything
here has the JSON shape Backstage sends over the wire (``to_json``/``from_json``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

__all__ = [
    "ACTIONS",
    "AuthorizeResult",
    "Permission",
    "PolicyDecision",
    "all_of",
    "any_of",
    "create_permission",
    "is_create_permission",
    "is_delete_permission",
    "is_permission",
    "is_read_permission",
    "is_resource_permission",
    "is_update_permission",
    "not_",
    "to_decision",
]

ACTIONS = ("create", "read", "update", "delete")


class AuthorizeResult(StrEnum):
    """What a policy says: allow, deny, or allow where conditions hold."""

    ALLOW = "ALLOW"
    DENY = "DENY"
    CONDITIONAL = "CONDITIONAL"


@dataclass(frozen=True)
class Permission:
    """A named permission; ``resource_type`` makes it a resource permission."""

    name: str
    attributes: Mapping[str, Any] = field(default_factory=dict)
    resource_type: str | None = None

    @property
    def type(self) -> Literal["basic", "resource"]:
        return "resource" if self.resource_type is not None else "basic"

    @property
    def action(self) -> str | None:
        return self.attributes.get("action")

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.type,
            "name": self.name,
            "attributes": dict(self.attributes),
        }
        if self.resource_type is not None:
            body["resourceType"] = self.resource_type
        return body

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Permission:
        """A permission from its JSON; ValueError when the shape is wrong."""
        if not isinstance(data, Mapping):
            raise ValueError("permission must be an object")
        kind, name, attributes = data.get("type"), data.get("name"), data.get("attributes")
        if kind not in ("basic", "resource"):
            raise ValueError("permission.type must be 'basic' or 'resource'")
        if not isinstance(name, str) or not name:
            raise ValueError("permission.name must be a non-empty string")
        if not isinstance(attributes, Mapping):
            raise ValueError("permission.attributes must be an object")
        action = attributes.get("action")
        if action is not None and action not in ACTIONS:
            raise ValueError(f"permission.attributes.action must be one of {', '.join(ACTIONS)}")
        resource_type = data.get("resourceType")
        if kind == "resource" and (not isinstance(resource_type, str) or not resource_type):
            raise ValueError("permission.resourceType is required for resource permissions")
        return cls(name, dict(attributes), resource_type if kind == "resource" else None)


def create_permission(
    *, name: str, attributes: Mapping[str, Any] | None = None, resource_type: str | None = None
) -> Permission:
    """A basic permission, or a resource permission when ``resource_type`` is given."""
    attributes = dict(attributes or {})
    action = attributes.get("action")
    if action is not None and action not in ACTIONS:
        raise ValueError(
            f"Invalid permission action '{action}', expected one of {', '.join(ACTIONS)}"
        )
    return Permission(name, attributes, resource_type)


def is_resource_permission(permission: Permission, resource_type: str | None = None) -> bool:
    if permission.resource_type is None:
        return False
    return resource_type is None or permission.resource_type == resource_type


def is_permission(permission: Permission, other: Permission) -> bool:
    return permission.name == other.name


def is_create_permission(permission: Permission) -> bool:
    return permission.action == "create"


def is_read_permission(permission: Permission) -> bool:
    return permission.action == "read"


def is_update_permission(permission: Permission) -> bool:
    return permission.action == "update"


def is_delete_permission(permission: Permission) -> bool:
    return permission.action == "delete"


def all_of(*criteria: Any) -> dict[str, Any]:
    return {"allOf": list(criteria)}


def any_of(*criteria: Any) -> dict[str, Any]:
    return {"anyOf": list(criteria)}


def not_(criteria: Any) -> dict[str, Any]:
    return {"not": criteria}


@dataclass(frozen=True)
class PolicyDecision:
    """A decision: ALLOW or DENY, or CONDITIONAL with the owning plugin, resource type, conditions."""

    result: AuthorizeResult
    plugin_id: str | None = None
    resource_type: str | None = None
    conditions: Any = None

    def to_json(self) -> dict[str, Any]:
        if self.result is not AuthorizeResult.CONDITIONAL:
            return {"result": self.result.value}
        return {
            "result": self.result.value,
            "pluginId": self.plugin_id,
            "resourceType": self.resource_type,
            "conditions": self.conditions,
        }


ALLOW = PolicyDecision(AuthorizeResult.ALLOW)
DENY = PolicyDecision(AuthorizeResult.DENY)


def to_decision(value: Any) -> PolicyDecision:
    """A decision from a policy's answer: a PolicyDecision, a result, or the JSON shape."""
    if isinstance(value, PolicyDecision):
        return value
    if isinstance(value, AuthorizeResult | str):
        result = AuthorizeResult(value)
        if result is AuthorizeResult.CONDITIONAL:
            raise ValueError(
                "A conditional decision needs its plugin, resource type and conditions"
            )
        return PolicyDecision(result)
    if isinstance(value, Mapping):
        result = AuthorizeResult(value.get("result"))
        if result is not AuthorizeResult.CONDITIONAL:
            return PolicyDecision(result)
        return PolicyDecision(
            result,
            plugin_id=value.get("pluginId") or value.get("plugin_id"),
            resource_type=value.get("resourceType") or value.get("resource_type"),
            conditions=value.get("conditions"),
        )
    raise TypeError(f"Invalid policy decision {value!r}")


def read_items(body: bytes, read_item: Any) -> list[Any]:
    """The ``items`` of a JSON request body (``{"items": [...]}``), each read by
    ``read_item(item, "items[i]")``, which raises ValueError naming what is wrong; InputError (400)
    for anything malformed."""
    import json

    from backstage_core.errors import InputError

    try:
        data = json.loads(body or b"null")
        if not isinstance(data, dict) or not isinstance(data.get("items"), list):
            raise ValueError("body must be an object with an items array")
        items = []
        for index, item in enumerate(data["items"]):
            where = f"items[{index}]"
            if not isinstance(item, dict):
                raise ValueError(f"{where} must be an object")
            if not isinstance(item.get("id"), str):
                raise ValueError(f"{where}.id must be a string")
            items.append(read_item(item, where))
        return items
    except ValueError as error:
        raise InputError(str(error)) from error


def check_resource_ref(ref: Any, where: str) -> None:
    """A resource ref, or several: a string or a non-empty array of strings."""
    several = isinstance(ref, list) and ref and all(isinstance(r, str) for r in ref)
    if not isinstance(ref, str) and not several:
        raise ValueError(f"{where}.resourceRef must be a string or a non-empty array")
