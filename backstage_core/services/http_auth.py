"""The httpAuth service: the credentials of an incoming request.

    credentials = http_auth.credentials(request, allow=["user"])

The token is the ``Authorization: Bearer`` header; where limited access is allowed, the
``backstage-auth`` cookie too. Credentials are worked out once per request.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from backstage_core.errors import AuthenticationError, NotAllowedError
from backstage_core.services.auth import AuthService, BackstageCredentials
from backstage_core.services.definitions import core_services
from backstage_core.wiring.features import ServiceFactory, create_service_factory

__all__ = ["AUTH_COOKIE", "HttpAuthService", "bearer_token", "http_auth_factory"]

AUTH_COOKIE = "backstage-auth"
_BEARER = re.compile(r"^Bearer[ ]+(\S+)$", re.IGNORECASE)


def bearer_token(request: Any) -> str | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    match = _BEARER.match(header)
    return match.group(1) if match else None


class HttpAuthService:
    """Reads credentials from requests for one plugin."""

    def __init__(self, auth: AuthService) -> None:
        self._auth = auth

    def _extract(self, request: Any, allow_limited_access: bool) -> BackstageCredentials:
        attribute = (
            "_backstage_limited_credentials" if allow_limited_access else "_backstage_credentials"
        )
        cached = getattr(request, attribute, None)
        if cached is not None:
            return cached
        token = bearer_token(request)
        if token is None and allow_limited_access:
            token = request.COOKIES.get(AUTH_COOKIE) or None
        if token is None:
            credentials = self._auth.get_none_credentials()
        else:
            credentials = self._auth.authenticate(token, allow_limited_access=allow_limited_access)
        setattr(request, attribute, credentials)
        return credentials

    def credentials(
        self,
        request: Any,
        *,
        allow: Sequence[str] | None = None,
        allow_limited_access: bool = False,
    ) -> BackstageCredentials:
        """The request's credentials; raises 401/403 when their principal is not in ``allow``."""
        credentials = self._extract(request, allow_limited_access)
        if allow is None:
            return credentials
        kind = credentials.principal.type
        if kind in allow:
            return credentials
        if kind == "none":
            raise AuthenticationError("Missing credentials")
        if kind in ("user", "service"):
            raise NotAllowedError(f"This endpoint does not allow '{kind}' credentials")
        raise NotAllowedError("Unknown principal type, this should never happen")


def http_auth_factory() -> ServiceFactory:
    return create_service_factory(
        service=core_services.http_auth,
        deps={"auth": core_services.auth},
        factory=lambda auth: HttpAuthService(auth),
    )
