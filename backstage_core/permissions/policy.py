"""Permission policies: the one place that decides, for every permission request.

    class OnlyCreatorsDelete:
        def handle(self, request: PolicyQuery, user: PolicyQueryUser | None) -> PolicyDecision:
            if request.permission.name == "todo.item.delete" and user is not None:
                return todo_conditions.create_conditional_decision(
                    request.permission,
                    todo_conditions.conditions.is_creator(claims=user.info.ownership_entity_refs),
                )
            return PolicyDecision(AuthorizeResult.ALLOW)

Named in config (``permission.policy: myproject.policies.OnlyCreatorsDelete``) or given to
``permissions_factory(policy=...)``. A policy sees the permission and the user (their credentials
and their ownership refs), never the resource: conditions are how it speaks about resources.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from backstage_core.permissions.common import AuthorizeResult, Permission, PolicyDecision

__all__ = ["AllowAllPolicy", "PermissionPolicy", "PolicyQuery", "PolicyQueryUser", "load_policy"]


@dataclass(frozen=True)
class PolicyQuery:
    """What a permission policy is asked about: one permission."""

    permission: Permission


@dataclass(frozen=True)
class PolicyQueryUser:
    """The user a policy decides for: their credentials and their user info."""

    credentials: Any  # BackstageCredentials of a user principal
    info: Any  # BackstageUserInfo: user_entity_ref, ownership_entity_refs


class PermissionPolicy(Protocol):
    def handle(self, request: PolicyQuery, user: PolicyQueryUser | None) -> Any: ...


class AllowAllPolicy:
    """Allows everything: for development, and for trying permissions out."""

    def handle(self, request: PolicyQuery, user: PolicyQueryUser | None) -> PolicyDecision:
        return PolicyDecision(AuthorizeResult.ALLOW)


def load_policy(value: Any) -> PermissionPolicy:
    """A policy from a dotted path (``pkg.module.Class`` or ``pkg.module:name``), class or instance."""
    if isinstance(value, str):
        from django.utils.module_loading import import_string

        try:
            value = import_string(value.replace(":", "."))
        except ImportError as error:
            raise ImportError(
                f"Could not import the permission policy '{value}': {error}"
            ) from error
    if isinstance(value, type):
        value = value()
    if hasattr(value, "handle"):
        return value
    if callable(value):

        class _FunctionPolicy:
            def handle(self, request: PolicyQuery, user: PolicyQueryUser | None) -> Any:
                return value(request, user)

        return _FunctionPolicy()
    raise TypeError(
        f"{value!r} is not a permission policy: it needs a handle(request, user) method"
    )
