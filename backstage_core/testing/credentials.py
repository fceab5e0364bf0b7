"""Mock credentials and their tokens, as Backstage's ``mockCredentials``.

    client.get("/api/todo/todos", headers={"Authorization": mock_credentials.user.header()})
    client.get("/api/todo/todos", headers={"Authorization": mock_credentials.none.header()})  # 401

The mock auth service (``mock_services.auth()``) accepts these tokens, and only these.
"""

from __future__ import annotations

import json
import re
from typing import Any

from backstage_core.services.auth import (
    BackstageCredentials,
    NonePrincipal,
    ServicePrincipal,
    UserPrincipal,
)

__all__ = ["mock_credentials"]

DEFAULT_USER = "user:default/mock"
DEFAULT_SERVICE = "external:test-service"
NONE_TOKEN = "mock-none-token"
USER_TOKEN = "mock-user-token"
USER_TOKEN_PREFIX = "mock-user-token:"
INVALID_USER_TOKEN = "mock-invalid-user-token"
LIMITED_TOKEN_PREFIX = "mock-limited-user-token:"
INVALID_LIMITED_TOKEN = "mock-invalid-limited-user-token"
SERVICE_TOKEN = "mock-service-token"
SERVICE_TOKEN_PREFIX = "mock-service-token:"
INVALID_SERVICE_TOKEN = "mock-invalid-service-token"
AUTH_COOKIE = "backstage-auth"
_ENTITY_REF = re.compile(r"^.+:.+/.+$")


def _check_ref(ref: str) -> str:
    if not _ENTITY_REF.match(ref):
        raise TypeError(
            f"Invalid user entity reference '{ref}', expected <kind>:<namespace>/<name>"
        )
    return ref


def _compact(data: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in data.items() if v is not None}, separators=(",", ":"))


class _None:
    def __call__(self) -> BackstageCredentials:
        return BackstageCredentials(NonePrincipal())

    def token(self) -> str:
        return NONE_TOKEN

    def header(self) -> str:
        return f"Bearer {NONE_TOKEN}"


class _User:
    def __call__(
        self, user_entity_ref: str = DEFAULT_USER, *, actor: str | None = None
    ) -> BackstageCredentials:
        principal = UserPrincipal(
            _check_ref(user_entity_ref), ServicePrincipal(actor) if actor else None
        )
        return BackstageCredentials(principal, token=USER_TOKEN)

    def token(self, user_entity_ref: str | None = None, *, actor: str | None = None) -> str:
        if user_entity_ref is None and actor is None:
            return USER_TOKEN
        payload = {
            "sub": _check_ref(user_entity_ref or DEFAULT_USER),
            "actor": {"subject": actor} if actor else None,
        }
        return USER_TOKEN_PREFIX + _compact(payload)

    def header(self, user_entity_ref: str | None = None, *, actor: str | None = None) -> str:
        return f"Bearer {self.token(user_entity_ref, actor=actor)}"

    def invalid_token(self) -> str:
        return INVALID_USER_TOKEN

    def invalid_header(self) -> str:
        return f"Bearer {INVALID_USER_TOKEN}"


class _LimitedUser(_User):
    def token(self, user_entity_ref: str | None = None, *, actor: str | None = None) -> str:
        return LIMITED_TOKEN_PREFIX + _compact({"sub": _check_ref(user_entity_ref or DEFAULT_USER)})

    def cookie(self, user_entity_ref: str | None = None) -> str:
        return f"{AUTH_COOKIE}={self.token(user_entity_ref)}"

    def invalid_token(self) -> str:
        return INVALID_LIMITED_TOKEN

    def invalid_cookie(self) -> str:
        return f"{AUTH_COOKIE}={INVALID_LIMITED_TOKEN}"


class _Service:
    def __call__(
        self, subject: str = DEFAULT_SERVICE, access_restrictions: dict[str, Any] | None = None
    ) -> BackstageCredentials:
        return BackstageCredentials(
            ServicePrincipal(subject, access_restrictions), token=SERVICE_TOKEN
        )

    def token(
        self,
        *,
        on_behalf_of: BackstageCredentials | None = None,
        target_plugin_id: str | None = None,
    ) -> str:
        if on_behalf_of is None and target_plugin_id is None:
            return SERVICE_TOKEN
        principal = on_behalf_of.principal if on_behalf_of is not None else None
        payload = {
            "sub": principal.subject if isinstance(principal, ServicePrincipal) else None,
            "obo": principal.user_entity_ref if isinstance(principal, UserPrincipal) else None,
            "target": target_plugin_id,
        }
        return SERVICE_TOKEN_PREFIX + _compact(payload)

    def header(self, **kwargs: Any) -> str:
        return f"Bearer {self.token(**kwargs)}"

    def invalid_token(self) -> str:
        return INVALID_SERVICE_TOKEN

    def invalid_header(self) -> str:
        return f"Bearer {INVALID_SERVICE_TOKEN}"


class MockCredentials:
    """``none``, ``user``, ``limited_user`` and ``service``: credentials, tokens and headers."""

    none = _None()
    user = _User()
    limited_user = _LimitedUser()
    service = _Service()


mock_credentials = MockCredentials()
