"""The auth service: turns tokens into credentials, and credentials into tokens for other plugins.

    credentials = auth.authenticate(token)
    if auth.is_principal(credentials, "user"):
        credentials.principal.user_entity_ref
    token = auth.get_plugin_request_token(on_behalf_of=credentials, target_plugin_id="catalog").token

A token is checked in Backstage's order, and the first kind that recognises it decides (a token
that claims a kind and fails its checks is refused, never tried as another kind):

1. plugin tokens (``typ: vnd.backstage.plugin``), with the caller's keys; one carrying a user token
   (``obo``) stands for that user, with the calling plugin as ``actor``;
2. user tokens (``typ: vnd.backstage.user``, or ``vnd.backstage.limited-user`` where limited access
   is allowed), with the keys of the auth plugin's JWKS;
3. external tokens (``backend.auth.externalAccess``);

and anything else is ``AuthenticationError('Illegal token')``.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from backstage_core.auth.jwks import JwksClient
from backstage_core.auth.tokens import MAX_TOKEN_LENGTH, compact_json
from backstage_core.auth.user_tokens import UserTokenHandler, create_limited_user_token
from backstage_core.errors import AuthenticationError, NotAllowedError
from backstage_core.services.definitions import core_services
from backstage_core.services.local_plugins import local_plugins_ref
from backstage_core.wiring.features import ServiceFactory, create_service_factory

__all__ = [
    "AuthService",
    "BackstageCredentials",
    "DefaultAuthService",
    "LimitedUserToken",
    "NonePrincipal",
    "PluginRequestToken",
    "PrincipalType",
    "ServicePrincipal",
    "TokenHandler",
    "UserPrincipal",
    "auth_factory",
    "user_jwks_client",
]

PrincipalType = Literal["user", "service", "none"]
PLUGIN_KEY_DURATION = timedelta(hours=1)
AUTH_JWKS_PATH = "/.well-known/jwks.json"


@dataclass(frozen=True)
class ServicePrincipal:
    """A plugin (``plugin:<id>``) or an external caller, maybe limited by access restrictions."""

    subject: str
    access_restrictions: Mapping[str, Any] | None = None
    type: Literal["service"] = "service"

    def __str__(self) -> str:
        if not self.access_restrictions:
            return f"servicePrincipal{{{self.subject}}}"
        digest = hashlib.sha256(compact_json(self.access_restrictions).encode()).digest()
        summary = base64.b64encode(digest).decode().rstrip("=")
        return f"servicePrincipal{{{self.subject},accessRestrictions={summary}}}"


@dataclass(frozen=True)
class UserPrincipal:
    """A user, by entity ref; ``actor`` is the plugin acting on their behalf, if any."""

    user_entity_ref: str
    actor: ServicePrincipal | None = None
    type: Literal["user"] = "user"

    def __str__(self) -> str:
        if self.actor is None:
            return f"userPrincipal{{{self.user_entity_ref}}}"
        return f"userPrincipal{{{self.user_entity_ref},actor={{{self.actor}}}}}"


@dataclass(frozen=True)
class NonePrincipal:
    """Nobody: a request without credentials."""

    type: Literal["none"] = "none"

    def __str__(self) -> str:
        return "nonePrincipal"


@dataclass(frozen=True)
class BackstageCredentials:
    """Who made a request: a user, a service, or nobody; with the token it came with."""

    principal: UserPrincipal | ServicePrincipal | NonePrincipal
    token: str | None = field(default=None, repr=False)
    expires_at: datetime | None = None
    # An external token's restrictions for every plugin, for delegating calls (never serialised).
    all_access_restrictions: Mapping[str, Any] | None = field(
        default=None, repr=False, compare=False
    )

    def __str__(self) -> str:
        return f"backstageCredentials{{{self.principal}}}"


@dataclass(frozen=True)
class PluginRequestToken:
    """A token for calling another plugin, from ``get_plugin_request_token``."""

    token: str


@dataclass(frozen=True)
class LimitedUserToken:
    """A limited user token (for cookies) and when it expires."""

    token: str
    expires_at: datetime


def _when(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class TokenHandler(Protocol):
    """Recognises one kind of token: returns credentials, None for "not mine", or raises."""

    def verify(self, token: str, *, allow_limited_access: bool) -> BackstageCredentials | None: ...


class AuthService:
    """A plugin's auth service over a list of token handlers (the mock auth service is one)."""

    def __init__(self, plugin_id: str, handlers: Sequence[TokenHandler] = ()) -> None:
        self.plugin_id = plugin_id
        self._handlers = list(handlers)

    def authenticate(
        self, token: str, *, allow_limited_access: bool = False
    ) -> BackstageCredentials:
        if len(token) > MAX_TOKEN_LENGTH:
            raise AuthenticationError("Illegal token, it is too large")
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

    def get_plugin_request_token(
        self, *, on_behalf_of: BackstageCredentials, target_plugin_id: str
    ) -> PluginRequestToken:
        raise NotImplementedError("This auth service can not issue plugin request tokens")

    def get_limited_user_token(self, credentials: BackstageCredentials) -> LimitedUserToken:
        raise NotImplementedError("This auth service can not issue limited user tokens")

    def list_public_service_keys(self) -> dict[str, Any]:
        return {"keys": []}


class DefaultAuthService(AuthService):
    """Backstage's auth service: plugin, user and external tokens, in that order."""

    def __init__(
        self,
        plugin_id: str,
        *,
        user_tokens: UserTokenHandler,
        plugin_tokens: Any,
        external_tokens: Any,
        disable_default_auth_policy: bool = False,
    ) -> None:
        super().__init__(plugin_id)
        self.user_tokens = user_tokens
        self.plugin_tokens = plugin_tokens
        self.external_tokens = external_tokens
        self._disable_default_auth_policy = disable_default_auth_policy

    def authenticate(
        self, token: str, *, allow_limited_access: bool = False
    ) -> BackstageCredentials:
        if len(token) > MAX_TOKEN_LENGTH:
            raise AuthenticationError("Illegal token, it is too large")
        plugin = self.plugin_tokens.verify(token)
        if plugin is not None:
            if plugin.limited_user_token:
                user = self.user_tokens.verify(plugin.limited_user_token)
                if user is None:
                    raise AuthenticationError("Invalid user token in plugin token obo claim")
                return BackstageCredentials(
                    UserPrincipal(user.user_entity_ref, ServicePrincipal(plugin.subject)),
                    token=plugin.limited_user_token,
                    expires_at=_when(user.expires_at),
                )
            return BackstageCredentials(ServicePrincipal(plugin.subject))
        user = self.user_tokens.verify(token)
        if user is not None:
            if user.limited and not allow_limited_access:
                raise AuthenticationError("Illegal limited user token")
            return BackstageCredentials(
                UserPrincipal(user.user_entity_ref), token=token, expires_at=_when(user.expires_at)
            )
        external = self.external_tokens.verify(token)
        if external is not None:
            return BackstageCredentials(
                ServicePrincipal(external.subject, external.access_restrictions),
                all_access_restrictions=external.all_access_restrictions,
            )
        raise AuthenticationError("Illegal token")

    def get_plugin_request_token(
        self, *, on_behalf_of: BackstageCredentials, target_plugin_id: str
    ) -> PluginRequestToken:
        """A token for calling ``target_plugin_id`` as this plugin, on behalf of the credentials."""
        principal = on_behalf_of.principal
        if principal.type == "none" and self._disable_default_auth_policy:
            return PluginRequestToken("")
        if isinstance(principal, ServicePrincipal):
            if principal.access_restrictions:
                target = (on_behalf_of.all_access_restrictions or {}).get(target_plugin_id)
                if target is None:
                    raise NotAllowedError(
                        f"Access to target plugin '{target_plugin_id}' is not included in "
                        f"token's access restrictions"
                    )
                if target.get("permissionNames") or target.get("permissionAttributes"):
                    raise NotAllowedError(
                        f"Access to target plugin '{target_plugin_id}' is restricted and cannot "
                        f"be delegated"
                    )
            return PluginRequestToken(self.plugin_tokens.issue(target_plugin_id=target_plugin_id))
        if isinstance(principal, UserPrincipal):
            if not on_behalf_of.token:
                raise RuntimeError("User credentials is unexpectedly missing token")
            limited, expires_at = create_limited_user_token(on_behalf_of.token)
            return PluginRequestToken(
                self.plugin_tokens.issue(
                    target_plugin_id=target_plugin_id, on_behalf_of=(limited, expires_at)
                )
            )
        raise AuthenticationError(
            f"Refused to issue service token for credential type '{principal.type}'"
        )

    def get_limited_user_token(self, credentials: BackstageCredentials) -> LimitedUserToken:
        if not credentials.token:
            raise AuthenticationError("User credentials is unexpectedly missing token")
        token, expires_at = create_limited_user_token(credentials.token)
        return LimitedUserToken(token, _when(expires_at))

    def list_public_service_keys(self) -> dict[str, Any]:
        return {"keys": self.plugin_tokens.key_source.list_keys()}


class _AuthRoot:
    """What every plugin's auth service shares: the auth plugin's JWKS."""

    def __init__(self) -> None:
        self.user_jwks: JwksClient | None = None


def user_jwks_client(local: Any, discovery: Any) -> JwksClient:
    """The auth plugin's JWKS: in-process when the auth plugin runs here, else over HTTP."""
    from backstage_core.http.client import request_json

    def fetch() -> Any:
        provider = local.get("auth", "user_keys")
        if provider is not None:
            return provider()
        return request_json("GET", f"{discovery.get_base_url('auth')}{AUTH_JWKS_PATH}")

    return JwksClient(fetch)


def auth_factory() -> ServiceFactory:
    """Backstage's auth service, for each plugin; plugin keys in the plugin's own database."""
    from backstage_core.auth.external import ExternalTokenHandler
    from backstage_core.auth.plugin_keys import create_plugin_key_source
    from backstage_core.auth.plugin_tokens import PluginTokenHandler

    async def create_root_context(local: Any, config: Any) -> _AuthRoot:
        return _AuthRoot()

    async def factory(
        root: _AuthRoot,
        local: Any,
        config: Any,
        plugin: Any,
        discovery: Any,
        database: Any,
        logger: Any,
    ) -> DefaultAuthService:
        plugin_id = plugin.get_id()
        if root.user_jwks is None:
            root.user_jwks = user_jwks_client(local, discovery)
        key_source = create_plugin_key_source(config, database, logger, PLUGIN_KEY_DURATION)
        local.provide(plugin_id, "plugin_keys", lambda: {"keys": key_source.list_keys()})
        plugin_tokens = PluginTokenHandler(
            own_plugin_id=plugin_id,
            key_source=key_source,
            key_duration=PLUGIN_KEY_DURATION,
            discovery=discovery,
            local_jwks=lambda caller: local.get(caller, "plugin_keys"),
            logger=logger,
        )
        user_tokens = UserTokenHandler(
            root.user_jwks, logger, issuer=lambda: discovery.get_external_base_url("auth")
        )
        return DefaultAuthService(
            plugin_id,
            user_tokens=user_tokens,
            plugin_tokens=plugin_tokens,
            external_tokens=ExternalTokenHandler(plugin_id, config, logger),
            disable_default_auth_policy=bool(
                config.get_optional_boolean("backend.auth.dangerouslyDisableDefaultAuthPolicy")
            ),
        )

    return create_service_factory(
        service=core_services.auth,
        deps={
            "local": local_plugins_ref,
            "config": core_services.root_config,
            "plugin": core_services.plugin_metadata,
            "discovery": core_services.discovery,
            "database": core_services.database,
            "logger": core_services.logger,
        },
        create_root_context=create_root_context,
        factory=factory,
    )
