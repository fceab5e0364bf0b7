"""The auth service: turns tokens into credentials, and credentials into principals.

    credentials = auth.authenticate(token)
    if auth.is_principal(credentials, "user"):
        credentials.principal.user_entity_ref

Tokens are checked by token handlers, each able to recognise one kind of token. A token that no
handler accepts is refused with ``AuthenticationError('Illegal token')``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from backstage_core.errors import AuthenticationError
from backstage_core.services.definitions import core_services
from backstage_core.wiring.features import ServiceFactory, create_service_factory

__all__ = [
    "AuthService",
    "BackstageCredentials",
    "NonePrincipal",
    "PrincipalType",
    "ServicePrincipal",
    "TokenHandler",
    "UserPrincipal",
    "auth_factory",
]

PrincipalType = Literal["user", "service", "none"]


@dataclass(frozen=True)
class UserPrincipal:
    user_entity_ref: str
    actor: ServicePrincipal | None = None
    type: Literal["user"] = "user"


@dataclass(frozen=True)
class ServicePrincipal:
    subject: str
    access_restrictions: Mapping[str, Any] | None = None
    type: Literal["service"] = "service"


@dataclass(frozen=True)
class NonePrincipal:
    type: Literal["none"] = "none"


@dataclass(frozen=True)
class BackstageCredentials:
    """Who made a request: a user, a service, or nobody; with the token it came with."""

    principal: UserPrincipal | ServicePrincipal | NonePrincipal
    token: str | None = field(default=None, repr=False)
    expires_at: datetime | None = None


class TokenHandler(Protocol):
    """Recognises one kind of token: returns credentials, None for "not mine", or raises."""

    def verify(self, token: str, *, allow_limited_access: bool) -> BackstageCredentials | None: ...


class AuthService:
    """A plugin's auth service."""

    def __init__(self, plugin_id: str, handlers: Sequence[TokenHandler] = ()) -> None:
        self.plugin_id = plugin_id
        self._handlers = list(handlers)

    def authenticate(
        self, token: str, *, allow_limited_access: bool = False
    ) -> BackstageCredentials:
        for handler in self._handlers:
            credentials = handler.verify(token, allow_limited_access=allow_limited_access)
            if credentials is not None:
                return credentials
        raise AuthenticationError("Illegal token")

    @staticmethod
    def is_principal(
        credentials: BackstageCredentials, type: PrincipalType | Literal["unknown"]
    ) -> bool:
        return type == "unknown" or credentials.principal.type == type

    @staticmethod
    def get_none_credentials() -> BackstageCredentials:
        return BackstageCredentials(NonePrincipal())

    def get_own_service_credentials(self) -> BackstageCredentials:
        return BackstageCredentials(ServicePrincipal(f"plugin:{self.plugin_id}"))


def auth_factory(token_handlers: Iterable[Any] = ()) -> ServiceFactory:
    """The auth service, checking tokens with ``token_handlers`` (none: every token is refused)."""
    handlers = list(token_handlers)
    return create_service_factory(
        service=core_services.auth,
        deps={"plugin": core_services.plugin_metadata},
        factory=lambda plugin: AuthService(plugin.get_id(), handlers),
    )
