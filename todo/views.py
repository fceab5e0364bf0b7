"""The todo REST API, as the seed's router.ts answers it (and stricter about bad input).

    GET    /todos[?entityRef=X]   200 [todo, ...] newest first
    GET    /todos/<id>            200 todo | 404 {"error": "Todo not found"}
    POST   /todos                 201 todo | 400 {"error": "title is required"}
    PATCH  /todos/<id>            200 todo | 404 {"error": "Todo with id <id> not found"}
    DELETE /todos/<id>            204      | 404 {"error": "Todo with id <id> not found"}

Any other method is a 404 with an empty body, as Express answers it.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import router, transaction
from rest_framework import status, viewsets
from rest_framework.exceptions import UnsupportedMediaType
from rest_framework.request import Request
from rest_framework.response import Response

from backstage_core.http.urls import not_found
from todo.models import Todo
from todo.serializers import CreateTodoSerializer, TodoSerializer, UpdateTodoSerializer, first_error


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


class TodoViewSet(viewsets.ViewSet):
    """The todo API; ``logger`` is the plugin's logger."""

    logger: Any = None
    serializer_class = TodoSerializer

    def http_method_not_allowed(self, request: Request, *args: Any, **kwargs: Any) -> Any:
        return not_found(request)

    def list(self, request: Request) -> Response:
        refs = request.query_params.getlist("entityRef")
        if len(refs) > 1:
            return error("entityRef must be given once", status.HTTP_400_BAD_REQUEST)
        todos = Todo.objects.all()
        if refs and refs[0]:
            todos = todos.filter(entity_ref=refs[0])
        self.logger.debug(f"Fetching todos{f' for {refs[0]}' if refs and refs[0] else ''}")
        return Response(TodoSerializer(todos, many=True).data)

    def retrieve(self, request: Request, pk: str) -> Response:
        todo_id = parse_id(pk)
        todo = Todo.objects.filter(pk=todo_id).first() if todo_id else None
        if todo is None:
            return error("Todo not found", status.HTTP_404_NOT_FOUND)
        return Response(TodoSerializer(todo).data)

    def create(self, request: Request) -> Response:
        body = json_body(request)
        serializer = CreateTodoSerializer(data=body if isinstance(body, dict) else {})
        if not serializer.is_valid():
            return error(first_error(serializer.errors), status.HTTP_400_BAD_REQUEST)
        title, entity_ref = (
            serializer.validated_data["title"],
            serializer.validated_data.get("entityRef"),
        )
        self.logger.info(f'Creating todo: "{title}"{f" for {entity_ref}" if entity_ref else ""}')
        todo = Todo.objects.create(title=title, entity_ref=entity_ref)
        return Response(TodoSerializer(todo).data, status=status.HTTP_201_CREATED)

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
            changes = serializer.validated_data
            if "title" in changes:
                todo.title = changes["title"]
            if "completed" in changes:
                todo.completed = changes["completed"]
            if changes:
                todo.save(
                    update_fields=[{"title": "title", "completed": "completed"}[k] for k in changes]
                )
        return Response(TodoSerializer(todo).data)

    def destroy(self, request: Request, pk: str) -> Response:
        todo_id = parse_id(pk)
        deleted = Todo.objects.filter(pk=todo_id).delete()[0] if todo_id else 0
        if not deleted:
            return error(f"Todo with id {pk} not found", status.HTTP_404_NOT_FOUND)
        return Response(status=status.HTTP_204_NO_CONTENT)
