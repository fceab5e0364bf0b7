"""The Django admin for todos: list, search, filter and edit, on the todo plugin's own database.

The admin's users and sessions are in ``default`` (the test database); the todos are in the todo
plugin's database, on each engine in turn.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from todo.models import Todo

pytestmark = pytest.mark.django_db(databases=["default"])


@pytest.fixture
def todos(test_backend_factory: Any, database_config: dict[str, Any]) -> dict[str, Todo]:
    test_backend_factory(features=["todo"], config={"backend": {"database": database_config}})
    return {
        "a": Todo.objects.create(title="Write docs", entity_ref="component:default/alpha"),
        "b": Todo.objects.create(
            title="Fix bug", entity_ref="component:default/beta", completed=True
        ),
        "c": Todo.objects.create(title="Write tests"),
    }


def changelist(admin_client: Any, **params: str) -> str:
    response = admin_client.get(reverse("admin:todo_todo_changelist"), params)
    assert response.status_code == 200
    return response.content.decode()


def test_the_admin_lists_todos(admin_client: Any, todos: dict[str, Todo]) -> None:
    page = changelist(admin_client)
    assert all(title in page for title in ("Write docs", "Fix bug", "Write tests"))


def test_the_admin_searches_titles_and_entity_refs(
    admin_client: Any, todos: dict[str, Todo]
) -> None:
    page = changelist(admin_client, q="Write")
    assert "Write docs" in page and "Write tests" in page and "Fix bug" not in page
    page = changelist(admin_client, q="beta")
    assert "Fix bug" in page and "Write docs" not in page


def test_the_admin_filters_by_completed_and_entity_ref(
    admin_client: Any, todos: dict[str, Todo]
) -> None:
    page = changelist(admin_client, completed__exact="1")
    assert "Fix bug" in page and "Write docs" not in page
    page = changelist(admin_client, entity_ref="component:default/alpha")
    assert "Write docs" in page and "Fix bug" not in page


def test_the_admin_edits_a_todo(admin_client: Any, todos: dict[str, Todo]) -> None:
    todo = todos["c"]
    url = reverse("admin:todo_todo_change", args=[todo.pk])
    assert admin_client.get(url).status_code == 200
    response = admin_client.post(
        url,
        {"title": "Write more tests", "entity_ref": "component:default/gamma", "completed": "on"},
    )
    assert response.status_code == 302
    todo.refresh_from_db()
    assert (todo.title, todo.entity_ref, todo.completed) == (
        "Write more tests",
        "component:default/gamma",
        True,
    )
