"""The permission framework: permissions, rules and conditions, the registry, the service, the
permission plugin's /authorize, and conditions settled by another backend over HTTP."""

from __future__ import annotations

from typing import Any

import pytest
from django.db.models import Q
from rest_framework import serializers

from backstage_core import BackendStartupError, InputError
from backstage_core.permissions import (
    AllowAllPolicy,
    AuthorizeResult,
    Permission,
    PolicyDecision,
    all_of,
    any_of,
    apply_conditions,
    create_condition_exports,
    create_condition_transformer,
    create_permission,
    create_permission_resource_ref,
    create_permission_rule,
    not_,
)
from backstage_core.services.auth import BackstageCredentials, ServicePrincipal, UserPrincipal
from backstage_core.services.definitions import core_services
from backstage_core.services.permissions import permissions_factory
from backstage_core.testing import mock_credentials
from tests.tokens import auth_config, issue, real_auth
from todo.permissions import (
    todo_conditions,
    todo_item_create_permission,
    todo_item_delete_permission,
    todo_item_read_permission,
)

# -- permissions and decisions -----------------------------------------------------------------


def test_permissions_have_backstages_json_shape() -> None:
    basic = create_permission(name="todo.item.create", attributes={"action": "create"})
    assert basic.to_json() == {
        "type": "basic",
        "name": "todo.item.create",
        "attributes": {"action": "create"},
    }
    assert todo_item_read_permission.to_json() == {
        "type": "resource",
        "name": "todo.item.read",
        "attributes": {"action": "read"},
        "resourceType": "todo-item",
    }
    assert Permission.from_json(todo_item_read_permission.to_json()) == todo_item_read_permission
    with pytest.raises(ValueError, match="Invalid permission action 'destroy'"):
        create_permission(name="x", attributes={"action": "destroy"})
    with pytest.raises(ValueError, match="resourceType is required"):
        Permission.from_json({"type": "resource", "name": "x", "attributes": {}})


def test_decisions_have_backstages_json_shape() -> None:
    assert PolicyDecision(AuthorizeResult.DENY).to_json() == {"result": "DENY"}
    decision = todo_conditions.create_conditional_decision(
        todo_item_read_permission, todo_conditions.conditions.is_creator(claims=["user:default/a"])
    )
    assert decision.to_json() == {
        "result": "CONDITIONAL",
        "pluginId": "todo",
        "resourceType": "todo-item",
        "conditions": {
            "rule": "IS_CREATOR",
            "resourceType": "todo-item",
            "params": {"claims": ["user:default/a"]},
        },
    }


# -- rules and conditions ----------------------------------------------------------------------


class _Doc:
    def __init__(self, owner: str, tags: list[str]) -> None:
        self.owner, self.tags = owner, tags


class _OwnerParams(serializers.Serializer):
    owner = serializers.CharField()


docs = create_permission_resource_ref(plugin_id="docs", resource_type="doc")
is_owner = create_permission_rule(
    name="IS_OWNER",
    description="owned by",
    resource_ref=docs,
    params=_OwnerParams,
    apply=lambda doc, params: doc.owner == params["owner"],
    to_query=lambda params: Q(owner=params["owner"]),
)
has_tag = create_permission_rule(
    name="HAS_TAG",
    description="tagged",
    resource_ref=docs,
    apply=lambda doc, params: params.get("tag") in doc.tags,
    to_query=lambda params: Q(tags__contains=params.get("tag")),
)
doc_conditions = create_condition_exports(
    resource_ref=docs, rules={"is_owner": is_owner, "has_tag": has_tag}
)


def test_conditions_apply_to_a_resource() -> None:
    rules = [is_owner, has_tag]
    doc = _Doc("jane", ["public"])
    owned = doc_conditions.conditions.is_owner(owner="jane")
    public = doc_conditions.conditions.has_tag(tag="public")
    secret = doc_conditions.conditions.has_tag(tag="secret")
    assert apply_conditions(owned, doc, rules)
    assert apply_conditions(all_of(owned, public), doc, rules)
    assert not apply_conditions(all_of(owned, secret), doc, rules)
    assert apply_conditions(any_of(secret, owned), doc, rules)
    assert apply_conditions(not_(secret), doc, rules)
    assert not apply_conditions(owned, None, rules)  # no resource, no access
    with pytest.raises(InputError, match="Parameters to rule are invalid; caused by"):
        apply_conditions(doc_conditions.conditions.is_owner(), doc, rules)
    with pytest.raises(LookupError, match="Unexpected permission rule: NOPE"):
        apply_conditions({"rule": "NOPE", "resourceType": "doc"}, doc, rules)


def test_conditions_become_one_query() -> None:
    transform = create_condition_transformer([is_owner, has_tag])
    query = transform(
        any_of(
            doc_conditions.conditions.is_owner(owner="jane"),
            not_(doc_conditions.conditions.has_tag(tag="secret")),
        )
    )
    assert query == Q(owner="jane") | ~Q(tags__contains="secret")


def test_rules_describe_their_params_as_json_schema() -> None:
    assert is_owner.to_json() == {
        "name": "IS_OWNER",
        "description": "owned by",
        "resourceType": "doc",
        "paramsSchema": {
            "type": "object",
            "properties": {"owner": {"type": "string"}},
            "required": ["owner"],
            "additionalProperties": False,
            "$schema": "http://json-schema.org/draft-07/schema#",
        },
    }
    assert has_tag.to_json()["paramsSchema"] == {
        "type": "object",
        "properties": {},
        "additionalProperties": False,
        "$schema": "http://json-schema.org/draft-07/schema#",
    }


# -- the registry ------------------------------------------------------------------------------


def test_the_todo_plugin_declares_its_permissions_and_rules(test_backend_factory: Any) -> None:
    backend = test_backend_factory(features=["todo"])
    metadata = backend.client.get(
        "/api/todo/.well-known/backstage/permissions/metadata",
        headers={"Authorization": mock_credentials.service.header()},
    ).json()
    assert [p["name"] for p in metadata["permissions"]] == [
        "todo.item.read",
        "todo.item.update",
        "todo.item.delete",
        "todo.item.create",
    ]
    assert [(r["name"], r["resourceType"]) for r in metadata["rules"]] == [
        ("IS_CREATOR", "todo-item"),
        ("HAS_ENTITY_REF", "todo-item"),
    ]
    assert metadata["rules"][0]["paramsSchema"]["required"] == ["claims"]


def test_the_registry_is_closed_once_the_plugin_has_started(test_backend_factory: Any) -> None:
    backend = test_backend_factory(features=["todo"])
    registry = backend.get_service(core_services.permissions_registry, "todo")
    with pytest.raises(RuntimeError, match="Cannot add permissions after the plugin has started"):
        registry.add_permissions([create_permission(name="late")])
    with pytest.raises(
        RuntimeError, match="Cannot add permission rules after the plugin has started"
    ):
        registry.add_permission_rules([is_owner])
    with pytest.raises(ValueError, match="Resource type 'doc' belongs to plugin 'docs'"):
        registry.get_permission_ruleset(docs)


def test_registry_mistakes_are_refused(test_backend_factory: Any) -> None:
    from backstage_core.services.permissions_registry import PermissionsRegistryService

    registry = PermissionsRegistryService("docs")
    registry.add_resource_type(resource_ref=docs, rules=[is_owner])
    with pytest.raises(
        ValueError, match="Refused to add permission rule for type 'doc' with name 'IS_OWNER'"
    ):
        registry.add_permission_rules([is_owner])
    with pytest.raises(ValueError, match="Refused to add permission resource with type 'doc'"):
        registry.add_resource_type(resource_ref=docs)
    with pytest.raises(
        LookupError, match="Permission rule 'HAS_TAG' does not exist for resource type 'doc'"
    ):
        registry.get_permission_ruleset(docs).get_rule_by_name("HAS_TAG")


def test_apply_conditions_answers_plugins_but_not_users_directly(test_backend_factory: Any) -> None:
    backend = test_backend_factory(
        features=["todo"], config={"todo": {"allowUnauthenticated": True}}
    )
    todo = backend.client.post("/api/todo/todos", json={"title": "mine"}).json()  # mock user
    url = "/api/todo/.well-known/backstage/permissions/apply-conditions"
    mine = todo_conditions.conditions.is_creator(claims=["user:default/mock"])
    theirs = todo_conditions.conditions.is_creator(claims=["user:default/other"])
    body = {
        "items": [
            {"id": "1", "resourceRef": todo["id"], "resourceType": "todo-item", "conditions": mine},
            {
                "id": "2",
                "resourceRef": todo["id"],
                "resourceType": "todo-item",
                "conditions": theirs,
            },
            {
                "id": "3",
                "resourceRef": [todo["id"], "missing"],
                "resourceType": "todo-item",
                "conditions": mine,
            },
        ]
    }
    service = {"Authorization": mock_credentials.service.header()}
    response = backend.client.post(url, json=body, headers=service)
    assert response.status_code == 200
    assert response.json() == {
        "items": [
            {"id": "1", "result": "ALLOW"},
            {"id": "2", "result": "DENY"},
            {"id": "3", "result": ["ALLOW", "DENY"]},
        ]
    }
    direct = backend.client.post(
        url, json=body, headers={"Authorization": mock_credentials.user.header()}
    )
    assert (direct.status_code, direct.json()["error"]) == (
        403,
        {"name": "NotAllowedError", "message": ""},
    )
    obo = {"Authorization": mock_credentials.user.header(actor="plugin:catalog")}
    assert backend.client.post(url, json=body, headers=obo).status_code == 200

    bad_type = {"items": [{**body["items"][0], "resourceType": "nope"}]}
    response = backend.client.post(url, json=bad_type, headers=service)
    assert (response.status_code, response.json()["error"]["message"]) == (
        400,
        "Unexpected resource types: nope.",
    )
    malformed = {
        "items": [
            {
                "id": "1",
                "resourceRef": todo["id"],
                "resourceType": "todo-item",
                "conditions": {"allOf": []},
            }
        ]
    }
    response = backend.client.post(url, json=malformed, headers=service)
    assert (response.status_code, response.json()["error"]["message"]) == (
        400,
        "items[0].conditions.allOf must be a non-empty array",
    )


# -- the permissions service -------------------------------------------------------------------


class DenyDeletes:
    """Allows everything but deleting."""

    def handle(self, request: Any, user: Any) -> PolicyDecision:
        if request.permission.attributes.get("action") == "delete":
            return PolicyDecision(AuthorizeResult.DENY)
        return PolicyDecision(AuthorizeResult.ALLOW)


class CreatorsOnly:
    """Users may read, update and delete only what they created (through their ownership refs)."""

    def handle(self, request: Any, user: Any) -> Any:
        permission = request.permission
        if permission.resource_type == "todo-item" and user is not None:
            return todo_conditions.create_conditional_decision(
                permission,
                todo_conditions.conditions.is_creator(claims=user.info.ownership_entity_refs),
            )
        return {"result": "ALLOW"}


def test_with_permissions_disabled_everything_is_allowed(test_backend_factory: Any) -> None:
    backend = test_backend_factory(features=["todo", permissions_factory(policy=DenyDeletes)])
    permissions = backend.get_service(core_services.permissions, "todo")
    for credentials in (mock_credentials.user(), mock_credentials.none()):
        decisions = permissions.authorize(
            [{"permission": todo_item_delete_permission, "resource_ref": "x"}],
            credentials=credentials,
        )
        assert [d.result for d in decisions] == [AuthorizeResult.ALLOW]


def test_a_policy_named_in_config_decides(test_backend_factory: Any) -> None:
    backend = test_backend_factory(
        features=["todo"],
        config={
            "permission": {"enabled": True, "policy": "tests.core.test_permissions.DenyDeletes"}
        },
    )
    permissions = backend.get_service(core_services.permissions, "todo")
    decisions = permissions.authorize(
        [
            {"permission": todo_item_create_permission},
            {"permission": todo_item_delete_permission, "resource_ref": "x"},
        ],
        credentials=mock_credentials.user(),
    )
    assert [d.result for d in decisions] == [AuthorizeResult.ALLOW, AuthorizeResult.DENY]
    # The seed's form: a token instead of credentials.
    (decision,) = permissions.authorize(
        [{"permission": todo_item_delete_permission, "resource_ref": "x"}],
        token=mock_credentials.user.token(),
    )
    assert decision.result is AuthorizeResult.DENY


def test_service_principals_are_decided_by_their_restrictions_alone(
    test_backend_factory: Any,
) -> None:
    backend = test_backend_factory(
        features=["todo", permissions_factory(policy=DenyDeletes)],
        config={"permission": {"enabled": True}},
    )
    permissions = backend.get_service(core_services.permissions, "todo")
    request = [{"permission": todo_item_delete_permission, "resource_ref": "x"}]
    unrestricted = BackstageCredentials(ServicePrincipal("plugin:catalog"))
    assert (
        permissions.authorize(request, credentials=unrestricted)[0].result is AuthorizeResult.ALLOW
    )
    by_name = BackstageCredentials(
        ServicePrincipal("external:ci", {"permissionNames": ["todo.item.read"]})
    )
    assert permissions.authorize(request, credentials=by_name)[0].result is AuthorizeResult.DENY
    by_action = BackstageCredentials(
        ServicePrincipal("external:ci", {"permissionAttributes": {"action": ["delete"]}})
    )
    assert permissions.authorize(request, credentials=by_action)[0].result is AuthorizeResult.ALLOW


def test_enabled_permissions_need_a_policy(test_backend_factory: Any) -> None:
    with pytest.raises(BackendStartupError, match="No permission policy is installed"):
        test_backend_factory(features=["todo"], config={"permission": {"enabled": True}})
    with pytest.raises(BackendStartupError, match="Could not import the permission policy"):
        test_backend_factory(
            features=["todo"], config={"permission": {"enabled": True, "policy": "no.such.Policy"}}
        )


def test_conditional_decisions_are_settled_or_returned(test_backend_factory: Any) -> None:
    backend = test_backend_factory(
        features=["todo", permissions_factory(policy=CreatorsOnly)],
        config={"permission": {"enabled": True}, "todo": {"allowUnauthenticated": True}},
    )
    jane = {"Authorization": mock_credentials.user.header("user:default/jane")}
    todo = backend.client.post("/api/todo/todos", json={"title": "jane's"}, headers=jane).json()
    permissions = backend.get_service(core_services.permissions, "todo")
    ask = [{"permission": todo_item_delete_permission, "resource_ref": todo["id"]}]
    assert (
        permissions.authorize(ask, credentials=mock_credentials.user("user:default/jane"))[0].result
        is AuthorizeResult.ALLOW
    )
    assert (
        permissions.authorize(ask, credentials=mock_credentials.user("user:default/joe"))[0].result
        is AuthorizeResult.DENY
    )
    (conditional,) = permissions.authorize_conditional(
        [{"permission": todo_item_read_permission}],
        credentials=mock_credentials.user("user:default/joe"),
    )
    assert conditional.result is AuthorizeResult.CONDITIONAL
    assert conditional.conditions["params"] == {"claims": ["user:default/joe"]}
    with pytest.raises(TypeError, match="use authorize_conditional"):
        permissions.authorize(
            [{"permission": todo_item_read_permission}], credentials=mock_credentials.user()
        )


def test_a_conditional_answer_to_a_basic_permission_is_a_policy_bug(
    test_backend_factory: Any,
) -> None:
    def always_conditional(request: Any, user: Any) -> Any:
        return todo_conditions.create_conditional_decision(
            request.permission, todo_conditions.conditions.is_creator(claims=[])
        )

    backend = test_backend_factory(
        features=["todo", permissions_factory(policy=always_conditional)],
        config={"permission": {"enabled": True}},
    )
    permissions = backend.get_service(core_services.permissions, "todo")
    with pytest.raises(
        RuntimeError,
        match="Conditional decision returned from permission policy for non-resource permission todo.item.create",
    ):
        permissions.authorize(
            [{"permission": todo_item_create_permission}], credentials=mock_credentials.user()
        )


# -- the permission plugin ---------------------------------------------------------------------


def test_the_permission_plugin_authorizes_for_frontends(test_backend_factory: Any) -> None:
    backend = test_backend_factory(
        features=[
            *real_auth(),
            "backstage_core.plugins.auth",
            "backstage_core.plugins.permission",
            "todo",
            permissions_factory(policy=CreatorsOnly),
        ],
        config=auth_config(permission={"enabled": True}),
    )
    jane = {"Authorization": f"Bearer {issue(backend, 'user:default/jane')}"}
    todo = backend.client.post("/api/todo/todos", json={"title": "t"}, headers=jane).json()
    assert backend.client.get("/api/permission/health").json() == {"status": "ok"}

    items = [
        {"id": "a", "permission": todo_item_create_permission.to_json()},
        {"id": "b", "permission": todo_item_delete_permission.to_json(), "resourceRef": todo["id"]},
        {
            "id": "c",
            "permission": todo_item_delete_permission.to_json(),
            "resourceRef": [todo["id"], "nope"],
        },
    ]
    response = backend.client.post("/api/permission/authorize", json={"items": items}, headers=jane)
    assert response.status_code == 200
    assert response.json() == {
        "items": [
            {"id": "a", "result": "ALLOW"},
            {"id": "b", "result": "ALLOW"},
            {"id": "c", "result": ["ALLOW", "DENY"]},
        ]
    }
    no_ref = [{"id": "d", "permission": todo_item_read_permission.to_json()}]
    response = backend.client.post(
        "/api/permission/authorize", json={"items": no_ref}, headers=jane
    )
    assert (response.status_code, response.json()["error"]["message"]) == (
        400,
        "Resource permissions require a resourceRef to be set. Direct user requests without a "
        "resourceRef are not allowed.",
    )
    assert (
        backend.client.post("/api/permission/authorize", json={"items": items}).status_code == 401
    )
    auth = backend.get_service(core_services.auth, "todo")
    service = auth.get_plugin_request_token(
        on_behalf_of=auth.get_own_service_credentials(), target_plugin_id="permission"
    ).token
    response = backend.client.post(
        "/api/permission/authorize",
        json={"items": items},
        headers={"Authorization": f"Bearer {service}"},
    )
    assert (response.status_code, response.json()["error"]["message"]) == (
        403,
        "This endpoint does not allow 'service' credentials",
    )
    # A plugin acting for jane may ask without a resource, and gets the conditions back.
    obo = auth.get_plugin_request_token(
        on_behalf_of=auth.authenticate(jane["Authorization"][7:]), target_plugin_id="permission"
    ).token
    response = backend.client.post(
        "/api/permission/authorize",
        json={"items": no_ref},
        headers={"Authorization": f"Bearer {obo}"},
    )
    assert response.json()["items"][0]["result"] == "CONDITIONAL"
    assert response.json()["items"][0]["conditions"]["params"] == {"claims": ["user:default/jane"]}
    bad = backend.client.post(
        "/api/permission/authorize", json={"items": [{"id": 1}]}, headers=jane
    )
    assert bad.status_code == 400


def test_conditions_about_another_backends_resources_are_settled_over_http(
    test_backend_factory: Any,
) -> None:
    """Backend B asks about todos that live in backend A: A applies the conditions, answering B's
    plugin token made on the user's behalf."""
    from tests.helpers import free_port

    a_port, b_port = free_port(), free_port()
    endpoints = [
        {"target": f"http://127.0.0.1:{a_port}/api/{{{{pluginId}}}}", "plugins": ["todo", "auth"]},
        {"target": f"http://127.0.0.1:{b_port}/api/{{{{pluginId}}}}", "plugins": ["permission"]},
    ]
    config = auth_config(discovery={"endpoints": endpoints}, permission={"enabled": True})
    a = test_backend_factory(
        features=[
            *real_auth(),
            "backstage_core.plugins.auth",
            "todo",
            permissions_factory(policy=CreatorsOnly),
        ],
        config=config,
        port=a_port,
    )
    b = test_backend_factory(
        features=[
            *real_auth(),
            "backstage_core.plugins.permission",
            permissions_factory(policy=CreatorsOnly),
        ],
        config=config,
        port=b_port,
    )
    jane = {"Authorization": f"Bearer {issue(a, 'user:default/jane')}"}
    joe = {"Authorization": f"Bearer {issue(a, 'user:default/joe')}"}
    todo = a.client.post("/api/todo/todos", json={"title": "t"}, headers=jane).json()
    items = [
        {"id": "x", "permission": todo_item_delete_permission.to_json(), "resourceRef": todo["id"]}
    ]
    assert b.client.post(
        "/api/permission/authorize", json={"items": items}, headers=jane
    ).json() == {"items": [{"id": "x", "result": "ALLOW"}]}
    assert b.client.post(
        "/api/permission/authorize", json={"items": items}, headers=joe
    ).json() == {"items": [{"id": "x", "result": "DENY"}]}


def test_allow_all_policy() -> None:
    decision = AllowAllPolicy().handle(None, None)  # type: ignore[arg-type]
    assert decision.result is AuthorizeResult.ALLOW
    _ = UserPrincipal
