"""The one error handler: any exception from a plugin becomes Backstage's error envelope.

    {"error": {"name": "NotFoundError", "message": "..."},
     "request": {"method": "GET", "url": "/todos/1"},
     "response": {"statusCode": 404}}

The status comes from the error's own status, else from its name (InputError 400, ... , else 500).
Django's and DRF's exceptions are given their Backstage names. Anything unexpected, database errors
included, is logged with a log id and answered as ``An internal error occurred logId=<hex>``:
internal messages never reach the client.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.db import Error as DatabaseError
from django.http import Http404, HttpRequest, HttpResponse

from backstage_core.errors import (
    AuthenticationError,
    CustomErrorBase,
    InputError,
    NotAllowedError,
    NotFoundError,
    ServiceUnavailableError,
    serialize_error,
    status_for_error,
)

__all__ = ["drf_exception_handler", "error_response", "json_response", "to_backstage_error"]

JSON_CONTENT_TYPE = "application/json; charset=utf-8"


def json_response(body: Any, status: int = 200) -> HttpResponse:
    """A compact JSON response, as Express's ``res.json`` sends it."""
    return HttpResponse(
        json.dumps(body, separators=(",", ":"), ensure_ascii=False),
        status=status,
        content_type=JSON_CONTENT_TYPE,
    )


class HttpError(CustomErrorBase):
    """An error with an explicit status and name, for statuses Backstage has no class for."""

    def __init__(self, name: str, message: str, status: int) -> None:
        super().__init__(message)
        self.name = name
        self.status_code = status


class PayloadTooLargeError(HttpError):
    def __init__(self, message: str = "request entity too large") -> None:
        super().__init__("PayloadTooLargeError", message, 413)


def _drf_error(exc: Exception) -> CustomErrorBase | None:
    try:
        from rest_framework import exceptions as drf
    except ImportError:  # pragma: no cover
        return None
    if not isinstance(exc, drf.APIException):
        return None
    message = _detail_text(exc.detail)
    if isinstance(exc, drf.ValidationError):
        return InputError(message)
    if isinstance(exc, drf.ParseError):
        return HttpError("SyntaxError", message, 400)
    if isinstance(exc, drf.NotAuthenticated | drf.AuthenticationFailed):
        return AuthenticationError(message)
    if isinstance(exc, drf.PermissionDenied):
        return NotAllowedError(message)
    if isinstance(exc, drf.NotFound):
        return NotFoundError(message)
    name = type(exc).__name__
    return HttpError(name if name.endswith("Error") else f"{name}Error", message, exc.status_code)


def _detail_text(detail: Any) -> str:
    if isinstance(detail, dict):
        parts = []
        for key, value in detail.items():
            text = _detail_text(value)
            parts.append(text if key == "non_field_errors" else f"{key}: {text}")
        return "; ".join(parts)
    if isinstance(detail, list):
        return "; ".join(_detail_text(item) for item in detail)
    return str(detail)


def to_backstage_error(exc: BaseException) -> tuple[BaseException, bool]:
    """The error to answer with, and whether it is an internal one to hide behind a log id."""
    if isinstance(exc, CustomErrorBase):
        return exc, False
    drf_error = _drf_error(exc) if isinstance(exc, Exception) else None
    if drf_error is not None:
        return drf_error, False
    if isinstance(exc, Http404):
        return NotFoundError(str(exc) or "Not found"), False
    if isinstance(exc, PermissionDenied):
        return NotAllowedError(str(exc) or "Permission denied"), False
    if isinstance(exc, RequestDataTooBig):
        return PayloadTooLargeError(), False
    if isinstance(exc, SuspiciousOperation):
        return InputError(str(exc)), False
    if isinstance(exc, DatabaseError) and _is_unavailable(exc):
        return ServiceUnavailableError("Database is unavailable"), False
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and 400 <= status < 500:
        return exc, False
    return exc, True


def _is_unavailable(exc: DatabaseError) -> bool:
    """A connection that could not be made or was lost: the database, not the request, is at fault."""
    from django.db import InterfaceError, OperationalError

    if isinstance(exc, InterfaceError):
        return True
    if not isinstance(exc, OperationalError):
        return False
    text = str(exc).lower()
    return any(
        marker in text
        for marker in (
            "connection", "could not connect", "server closed", "timeout", "timed out",
            "terminating", "can't connect", "lost connection", "gone away",
        )
    )  # fmt: skip


def error_response(
    request: HttpRequest,
    exc: BaseException,
    *,
    logger: Any,
    show_stack: bool,
    mount_path: str = "",
) -> HttpResponse:
    """Log as needed and answer with the envelope for ``exc``."""
    error, internal = to_backstage_error(exc)
    if internal:
        log_id = secrets.token_hex(10)
        logger.child({"logId": log_id}).error(
            f"Filtered internal error with logId={log_id} from response", exc
        )
        error = CustomErrorBase(f"An internal error occurred logId={log_id}")
        error.name = "Error"
    status = status_for_error(error)
    if status >= 500:
        logger.child({"type": "errorHandler"}).error(f"Request failed with status {status}", error)
    url = request.get_full_path()
    if mount_path and url.startswith(mount_path):
        url = url[len(mount_path) :] or "/"
    body = {
        "error": serialize_error(error, include_stack=show_stack and not internal),
        "request": {"method": request.method, "url": url},
        "response": {"statusCode": status},
    }
    return json_response(body, status)


def drf_exception_handler(exc: Exception, context: dict[str, Any]) -> Any:
    """DRF's EXCEPTION_HANDLER: plugin views answer with the envelope; others as DRF does."""
    request = context.get("request")
    django_request = getattr(request, "_request", request)
    mount = getattr(django_request, "backstage_mount", None)
    if mount is None:
        from rest_framework.views import exception_handler

        return exception_handler(exc, context)
    return mount.error_response(django_request, exc)
