"""The todo API: every row of the reference table, and every bad input, with what is stored after."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from backstage_core.testing import mock_credentials
from todo.models import Todo

ISO_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
JSON = "application/json; charset=utf-8"


def stored() -> list[dict[str, Any]]:
    """What the todo plugin's database holds, newest first."""
    return list(Todo.objects.values("title", "entity_ref", "completed"))


def create(api: Any, body: Any) -> dict[str, Any]:
    response = api.post("/api/todo/todos", json=body)
    assert response.status_code == 201, response.text
    return response.json()


# -- reads -------------------------------------------------------------------------------------


def test_an_empty_list(api: Any) -> None:
    response = api.get("/api/todo/todos")
    assert (response.status_code, response.json()) == (200, [])
    assert response.headers["content-type"] == JSON


def test_the_list_is_newest_first_with_the_id_as_tiebreak(api: Any) -> None:
    first = create(api, {"title": "first"})
    second = create(api, {"title": "second"})
    moment = datetime(2030, 1, 1, tzinfo=UTC)
    same = [Todo.objects.create(title=f"same {i}", created_at=moment) for i in range(3)]

    titles = [t["title"] for t in api.get("/api/todo/todos").json()]
    # Ties go by id, descending, in the database's own order of ids (MariaDB orders its native
    # UUIDs differently from the others), the same every time.
    tied = list(
        Todo.objects.filter(pk__in=[t.pk for t in same])
        .order_by("-id")
        .values_list("title", flat=True)
    )
    assert titles == [*tied, second["title"], first["title"]]
    assert [t["title"] for t in api.get("/api/todo/todos").json()] == titles  # the same every time


def test_the_list_filters_by_exact_entity_ref(api: Any) -> None:
    create(api, {"title": "a", "entityRef": "component:default/alpha"})
    create(api, {"title": "b", "entityRef": "component:default/beta"})
    create(api, {"title": "c", "entityRef": "component:default/alpha-2"})
    create(api, {"title": "none"})

    only_alpha = api.get("/api/todo/todos", params={"entityRef": "component:default/alpha"}).json()
    assert [t["title"] for t in only_alpha] == ["a"]
    assert len(api.get("/api/todo/todos?entityRef=").json()) == 4  # empty means no filter
    assert (
        api.get("/api/todo/todos", params={"entityRef": "component:default/nothing"}).json() == []
    )


def test_a_repeated_entity_ref_parameter_is_a_400(api: Any) -> None:
    create(api, {"title": "a", "entityRef": "x:y/z"})
    response = api.get("/api/todo/todos?entityRef=x:y/z&entityRef=a:b/c")
    assert (response.status_code, response.json()) == (
        400,
        {"error": "entityRef must be given once"},
    )


def test_get_by_id(api: Any) -> None:
    todo = create(api, {"title": "find me", "entityRef": "component:default/x"})
    response = api.get(f"/api/todo/todos/{todo['id']}")
    assert (response.status_code, response.json()) == (200, todo)


@pytest.mark.parametrize("todo_id", [str(uuid.uuid4()), "not-a-uuid", "1", "%20"])
def test_get_by_unknown_or_malformed_id_is_a_404(api: Any, todo_id: str) -> None:
    response = api.get(f"/api/todo/todos/{todo_id}")
    assert (response.status_code, response.json()) == (404, {"error": "Todo not found"})


# -- create ------------------------------------------------------------------------------------


def test_create_returns_the_new_todo(api: Any) -> None:
    response = api.post(
        "/api/todo/todos",
        json={"title": "My first todo", "entityRef": "component:default/my-service"},
    )
    assert response.status_code == 201
    assert response.headers["content-type"] == JSON
    body = response.json()
    # The test backend's mock httpAuth takes a request without a token as the mock user.
    assert list(body) == ["id", "title", "entityRef", "createdAt", "completed", "createdBy"]
    assert body["createdBy"] == "user:default/mock"
    assert uuid.UUID(body["id"]).version == 4
    assert (body["title"], body["entityRef"], body["completed"]) == (
        "My first todo",
        "component:default/my-service",
        False,
    )
    assert ISO_MS.fullmatch(body["createdAt"])
    assert stored() == [
        {"title": "My first todo", "entity_ref": "component:default/my-service", "completed": False}
    ]


def test_entity_ref_is_absent_not_null_when_unset(api: Any) -> None:
    body = create(api, {"title": "no entity", "entityRef": None})
    assert "entityRef" not in body
    assert "entityRef" not in api.get(f"/api/todo/todos/{body['id']}").json()
    assert stored() == [{"title": "no entity", "entity_ref": None, "completed": False}]


def test_create_ignores_other_fields(api: Any) -> None:
    body = create(
        api,
        {
            "title": "t",
            "completed": True,
            "id": "mine",
            "createdAt": "1999-01-01T00:00:00.000Z",
            "extra": 1,
        },
    )
    assert (
        body["completed"] is False
        and body["id"] != "mine"
        and body["createdAt"] != "1999-01-01T00:00:00.000Z"
    )
    assert stored() == [{"title": "t", "entity_ref": None, "completed": False}]


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'{"entityRef": "component:default/x"}', "application/json"),
        (b'{"title": ""}', "application/json"),
        (b'{"title": null}', "application/json"),
        (b"{}", "application/json"),
        (b'["title"]', "application/json"),
        (b'"just a string"', "application/json"),
        (b"", "application/json"),
        (b"", None),
        (b'{"title": "x"}', "text/plain"),
        (b"title=x", "application/x-www-form-urlencoded"),
    ],
)
def test_create_without_a_title_is_a_400(
    api: Any, content: bytes, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = api.post("/api/todo/todos", content=content, headers=headers)
    assert (response.status_code, response.json()) == (400, {"error": "title is required"})
    assert stored() == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"title": 42}, "title must be a string"),
        ({"title": True}, "title must be a string"),
        ({"title": {"a": 1}}, "title must be a string"),
        ({"title": ["a"]}, "title must be a string"),
        ({"title": "   "}, "title must not be blank"),
        ({"title": "x" * 1001}, "title must be at most 1,000 characters"),
        ({"title": "ok", "entityRef": 42}, "entityRef must be a string or null"),
        ({"title": "ok", "entityRef": ["a"]}, "entityRef must be a string or null"),
        ({"title": "ok", "entityRef": "e" * 256}, "entityRef must be at most 255 characters"),
        ({"title": 1, "entityRef": 2}, "title must be a string"),
    ],
)
def test_create_with_a_bad_field_is_a_400_naming_it(
    api: Any, body: dict[str, Any], message: str
) -> None:
    response = api.post("/api/todo/todos", json=body)
    assert (response.status_code, response.json()) == (400, {"error": message})
    assert stored() == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            b'{"title": "half \\ud800 a pair"}',
            "title must be valid Unicode text (it has an unpaired surrogate)",
        ),
        (
            b'{"title": "ok", "entityRef": "\\udfff"}',
            "entityRef must be valid Unicode text (it has an unpaired surrogate)",
        ),
    ],
)
def test_unpaired_surrogates_are_a_400_not_a_500(api: Any, content: bytes, message: str) -> None:
    response = api.post(
        "/api/todo/todos", content=content, headers={"Content-Type": "application/json"}
    )
    assert (response.status_code, response.json()) == (400, {"error": message})
    assert stored() == []


def test_the_longest_allowed_values_are_kept_whole(api: Any) -> None:
    body = create(api, {"title": "t" * 1000, "entityRef": "e" * 255})
    assert (len(body["title"]), len(body["entityRef"])) == (1000, 255)
    assert stored() == [{"title": "t" * 1000, "entity_ref": "e" * 255, "completed": False}]


def test_malformed_json_is_a_400_in_the_error_envelope(api: Any) -> None:
    response = api.post(
        "/api/todo/todos", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    body = response.json()
    assert body["error"]["name"] == "SyntaxError"
    assert body["error"]["message"].startswith("JSON parse error")
    assert body["request"] == {"method": "POST", "url": "/todos"}
    assert body["response"] == {"statusCode": 400}
    assert stored() == []


def test_a_body_over_100_kb_is_a_413(api: Any) -> None:
    response = api.post(
        "/api/todo/todos",
        content=b'{"title": "' + b"x" * 110_000 + b'"}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json() == {
        "error": {"name": "PayloadTooLargeError", "message": "request entity too large"},
        "request": {"method": "POST", "url": "/todos"},
        "response": {"statusCode": 413},
    }
    assert stored() == []


# -- update and delete -------------------------------------------------------------------------


def test_patch_updates_and_reads_back(api: Any) -> None:
    todo = create(api, {"title": "before", "entityRef": "component:default/x"})
    response = api.patch(
        f"/api/todo/todos/{todo['id']}",
        json={"title": "after", "completed": True, "entityRef": "ignored:x/y"},
    )
    assert response.status_code == 200
    assert response.json() == {**todo, "title": "after", "completed": True}
    assert stored() == [{"title": "after", "entity_ref": "component:default/x", "completed": True}]

    assert (
        api.patch(f"/api/todo/todos/{todo['id']}", json={"completed": False}).json()["completed"]
        is False
    )
    assert api.patch(f"/api/todo/todos/{todo['id']}", json={}).json() == {**todo, "title": "after"}


@pytest.mark.parametrize("todo_id", [str(uuid.uuid4()), "nope"])
def test_patch_of_an_unknown_todo_is_a_404(api: Any, todo_id: str) -> None:
    response = api.patch(f"/api/todo/todos/{todo_id}", json={"title": "x"})
    assert (response.status_code, response.json()) == (
        404,
        {"error": f"Todo with id {todo_id} not found"},
    )
    assert stored() == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"title": None}, "title is required"),
        ({"title": ""}, "title is required"),
        ({"title": "  "}, "title must not be blank"),
        ({"title": 42}, "title must be a string"),
        ({"title": "x" * 1001}, "title must be at most 1,000 characters"),
        ({"completed": "yes"}, "completed must be a boolean"),
        ({"completed": 1}, "completed must be a boolean"),
        ({"completed": None}, "completed must be a boolean"),
        ({"title": "fine", "completed": "true"}, "completed must be a boolean"),
        (["title"], "request body must be a JSON object"),
    ],
)
def test_patch_with_a_bad_field_is_a_400_and_changes_nothing(
    api: Any, body: Any, message: str
) -> None:
    todo = create(api, {"title": "unchanged"})
    response = api.patch(f"/api/todo/todos/{todo['id']}", json=body)
    assert (response.status_code, response.json()) == (400, {"error": message})
    assert stored() == [{"title": "unchanged", "entity_ref": None, "completed": False}]


def test_delete(api: Any) -> None:
    keep = create(api, {"title": "keep"})
    gone = create(api, {"title": "gone"})
    response = api.delete(f"/api/todo/todos/{gone['id']}")
    assert (response.status_code, response.content) == (204, b"")
    assert stored() == [{"title": "keep", "entity_ref": None, "completed": False}]
    assert api.get(f"/api/todo/todos/{keep['id']}").status_code == 200


@pytest.mark.parametrize("todo_id", [str(uuid.uuid4()), "nope"])
def test_delete_of_an_unknown_todo_is_a_404(api: Any, todo_id: str) -> None:
    create(api, {"title": "survivor"})
    response = api.delete(f"/api/todo/todos/{todo_id}")
    assert (response.status_code, response.json()) == (
        404,
        {"error": f"Todo with id {todo_id} not found"},
    )
    assert len(stored()) == 1


# -- routing -----------------------------------------------------------------------------------


def test_a_trailing_slash_is_optional(api: Any) -> None:
    todo = create(api, {"title": "slash"})
    assert api.get("/api/todo/todos/").json() == [todo]
    assert api.get(f"/api/todo/todos/{todo['id']}/").json() == todo
    assert api.post("/api/todo/todos/", json={"title": "two"}).status_code == 201
    assert api.patch(f"/api/todo/todos/{todo['id']}/", json={"completed": True}).status_code == 200
    assert api.delete(f"/api/todo/todos/{todo['id']}/").status_code == 204


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("GET", "/api/todo/nothing"),
        ("GET", "/api/todo"),
        ("GET", "/api/nothing/todos"),
        ("PUT", "/api/todo/todos"),
        ("DELETE", "/api/todo/todos"),
        ("POST", "/api/todo/todos/00000000-0000-4000-8000-000000000000"),
        ("PUT", "/api/todo/todos/00000000-0000-4000-8000-000000000000"),
    ],
)
def test_unknown_paths_and_wrong_methods_are_a_404_with_an_empty_body(
    api: Any, method: str, url: str
) -> None:
    response = api.request(method, url, json={"title": "x"})
    assert (response.status_code, response.content) == (404, b"")
    assert stored() == []


def test_health(api: Any) -> None:
    for kind in ("readiness", "liveness"):
        response = api.get(f"/.backstage/health/v1/{kind}")
        assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_unchanged_lists_answer_304_to_if_none_match(api: Any) -> None:
    create(api, {"title": "cached"})
    first = api.get("/api/todo/todos")
    assert first.headers["etag"]
    again = api.get("/api/todo/todos", headers={"If-None-Match": first.headers["etag"]})
    assert (again.status_code, again.content) == (304, b"")
    create(api, {"title": "changed"})
    assert (
        api.get("/api/todo/todos", headers={"If-None-Match": first.headers["etag"]}).status_code
        == 200
    )


def test_the_etag_is_the_one_express_sends(api: Any) -> None:
    import base64
    import hashlib

    create(api, {"title": "tagged"})
    response = api.get("/api/todo/todos")
    digest = base64.b64encode(hashlib.sha1(response.content).digest()).decode()[:27]
    assert response.headers["etag"] == f'W/"{len(response.content):x}-{digest}"'


def test_any_accept_header_but_html_gets_json(api: Any) -> None:
    create(api, {"title": "json"})
    for accept in ("application/xml", "text/plain", "application/json;q=0.1", ""):
        response = api.get("/api/todo/todos", headers={"Accept": accept})
        assert (response.status_code, response.headers["content-type"]) == (200, JSON), accept
        assert response.json()[0]["title"] == "json"


def test_big_bodies_are_compressed_when_asked(api: Any) -> None:
    for i in range(20):
        create(api, {"title": f"todo number {i}", "entityRef": "component:default/alpha"})
    response = api.get("/api/todo/todos", headers={"Accept-Encoding": "gzip"})
    assert response.headers["content-encoding"] == "gzip"
    assert len(response.json()) == 20


def test_the_browsable_api_answers_browsers_with_html(api: Any) -> None:
    create(api, {"title": "shown in html"})
    html = api.get("/api/todo/todos", headers={"Accept": "text/html,application/xhtml+xml"})
    assert html.status_code == 200
    assert html.headers["content-type"].startswith("text/html")
    assert "shown in html" in html.text and "Django REST framework" in html.text
    assert api.get("/api/todo/todos", headers={"Accept": "*/*"}).headers["content-type"] == JSON
    # DRF's ?format= picks a renderer whatever the Accept header says.
    chosen = api.get("/api/todo/todos?format=api", headers={"Accept": "*/*"})
    assert chosen.headers["content-type"].startswith("text/html")
    assert "shown in html" in chosen.text
    plain = api.get("/api/todo/todos?entityRef=x", headers={"Accept": "*/*"})
    assert (plain.headers["content-type"], plain.json()) == (JSON, [])


def test_lists_show_every_change_at_once(api: Any) -> None:
    todo = create(api, {"title": "before"})
    assert api.get("/api/todo/todos").json()[0]["title"] == "before"
    api.patch(f"/api/todo/todos/{todo['id']}", json={"title": "after", "completed": True})
    listed = api.get("/api/todo/todos").json()
    assert [(t["title"], t["completed"]) for t in listed] == [("after", True)]
    Todo.objects.filter(pk=todo["id"]).update(title="changed behind the API's back")
    assert api.get("/api/todo/todos").json()[0]["title"] == "changed behind the API's back"
    api.delete(f"/api/todo/todos/{todo['id']}")
    assert api.get("/api/todo/todos").json() == []


# -- pages -------------------------------------------------------------------------------------


def next_link(response: Any) -> str | None:
    link = response.headers.get("link")
    if link is None:
        return None
    match = re.fullmatch(r'<([^>]+)>; rel="next"', link)
    assert match, link
    return match.group(1)


def test_limit_and_cursor_page_through_every_todo_once_newest_first(api: Any) -> None:
    moment = datetime(2030, 1, 1, tzinfo=UTC)
    # Seven todos at the same instant: pages must split ties by id, deterministically.
    for i in range(7):
        Todo.objects.create(title=f"tied {i}", created_at=moment)
    for i in range(5):
        create(api, {"title": f"new {i}", "entityRef": "component:default/a" if i % 2 else None})
    everything = [t["id"] for t in api.get("/api/todo/todos").json()]
    assert len(everything) == 12

    seen, url, pages = [], "/api/todo/todos?limit=5", 0
    while url:
        response = api.get(url)
        assert response.status_code == 200
        seen += [t["id"] for t in response.json()]
        pages += 1
        url = next_link(response)
    assert seen == everything  # the same order as the full list, nothing twice, nothing missed
    assert pages == 3

    first = api.get("/api/todo/todos?limit=12")
    assert [t["id"] for t in first.json()] == everything and next_link(first) is None
    filtered = api.get("/api/todo/todos", params={"entityRef": "component:default/a", "limit": 1})
    assert [t["title"] for t in filtered.json()] == ["new 3"]
    following = api.get(next_link(filtered))
    assert [t["title"] for t in following.json()] == ["new 1"]
    assert next_link(following) is None


def test_the_next_link_keeps_the_other_parameters(api: Any) -> None:
    for i in range(3):
        create(api, {"title": f"t{i}", "entityRef": "component:default/x"})
    response = api.get("/api/todo/todos?entityRef=component:default/x&limit=2")
    link = next_link(response)
    assert link is not None and link.startswith("http://")
    assert "entityRef=component%3Adefault%2Fx" in link and "limit=2" in link and "cursor=" in link


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("limit=0", "limit must be an integer from 1 to 1,000"),
        ("limit=1001", "limit must be an integer from 1 to 1,000"),
        ("limit=ten", "limit must be an integer from 1 to 1,000"),
        ("limit=-1", "limit must be an integer from 1 to 1,000"),
        ("limit=5&limit=6", "limit must be an integer from 1 to 1,000"),
        ("cursor=abc", "limit must be an integer from 1 to 1,000"),
        ("limit=5&cursor=not-a-cursor", "cursor is invalid"),
        ("limit=5&cursor=" + "eA", "cursor is invalid"),
    ],
)
def test_bad_page_parameters_are_a_400(api: Any, query: str, message: str) -> None:
    create(api, {"title": "kept"})
    response = api.get(f"/api/todo/todos?{query}")
    assert (response.status_code, response.json()) == (400, {"error": message})


# -- the auth policy ---------------------------------------------------------------------------


@pytest.mark.parametrize("config", [{}, {"todo": {"allowUnauthenticated": False}}])
def test_without_allow_unauthenticated_callers_need_credentials(
    test_backend_factory: Any, config: dict[str, Any]
) -> None:
    client = test_backend_factory(features=["todo"], config=config).client
    response = client.post(
        "/api/todo/todos",
        json={"title": "x"},
        headers={"Authorization": mock_credentials.none.header()},
    )
    assert response.status_code == 401
    assert response.json()["error"] == {
        "name": "AuthenticationError",
        "message": "Missing credentials",
    }
    assert stored() == []
    authorized = client.post(
        "/api/todo/todos",
        json={"title": "x"},
        headers={"Authorization": mock_credentials.user.header()},
    )
    assert authorized.status_code == 201


def test_a_todo_request_leaves_nothing_for_the_garbage_collector(test_backend_factory: Any) -> None:
    """A view that answered with a plain response has its links to its handlers and its DRF
    request cut (``ViewHeadersMixin.dispatch``): reference counting frees them when the request
    ends, instead of the collector finding them later."""
    import gc

    from rest_framework.request import Request
    from rest_framework.views import APIView

    config = {"todo": {"allowUnauthenticated": True}}
    api = test_backend_factory(features=["todo"], config=config).client
    todo_id = create(api, {"title": "warm-up"})["id"]
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        create(api, {"title": "a", "entityRef": "component:default/x"})
        assert api.get("/api/todo/todos").status_code == 200
        assert api.get(f"/api/todo/todos/{todo_id}").status_code == 200
        gc.collect()
        left = [type(o).__name__ for o in gc.garbage if isinstance(o, APIView | Request)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert left == []


@pytest.mark.parametrize(
    ("method", "path", "body", "headers"),
    [
        ("GET", "/api/todo/todos", None, {}),
        ("GET", "/api/todo/todos", None, {"Accept-Encoding": "gzip"}),
        ("GET", "/api/todo/todos?entityRef=component:default/x", None, {}),
        ("GET", "/api/todo/todos/{id}", None, {}),
        ("GET", "/api/todo/todos/{id}", None, {"Accept": "text/html"}),
        ("POST", "/api/todo/todos", {"title": "again"}, {}),
        ("POST", "/api/todo/todos", {"title": 5}, {}),
        ("PATCH", "/api/todo/todos/{id}", {"completed": True}, {}),
        ("DELETE", "/api/todo/todos/{id}", None, {}),
        ("OPTIONS", "/api/todo/todos", None, {}),
    ],
)
def test_the_views_headers_are_the_ones_drf_sets(
    api: Any, monkeypatch: pytest.MonkeyPatch, method: str, path: str, body: Any, headers: Any
) -> None:
    """``Allow`` and ``Vary`` on every todo response are what DRF's ``finalize_response`` sets
    (the views put entries made once onto plain responses)."""
    from rest_framework.views import APIView

    from backstage_core.http.views import ViewHeadersMixin

    for n in range(5):  # a list long enough to be compressed
        create(api, {"title": f"todo {n}", "entityRef": "component:default/x"})

    def send() -> tuple[int, dict[str, str]]:
        if "{id}" in path:
            path_to = path.format(id=create(api, {"title": "x"})["id"])
        else:
            path_to = path
        response = api.request(method, path_to, json=body, headers=headers)
        names = ("allow", "vary", "content-type", "content-encoding")
        return response.status_code, {k: v for k, v in response.headers.items() if k in names}

    ours = send()
    assert "allow" in ours[1] and "Accept" in ours[1]["vary"], ours
    monkeypatch.setattr(
        ViewHeadersMixin,
        "finalize_response",
        lambda view, *a, **k: APIView.finalize_response(view, *a, **k),
    )
    assert send() == ours
