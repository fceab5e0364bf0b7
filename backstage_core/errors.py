"""Backstage's error classes, and how an error becomes an HTTP status and a JSON body.

Plugins raise these from views and services; the backend's one error handler turns any exception
into Backstage's error envelope with the status the error's name maps to::

    raise NotFoundError(f"No todo with id {todo_id}")
"""

from __future__ import annotations

import builtins
import traceback
from typing import Any

__all__ = [
    "AuthenticationError",
    "BackstageError",
    "ConflictError",
    "CustomErrorBase",
    "ForwardedError",
    "InputError",
    "NotAllowedError",
    "NotFoundError",
    "NotImplementedError",
    "NotModifiedError",
    "ResponseError",
    "ServiceUnavailableError",
    "serialize_error",
    "status_for_error",
    "stringify_error",
]


class CustomErrorBase(Exception):
    """An error with a Backstage ``name`` and an optional ``cause``."""

    name = "Error"

    def __init__(self, message: str | None = None, cause: BaseException | None = None) -> None:
        self.message = message if message is not None else ""
        full = self.message
        if cause is not None:
            cause_text = stringify_error(cause)
            full = f"{full}; caused by {cause_text}" if full else f"caused by {cause_text}"
        super().__init__(full)
        self.full_message = full
        self.cause = cause
        if cause is not None:
            self.__cause__ = cause

    def __str__(self) -> str:
        return self.full_message


BackstageError = CustomErrorBase


class InputError(CustomErrorBase):
    """The request was malformed or invalid (400)."""

    name = "InputError"


class AuthenticationError(CustomErrorBase):
    """The request has no valid credentials (401)."""

    name = "AuthenticationError"


class NotAllowedError(CustomErrorBase):
    """The caller is not allowed to do this (403)."""

    name = "NotAllowedError"


class NotFoundError(CustomErrorBase):
    """The requested thing does not exist (404)."""

    name = "NotFoundError"


class ConflictError(CustomErrorBase):
    """The request conflicts with the current state (409)."""

    name = "ConflictError"


class NotModifiedError(CustomErrorBase):
    """The resource has not changed (304)."""

    name = "NotModifiedError"


class NotImplementedError(CustomErrorBase, builtins.NotImplementedError):  # noqa: A001
    """The server does not support this (501). Also a builtin ``NotImplementedError``."""

    name = "NotImplementedError"


class ServiceUnavailableError(CustomErrorBase):
    """The service is not available right now (503)."""

    name = "ServiceUnavailableError"


class ResponseError(CustomErrorBase):
    """Another service answered with an error; keeps its status (``status_code``) and its body."""

    name = "ResponseError"

    def __init__(self, status_code: int, body: Any, url: str, reason: str = "") -> None:
        message = f"Request failed with {status_code} {reason}".rstrip()
        remote = body.get("error") if isinstance(body, dict) else None
        if isinstance(remote, dict) and remote.get("message"):
            message = f"{message}, {remote.get('name', 'Error')}: {remote['message']}"
        super().__init__(message)
        self.status_code = status_code
        self.body = body
        self.url = url


class ForwardedError(CustomErrorBase):
    """Wraps a cause, keeping the cause's name so the status it maps to is kept too."""

    def __init__(self, message: str, cause: BaseException) -> None:
        super().__init__(message, cause)
        self.name = error_name(cause)


STATUS_BY_NAME = {
    "InputError": 400,
    "AuthenticationError": 401,
    "NotAllowedError": 403,
    "NotFoundError": 404,
    "ConflictError": 409,
    "NotModifiedError": 304,
    "NotImplementedError": 501,
    "ServiceUnavailableError": 503,
}


def error_name(error: BaseException) -> str:
    """The Backstage name of an error: its ``name`` attribute, else its class name."""
    name = getattr(error, "name", None)
    return name if isinstance(name, str) else type(error).__name__


def status_for_error(error: BaseException) -> int:
    """The HTTP status for an error: its own ``status_code``/``status``, else by its name."""
    for attribute in ("status_code", "status", "statusCode"):
        status = getattr(error, attribute, None)
        if isinstance(status, int) and 100 <= status < 600:
            return status
    return STATUS_BY_NAME.get(error_name(error), 500)


def stringify_error(error: BaseException | Any) -> str:
    """``Name: message`` for an error, ``str()`` of anything else."""
    if isinstance(error, BaseException):
        message = str(error)
        return f"{error_name(error)}: {message}" if message else error_name(error)
    return f"unknown error '{error}'"


def serialize_error(error: BaseException, *, include_stack: bool = False) -> dict[str, Any]:
    """The JSON form of an error: ``name``, ``message``, optionally ``stack`` and ``cause``."""
    body: dict[str, Any] = {
        "name": error_name(error),
        "message": getattr(error, "full_message", None) or str(error),
    }
    if include_stack:
        body["stack"] = "".join(traceback.format_exception(error)).rstrip()
    cause = getattr(error, "cause", None)
    if isinstance(cause, BaseException):
        body["cause"] = serialize_error(cause, include_stack=include_stack)
    return body
