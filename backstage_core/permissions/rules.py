"""Permission rules and conditions, as ``@backstage/plugin-permission-node``.

    todo_item = create_permission_resource_ref(plugin_id="todo", resource_type="todo-item")

    is_creator = create_permission_rule(
        name="IS_CREATOR",
        description="Allow todos created by one of the given users or groups",
        resource_ref=todo_item,
        params=ClaimsParams,                                  # a DRF serializer, or None
        apply=lambda todo, params: todo.created_by in params["claims"],
        to_query=lambda params: Q(created_by__in=params["claims"]),
    )
    todo_conditions = create_condition_exports(resource_ref=todo_item, rules={"is_creator": is_creator})

    # in a policy:
    todo_conditions.create_conditional_decision(
        permission, todo_conditions.conditions.is_creator(claims=user.info.ownership_entity_refs)
    )

A rule answers for one resource (``apply``) and for a query (``to_query``): conditions are checked
against a loaded resource when one is authorized, and turned into a query (a Django ``Q``) to filter
a list. Criteria are Backstage's JSON: ``{"allOf": [...]}``, ``{"anyOf": [...]}``, ``{"not": ...}``
and leaves ``{"rule", "resourceType", "params"}``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import reduce
from types import SimpleNamespace
from typing import Any

from backstage_core.errors import InputError
from backstage_core.permissions.common import AuthorizeResult, Permission, PolicyDecision

__all__ = [
    "PermissionResourceRef",
    "PermissionRule",
    "apply_conditions",
    "create_condition_authorizer",
    "create_condition_exports",
    "create_condition_factory",
    "create_condition_transformer",
    "create_permission_resource_ref",
    "create_permission_rule",
    "params_schema",
    "validate_criteria",
]

EMPTY_PARAMS_SCHEMA = {
    "type": "object",
    "properties": {},
    "additionalProperties": False,
    "$schema": "http://json-schema.org/draft-07/schema#",
}


@dataclass(frozen=True)
class PermissionResourceRef:
    """A plugin's resource type, which its permission rules and conditions are about."""

    plugin_id: str
    resource_type: str


def create_permission_resource_ref(*, plugin_id: str, resource_type: str) -> PermissionResourceRef:
    return PermissionResourceRef(plugin_id, resource_type)


@dataclass(frozen=True)
class PermissionRule:
    """A named check on resources of one type, for one resource and for a query."""

    name: str
    description: str
    resource_type: str
    apply: Callable[[Any, Mapping[str, Any]], bool]
    to_query: Callable[[Mapping[str, Any]], Any]
    params: Any = None  # a DRF Serializer class validating the params, or None for no params

    def validate_params(self, params: Any) -> dict[str, Any]:
        if self.params is None:
            return dict(params or {})
        serializer = self.params(data=params if params is not None else {})
        if not serializer.is_valid():
            cause = ValueError(json.dumps(serializer.errors, default=str))
            raise InputError("Parameters to rule are invalid", cause)
        return dict(serializer.validated_data)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "resourceType": self.resource_type,
            "paramsSchema": params_schema(self.params),
        }


def params_schema(serializer_class: Any) -> dict[str, Any]:
    """The JSON schema of a rule's params (from the DRF serializer that validates them)."""
    if serializer_class is None:
        return dict(EMPTY_PARAMS_SCHEMA)
    import warnings

    from rest_framework.schemas.openapi import AutoSchema

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        schema = AutoSchema().map_serializer(serializer_class())
    schema["additionalProperties"] = False
    schema["$schema"] = EMPTY_PARAMS_SCHEMA["$schema"]
    return schema


def create_permission_rule(
    *,
    name: str,
    description: str,
    apply: Callable[[Any, Mapping[str, Any]], bool],
    to_query: Callable[[Mapping[str, Any]], Any],
    resource_ref: PermissionResourceRef | None = None,
    resource_type: str | None = None,
    params: Any = None,
) -> PermissionRule:
    """A permission rule for ``resource_ref`` (or a bare ``resource_type``)."""
    if resource_ref is not None:
        resource_type = resource_ref.resource_type
    if not resource_type:
        raise ValueError(f"Permission rule '{name}' needs a resource_ref or a resource_type")
    if params is not None and not hasattr(params, "is_valid") and not callable(params):
        raise TypeError(f"Permission rule '{name}' params must be a DRF serializer class")
    return PermissionRule(name, description, resource_type, apply, to_query, params)


def create_condition_factory(rule: PermissionRule) -> Callable[..., dict[str, Any]]:
    """A function making conditions of ``rule``: ``factory(claims=[...])`` or ``factory({...})``."""

    def factory(params: Mapping[str, Any] | None = None, /, **kwargs: Any) -> dict[str, Any]:
        return {
            "rule": rule.name,
            "resourceType": rule.resource_type,
            "params": {**(params or {}), **kwargs},
        }

    factory.__name__ = rule.name
    return factory


def create_condition_exports(
    *,
    rules: Mapping[str, PermissionRule],
    resource_ref: PermissionResourceRef | None = None,
    plugin_id: str | None = None,
    resource_type: str | None = None,
) -> SimpleNamespace:
    """``conditions.<key>(...)`` for each rule, and ``create_conditional_decision``."""
    if resource_ref is not None:
        plugin_id, resource_type = resource_ref.plugin_id, resource_ref.resource_type
    if not plugin_id or not resource_type:
        raise ValueError("Condition exports need a resource_ref, or a plugin_id and resource_type")

    def create_conditional_decision(permission: Permission, conditions: Any) -> PolicyDecision:
        return PolicyDecision(AuthorizeResult.CONDITIONAL, plugin_id, resource_type, conditions)

    return SimpleNamespace(
        plugin_id=plugin_id,
        resource_type=resource_type,
        conditions=SimpleNamespace(
            **{key: create_condition_factory(rule) for key, rule in rules.items()}
        ),
        create_conditional_decision=create_conditional_decision,
    )


def validate_criteria(criteria: Any, where: str = "conditions") -> None:
    """ValueError naming the place where ``criteria`` is not Backstage's criteria JSON."""
    if not isinstance(criteria, Mapping):
        raise ValueError(f"{where} must be an object")
    for key in ("allOf", "anyOf"):
        if key in criteria:
            items = criteria[key]
            if not isinstance(items, list) or not items:
                raise ValueError(f"{where}.{key} must be a non-empty array")
            for index, item in enumerate(items):
                validate_criteria(item, f"{where}.{key}[{index}]")
            return
    if "not" in criteria:
        validate_criteria(criteria["not"], f"{where}.not")
        return
    if not isinstance(criteria.get("rule"), str) or not criteria["rule"]:
        raise ValueError(f"{where}.rule must be a non-empty string")
    if not isinstance(criteria.get("resourceType"), str) or not criteria["resourceType"]:
        raise ValueError(f"{where}.resourceType must be a non-empty string")
    params = criteria.get("params")
    if params is not None and not isinstance(params, Mapping):
        raise ValueError(f"{where}.params must be an object")


def _lookup(
    rules: Iterable[PermissionRule] | Callable[[str], PermissionRule],
) -> Callable[[str], PermissionRule]:
    if callable(rules):
        return rules
    by_name = {rule.name: rule for rule in rules}

    def get_rule(name: str) -> PermissionRule:
        rule = by_name.get(name)
        if rule is None:
            raise LookupError(f"Unexpected permission rule: {name}")
        return rule

    return get_rule


def apply_conditions(
    criteria: Any,
    resource: Any,
    rules: Iterable[PermissionRule] | Callable[[str], PermissionRule],
) -> bool:
    """Whether ``resource`` meets ``criteria``; a missing resource never does."""
    if resource is None:
        return False
    get_rule = _lookup(rules)

    def check(node: Any) -> bool:
        if "allOf" in node:
            return all(check(child) for child in node["allOf"])
        if "anyOf" in node:
            return any(check(child) for child in node["anyOf"])
        if "not" in node:
            return not check(node["not"])
        rule = get_rule(node["rule"])
        return bool(rule.apply(resource, rule.validate_params(node.get("params"))))

    return check(criteria)


def create_condition_transformer(
    rules: Iterable[PermissionRule] | Callable[[str], PermissionRule],
) -> Callable[[Any], Any]:
    """A function turning criteria into one query, combining rule queries with ``&``, ``|``, ``~``."""
    get_rule = _lookup(rules)

    def transform(node: Any) -> Any:
        if "allOf" in node:
            return reduce(lambda a, b: a & b, [transform(child) for child in node["allOf"]])
        if "anyOf" in node:
            return reduce(lambda a, b: a | b, [transform(child) for child in node["anyOf"]])
        if "not" in node:
            return ~transform(node["not"])
        rule = get_rule(node["rule"])
        return rule.to_query(rule.validate_params(node.get("params")))

    return transform


def create_condition_authorizer(
    rules: Iterable[PermissionRule] | Callable[[str], PermissionRule],
) -> Callable[[PolicyDecision, Any], bool]:
    """A function saying whether a decision allows a resource (conditions applied to it)."""

    def authorize(decision: PolicyDecision, resource: Any) -> bool:
        if decision.result is AuthorizeResult.CONDITIONAL:
            return apply_conditions(decision.conditions, resource, rules)
        return decision.result is AuthorizeResult.ALLOW

    return authorize
