"""The identity service of the seed: the user behind a request, from its ``Authorization`` header.

    result = identity.get_identity(request)      # None when the request has no token
    result.identity.user_entity_ref, result.identity.ownership_entity_refs, result.token

Configured by overriding the service, as the seed's ``identityFactory``::

    backend.add(identity_factory(issuer="http://localhost:7007/api/auth", algorithms=["ES256"]))

Only full user tokens are accepted (``aud: backstage``), signed with one of ``algorithms``
(ES256 by default) by a key of the auth plugin's JWKS, and from ``issuer`` when one is given.
Where the token does not carry the ownership refs (the auth plugin leaves them out by default),
they come from the userInfo service. Newer plugins use ``http_auth`` and ``user_info`` instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from backstage_core.auth.tokens import USER_AUDIENCE, check_issued_at, peek
from backstage_core.errors import AuthenticationError
from backstage_core.services.auth import BackstageCredentials, UserPrincipal, user_jwks_client
from backstage_core.services.definitions import core_services
from backstage_core.services.http_auth import bearer_token
from backstage_core.services.local_plugins import local_plugins_ref
from backstage_core.wiring.features import ServiceFactory, create_service_factory

__all__ = [
    "BackstageIdentityResponse",
    "BackstageUserIdentity",
    "IdentityService",
    "identity_factory",
]

DEFAULT_ALGORITHMS = ("ES256",)


@dataclass(frozen=True)
class BackstageUserIdentity:
    """A user's entity ref and the entities they own, as a user token claims them."""

    user_entity_ref: str
    ownership_entity_refs: list[str] = field(default_factory=list)
    type: Literal["user"] = "user"

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "userEntityRef": self.user_entity_ref,
            "ownershipEntityRefs": list(self.ownership_entity_refs),
        }


@dataclass(frozen=True)
class BackstageIdentityResponse:
    """A verified user token with the identity it carries."""

    token: str = field(repr=False)
    identity: BackstageUserIdentity
    expires_in_seconds: int | None = None


class IdentityService:
    """Verifies the bearer token of a request as a user token of the auth plugin."""

    def __init__(
        self,
        jwks: Any,
        user_info: Any,
        *,
        issuer: str | None = None,
        algorithms: Sequence[str] | None = DEFAULT_ALGORITHMS,
    ) -> None:
        self._jwks = jwks
        self._user_info = user_info
        self.issuer = issuer
        self.algorithms = list(algorithms) if algorithms is not None else None

    def get_identity(self, request: Any) -> BackstageIdentityResponse | None:
        if isinstance(request, dict):  # the seed's spelling: get_identity({"request": request})
            request = request["request"]
        if not request.META.get("HTTP_AUTHORIZATION"):
            return None
        try:
            return self.authenticate(bearer_token(request))
        except AuthenticationError:
            raise
        except Exception as error:
            raise AuthenticationError(str(error)) from error

    def authenticate(self, token: str | None) -> BackstageIdentityResponse:
        if not token:
            raise AuthenticationError("No token specified")
        try:
            header, _ = peek(token)
        except ValueError as error:
            raise AuthenticationError(f"Invalid token, {error}") from error
        import jwt

        algorithm = header.get("alg")
        if self.algorithms is not None and algorithm not in self.algorithms:
            raise AuthenticationError(f"Unexpected token algorithm '{algorithm}'")
        try:
            claims = jwt.decode(
                token,
                self._jwks.get_key(header),
                algorithms=[algorithm],
                audience=USER_AUDIENCE,
                issuer=self.issuer,
                options={"require": ["iat", "exp", "sub", "aud"], "verify_iat": False},
            )
            check_issued_at(claims)
        except Exception as error:
            raise AuthenticationError(f"Failed user token verification, {error}") from error
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise AuthenticationError("No user sub found in token")
        ownership = claims.get("ent")
        if not isinstance(ownership, list):
            credentials = BackstageCredentials(UserPrincipal(subject), token=token)
            ownership = self._user_info.get_user_info(credentials).ownership_entity_refs
        return BackstageIdentityResponse(token, BackstageUserIdentity(subject, list(ownership)))


def identity_factory(
    *, issuer: str | None = None, algorithms: Sequence[str] | None = DEFAULT_ALGORITHMS
) -> ServiceFactory:
    """The identity service; ``issuer`` and ``algorithms`` (ES256 by default) restrict tokens."""

    async def create_root_context(local: Any) -> dict[str, Any]:
        return {"jwks": None}

    async def factory(
        root: dict[str, Any], local: Any, discovery: Any, user_info: Any
    ) -> IdentityService:
        if root["jwks"] is None:
            root["jwks"] = user_jwks_client(local, discovery)
        return IdentityService(root["jwks"], user_info, issuer=issuer, algorithms=algorithms)

    return create_service_factory(
        service=core_services.identity,
        deps={
            "local": local_plugins_ref,
            "discovery": core_services.discovery,
            "user_info": core_services.user_info,
        },
        create_root_context=create_root_context,
        factory=factory,
    )
