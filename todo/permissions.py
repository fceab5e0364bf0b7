"""The todo plugin's permissions, its ``todo-item`` resource type, and the rules policies can use.

from todo.permissions import todo_conditions, todo_item_delete_permission

class OnlyCreatorsDelete:
    def handle(self, request, user):
        if request.permission.name == todo_item_delete_permission.name and user is not None:
            return todo_conditions.create_conditional_decision(
                request.permission,
                todo_conditions.conditions.is_creator(claims=user.info.ownership_entity_refs),
            )
        return PolicyDecision(AuthorizeResult.ALLOW)
"""

from __future__ import annotations

from django.db.models import Q
from rest_framework import serializers

from backstage_core.permissions import (
    create_condition_exports,
    create_permission,
    create_permission_resource_ref,
    create_permission_rule,
)

__all__ = [
    "RESOURCE_TYPE",
    "has_entity_ref",
    "is_creator",
    "todo_conditions",
    "todo_item",
    "todo_item_create_permission",
    "todo_item_delete_permission",
    "todo_item_read_permission",
    "todo_item_update_permission",
    "todo_permissions",
    "todo_rules",
]

RESOURCE_TYPE = "todo-item"

todo_item = create_permission_resource_ref(plugin_id="todo", resource_type=RESOURCE_TYPE)

todo_item_create_permission = create_permission(
    name="todo.item.create", attributes={"action": "create"}
)
todo_item_read_permission = create_permission(
    name="todo.item.read", attributes={"action": "read"}, resource_type=RESOURCE_TYPE
)
todo_item_update_permission = create_permission(
    name="todo.item.update", attributes={"action": "update"}, resource_type=RESOURCE_TYPE
)
todo_item_delete_permission = create_permission(
    name="todo.item.delete", attributes={"action": "delete"}, resource_type=RESOURCE_TYPE
)
todo_permissions = [
    todo_item_create_permission,
    todo_item_read_permission,
    todo_item_update_permission,
    todo_item_delete_permission,
]


class ClaimsParams(serializers.Serializer):
    claims = serializers.ListField(
        child=serializers.CharField(),
        help_text="Entity refs of a user and their groups; the todo's creator must be one of them",
    )


class EntityRefParams(serializers.Serializer):
    entityRef = serializers.CharField(help_text="The entity the todo is about")  # noqa: N815


is_creator = create_permission_rule(
    name="IS_CREATOR",
    description="Allow todos created by one of the given entities",
    resource_ref=todo_item,
    params=ClaimsParams,
    apply=lambda todo, params: todo.created_by in params["claims"],
    to_query=lambda params: Q(created_by__in=params["claims"]),
)

has_entity_ref = create_permission_rule(
    name="HAS_ENTITY_REF",
    description="Allow todos about the given entity",
    resource_ref=todo_item,
    params=EntityRefParams,
    apply=lambda todo, params: todo.entity_ref == params["entityRef"],
    to_query=lambda params: Q(entity_ref=params["entityRef"]),
)

todo_rules = [is_creator, has_entity_ref]

todo_conditions = create_condition_exports(
    resource_ref=todo_item, rules={"is_creator": is_creator, "has_entity_ref": has_entity_ref}
)
