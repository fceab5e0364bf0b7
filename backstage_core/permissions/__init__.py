"""The permission framework: permissions, decisions, policies, rules and conditions.

    from backstage_core.permissions import AuthorizeResult, create_permission

    todo_item_create = create_permission(name="todo.item.create", attributes={"action": "create"})

    decision, = permissions.authorize([{"permission": todo_item_create}], credentials=credentials)
    if decision.result is not AuthorizeResult.ALLOW:
        raise NotAllowedError()

The ``permissions`` service decides (``core_services.permissions``); plugins declare what they
check with the ``permissions_registry`` service.
"""

from backstage_core.permissions.common import (
    ACTIONS,
    AuthorizeResult,
    Permission,
    PolicyDecision,
    all_of,
    any_of,
    create_permission,
    is_create_permission,
    is_delete_permission,
    is_permission,
    is_read_permission,
    is_resource_permission,
    is_update_permission,
    not_,
)
from backstage_core.permissions.policy import (
    AllowAllPolicy,
    PermissionPolicy,
    PolicyQuery,
    PolicyQueryUser,
)
from backstage_core.permissions.rules import (
    PermissionResourceRef,
    PermissionRule,
    apply_conditions,
    create_condition_authorizer,
    create_condition_exports,
    create_condition_factory,
    create_condition_transformer,
    create_permission_resource_ref,
    create_permission_rule,
)

__all__ = [
    "ACTIONS",
    "AllowAllPolicy",
    "AuthorizeResult",
    "Permission",
    "PermissionPolicy",
    "PermissionResourceRef",
    "PermissionRule",
    "PolicyDecision",
    "PolicyQuery",
    "PolicyQueryUser",
    "all_of",
    "any_of",
    "apply_conditions",
    "create_condition_authorizer",
    "create_condition_exports",
    "create_condition_factory",
    "create_condition_transformer",
    "create_permission",
    "create_permission_resource_ref",
    "create_permission_rule",
    "is_create_permission",
    "is_delete_permission",
    "is_permission",
    "is_read_permission",
    "is_resource_permission",
    "is_update_permission",
    "not_",
]
