"""The todo REST API, as the seed's router.ts answers it (and stricter about bad input).

    GET    /todos[?entityRef=X]   200 [todo, ...] newest first
           [&limit=N[&cursor=C]]  N of them, with a Link header to the next page
    GET    /todos/<id>            200 todo | 404 {"error": "Todo not found"}
    POST   /todos                 201 todo | 400 {"error": "title is required"}
    PATCH  /todos/<id>            200 todo | 404 {"error": "Todo with id <id> not found"}
    DELETE /todos/<id>            204      | 404 {"error": "Todo with id <id> not found"}

Any other method is a 404 with an empty body, as Express answers it. Each action checks its
permission (``todo.item.create``, ``.read``, ``.update``, ``.delete``): a denial is a 403 in
Backstage's error envelope; conditions a policy sets are applied to the todo (or, for the list,
to the query). A todo created by a user records them as ``createdBy``.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import router, transaction
from rest_framework import status, viewsets
from rest_framework.exceptions import UnsupportedMediaType
from rest_framework.request import Request
from rest_framework.response import Response

from backstage_core.errors import NotAllowedError
from backstage_core.http.renderers import api_response
from backstage_core.http.urls import not_found
from backstage_core.http.views import ViewHeadersMixin
from backstage_core.permissions import (
    AuthorizeResult,
    Permission,
    PolicyDecision,
    create_condition_authorizer,
    create_condition_transformer,
)
from todo import queries
from todo.models import Todo
from todo.permissions import (
    todo_item_create_permission,
    todo_item_delete_permission,
    todo_item_read_permission,
    todo_item_update_permission,
    todo_rules,
)
from todo.serializers import (
    CreateTodoSerializer,
    TodoSerializer,
    UpdateTodoSerializer,
    first_error,
    todo_json,
    todos_json,
)

MAX_LIMIT = 1000


def error(message: str, status_code: int) -> Response:
    return Response({"error": message}, status=status_code)


def parse_id(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def json_body(request: Request) -> Any:
    """The parsed JSON body; no body or a body that is not JSON reads as ``{}`` (as express.json)."""
    try:
        data = request.data
    except UnsupportedMediaType:
        return {}
    return {} if data is None else data


to_query = create_condition_transformer(todo_rules)
allows = create_condition_authorizer(todo_rules)


def deny() -> NotAllowedError:
    return NotAllowedError("Unauthorized")


class TodoViewSet(ViewHeadersMixin, viewsets.ViewSet):
    """The todo API, with the plugin's ``logger``, ``http_auth`` and ``permissions`` services."""

    logger: Any = None
    http_auth: Any = None
    permissions: Any = None
    serializer_class = TodoSerializer

    def http_method_not_allowed(self, request: Request, *args: Any, **kwargs: Any) -> Any:
        return not_found(request)

    def perform_authentication(self, request: Request) -> None:
        """Callers are the plugin's ``http_auth`` credentials, which its barrier has checked:
        DRF's ``request.user`` is worked out only if something asks for it (as DRF suggests)."""

    def credentials(self, request: Request) -> Any:
        return self.http_auth.credentials(request._request)

    def decision(self, request: Request, permission: Permission) -> PolicyDecision:
        """The policy's decision on ``permission``, maybe conditional (for the caller to apply)."""
        (decision,) = self.permissions.authorize_conditional(
            [{"permission": permission}], credentials=self.credentials(request)
        )
        return decision

    def check(self, request: Request, permission: Permission, todo: Todo) -> None:
        if not allows(self.decision(request, permission), todo):
            raise deny()

    def list(self, request: Request) -> Response:
        params = request.query_params
        refs = params.getlist("entityRef")
        if len(refs) > 1:
            return error("entityRef must be given once", status.HTTP_400_BAD_REQUEST)
        entity_ref = refs[0] if refs else None
        decision = self.decision(request, todo_item_read_permission)
        if decision.result is AuthorizeResult.DENY:
            raise deny()
        condition = None
        if decision.result is AuthorizeResult.CONDITIONAL:
            condition = to_query(decision.conditions)
        if "limit" in params or "cursor" in params:
            return self.page(params, entity_ref, condition)
        if condition is None:
            rows = queries.newest_first(entity_ref)
        else:
            todos = Todo.objects.filter(condition)
            if entity_ref:
                todos = todos.filter(entity_ref=entity_ref)
            rows = list(queries.as_rows(todos))
        return api_response(self.request, todos_json(rows))

    def page(self, params: Any, entity_ref: str | None, condition: Any) -> Response:
        """``?limit=N[&cursor=C]``: N todos, and a ``Link`` to the next page when there is one."""
        limits, cursors = params.getlist("limit"), params.getlist("cursor")
        if len(limits) != 1 or not limits[0].isdigit() or not 1 <= int(limits[0]) <= MAX_LIMIT:
            return error(
                f"limit must be an integer from 1 to {MAX_LIMIT:,}", status.HTTP_400_BAD_REQUEST
            )
        cursor = None
        if cursors:
            try:
                if len(cursors) > 1:
                    raise queries.InvalidCursor("given more than once")
                cursor = queries.Cursor.decode(cursors[0])
            except queries.InvalidCursor:
                return error("cursor is invalid", status.HTTP_400_BAD_REQUEST)
        rows, following = queries.page(int(limits[0]), cursor, entity_ref, condition)
        response = api_response(self.request, todos_json(rows))
        if following is not None:
            query = params.copy()
            query["cursor"] = following.encode()
            url = self.request.build_absolute_uri(f"?{query.urlencode()}")
            response["Link"] = f'<{url}>; rel="next"'
        return response

    def retrieve(self, request: Request, pk: str) -> Response:
        todo_id = parse_id(pk)
        row = queries.by_id(todo_id) if todo_id else None
        if row is None:
            return error("Todo not found", status.HTTP_404_NOT_FOUND)
        decision = self.decision(request, todo_item_read_permission)
        if decision.result is not AuthorizeResult.ALLOW:
            todo = Todo.objects.get(pk=todo_id)  # conditions are about the model
            if not allows(decision, todo):
                raise deny()
        return api_response(request, todo_json(row))

    def create(self, request: Request) -> Response:
        body = json_body(request)
        serializer = CreateTodoSerializer(data=body if isinstance(body, dict) else {})
        if not serializer.is_valid():
            return error(first_error(serializer.errors), status.HTTP_400_BAD_REQUEST)
        credentials = self.credentials(request)
        (decision,) = self.permissions.authorize(
            [{"permission": todo_item_create_permission}], credentials=credentials
        )
        if decision.result is not AuthorizeResult.ALLOW:
            raise deny()
        title, entity_ref = (
            serializer.validated_data["title"],
            serializer.validated_data.get("entityRef"),
        )
        principal = credentials.principal
        created_by = principal.user_entity_ref if principal.type == "user" else None
        self.logger.info(f'Creating todo: "{title}"{f" for {entity_ref}" if entity_ref else ""}')
        row = queries.create(title, entity_ref, created_by)
        return api_response(request, todo_json(row), status.HTTP_201_CREATED)

    def partial_update(self, request: Request, pk: str) -> Response:
        body = json_body(request)
        if not isinstance(body, dict):
            return error("request body must be a JSON object", status.HTTP_400_BAD_REQUEST)
        serializer = UpdateTodoSerializer(data=body)
        if not serializer.is_valid():
            return error(first_error(serializer.errors), status.HTTP_400_BAD_REQUEST)
        todo_id = parse_id(pk)
        with transaction.atomic(using=router.db_for_write(Todo)):
            todo = Todo.objects.select_for_update().filter(pk=todo_id).first() if todo_id else None
            if todo is None:
                return error(f"Todo with id {pk} not found", status.HTTP_404_NOT_FOUND)
            self.check(request, todo_item_update_permission, todo)
            changes = serializer.validated_data
            if "title" in changes:
                todo.title = changes["title"]
            if "completed" in changes:
                todo.completed = changes["completed"]
            if changes:
                todo.save(
                    update_fields=[{"title": "title", "completed": "completed"}[k] for k in changes]
                )
        return api_response(request, TodoSerializer(todo).data)

    def destroy(self, request: Request, pk: str) -> Response:
        todo_id = parse_id(pk)
        decision = self.decision(request, todo_item_delete_permission)
        if decision.result is AuthorizeResult.DENY:
            raise deny()
        todos = Todo.objects.filter(pk=todo_id)
        if decision.result is AuthorizeResult.CONDITIONAL:
            # One statement: only a todo that meets the conditions is deleted.
            deleted = todos.filter(to_query(decision.conditions)).delete()[0] if todo_id else 0
            if not deleted and todo_id and todos.exists():
                raise deny()
        else:
            deleted = todos.delete()[0] if todo_id else 0
        if not deleted:
            return error(f"Todo with id {pk} not found", status.HTTP_404_NOT_FOUND)
        return Response(status=status.HTTP_204_NO_CONTENT)
