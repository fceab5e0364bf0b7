"""The todo plugin under a permission policy, with real user tokens, on every database engine."""

from __future__ import annotations

from typing import Any

import pytest

from backstage_core.permissions import AuthorizeResult, PolicyDecision
from backstage_core.services.permissions import permissions_factory
from tests.tokens import auth_config, issue, real_auth
from todo.models import Todo
from todo.permissions import (
    todo_conditions,
    todo_item_create_permission,
    todo_item_delete_permission,
    todo_item_read_permission,
    todo_item_update_permission,
)


class CreatorDeletes:
    """Only the creator of a todo (or a member of a group that created it) may delete it."""

    def handle(self, request: Any, user: Any) -> Any:
        if request.permission.name == todo_item_delete_permission.name:
            if user is None:
                return PolicyDecision(AuthorizeResult.DENY)
            return todo_conditions.create_conditional_decision(
                request.permission,
                todo_conditions.conditions.is_creator(claims=user.info.ownership_entity_refs),
            )
        return PolicyDecision(AuthorizeResult.ALLOW)


class ReadOwnOnly(CreatorDeletes):
    """Users see and change only their own todos, and anonymous callers may not create."""

    def handle(self, request: Any, user: Any) -> Any:
        permission = request.permission
        if permission.name == todo_item_create_permission.name:
            return PolicyDecision(AuthorizeResult.ALLOW if user else AuthorizeResult.DENY)
        if permission.name in (todo_item_read_permission.name, todo_item_update_permission.name):
            if user is None:
                return PolicyDecision(AuthorizeResult.DENY)
            return todo_conditions.create_conditional_decision(
                permission,
                todo_conditions.conditions.is_creator(claims=user.info.ownership_entity_refs),
            )
        return super().handle(request, user)


def start(test_backend_factory: Any, policy: Any, database: dict[str, Any] | None = None) -> Any:
    config = auth_config(permission={"enabled": True})
    if database is not None:
        config["backend"] = {"database": database}
    return test_backend_factory(
        features=[
            *real_auth(),
            "backstage_core.plugins.auth",
            "todo",
            permissions_factory(policy=policy),
        ],
        config=config,
    )


def headers(backend: Any, user: str, groups: tuple[str, ...] = ()) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue(backend, user, [user, *groups])}"}


def test_the_creator_deletes_and_another_user_gets_403(
    test_backend_factory: Any, database_config: dict[str, Any]
) -> None:
    backend = start(test_backend_factory, CreatorDeletes, database_config)
    jane, joe = headers(backend, "user:default/jane"), headers(backend, "user:default/joe")
    todo = backend.client.post("/api/todo/todos", json={"title": "jane's"}, headers=jane).json()
    assert todo["createdBy"] == "user:default/jane"

    refused = backend.client.delete(f"/api/todo/todos/{todo['id']}", headers=joe)
    assert refused.status_code == 403
    assert refused.json() == {
        "error": {"name": "NotAllowedError", "message": "Unauthorized"},
        "request": {"method": "DELETE", "url": f"/todos/{todo['id']}"},
        "response": {"statusCode": 403},
    }
    assert list(Todo.objects.values_list("title", "created_by")) == [
        ("jane's", "user:default/jane")
    ]
    # Joe may still read it (the policy only guards deletion).
    assert backend.client.get(f"/api/todo/todos/{todo['id']}", headers=joe).status_code == 200

    deleted = backend.client.delete(f"/api/todo/todos/{todo['id']}", headers=jane)
    assert deleted.status_code == 204
    assert not Todo.objects.exists()
    missing = backend.client.delete(f"/api/todo/todos/{todo['id']}", headers=jane)
    assert (missing.status_code, missing.json()) == (
        404,
        {"error": f"Todo with id {todo['id']} not found"},
    )


def test_a_group_that_created_a_todo_lets_its_members_delete_it(test_backend_factory: Any) -> None:
    backend = start(test_backend_factory, CreatorDeletes)
    team = Todo.objects.create(title="team's", created_by="group:default/team-a")
    member = headers(backend, "user:default/ann", ("group:default/team-a",))
    outsider = headers(backend, "user:default/bob", ("group:default/team-b",))
    assert backend.client.delete(f"/api/todo/todos/{team.id}", headers=outsider).status_code == 403
    assert backend.client.delete(f"/api/todo/todos/{team.id}", headers=member).status_code == 204


def test_conditions_filter_the_list_and_guard_reads_and_updates(test_backend_factory: Any) -> None:
    backend = start(test_backend_factory, ReadOwnOnly)
    jane, joe = headers(backend, "user:default/jane"), headers(backend, "user:default/joe")
    mine = backend.client.post("/api/todo/todos", json={"title": "jane 1"}, headers=jane).json()
    backend.client.post("/api/todo/todos", json={"title": "jane 2"}, headers=jane)
    backend.client.post("/api/todo/todos", json={"title": "joe 1"}, headers=joe)

    assert [t["title"] for t in backend.client.get("/api/todo/todos", headers=jane).json()] == [
        "jane 2",
        "jane 1",
    ]
    assert [t["title"] for t in backend.client.get("/api/todo/todos", headers=joe).json()] == [
        "joe 1"
    ]
    assert backend.client.get(f"/api/todo/todos/{mine['id']}", headers=joe).status_code == 403
    patched = backend.client.patch(
        f"/api/todo/todos/{mine['id']}", json={"completed": True}, headers=joe
    )
    assert patched.status_code == 403
    assert Todo.objects.get(pk=mine["id"]).completed is False
    patched = backend.client.patch(
        f"/api/todo/todos/{mine['id']}", json={"completed": True}, headers=jane
    )
    assert (patched.status_code, patched.json()["completed"]) == (200, True)


def test_a_denied_create_writes_nothing(test_backend_factory: Any) -> None:
    backend = test_backend_factory(
        features=[
            *real_auth(),
            "backstage_core.plugins.auth",
            "todo",
            permissions_factory(policy=ReadOwnOnly),
        ],
        config=auth_config(permission={"enabled": True}, todo={"allowUnauthenticated": True}),
    )
    response = backend.client.post("/api/todo/todos", json={"title": "anonymous"})
    assert response.status_code == 403
    assert not Todo.objects.exists()
    assert backend.client.get("/api/todo/todos").status_code == 403


@pytest.mark.parametrize("who", ["anonymous", "service"])
def test_only_users_are_recorded_as_creators(test_backend_factory: Any, who: str) -> None:
    from backstage_core.services.definitions import core_services

    backend = test_backend_factory(
        features=[*real_auth(), "backstage_core.plugins.auth", "todo"],
        config=auth_config(todo={"allowUnauthenticated": True}),
    )
    extra = {}
    if who == "service":
        auth = backend.get_service(core_services.auth, "auth")
        token = auth.get_plugin_request_token(
            on_behalf_of=auth.get_own_service_credentials(), target_plugin_id="todo"
        ).token
        extra = {"Authorization": f"Bearer {token}"}
    body = backend.client.post("/api/todo/todos", json={"title": "t"}, headers=extra).json()
    assert list(body) == ["id", "title", "createdAt", "completed"]
    assert Todo.objects.get().created_by is None


def test_an_invalid_token_is_a_401_even_where_the_todo_is_open(test_backend_factory: Any) -> None:
    backend = test_backend_factory(
        features=[*real_auth(), "backstage_core.plugins.auth", "todo"],
        config=auth_config(todo={"allowUnauthenticated": True}),
    )
    response = backend.client.post(
        "/api/todo/todos", json={"title": "t"}, headers={"Authorization": "Bearer nonsense"}
    )
    assert (response.status_code, response.json()["error"]["message"]) == (401, "Illegal token")
    assert not Todo.objects.exists()
