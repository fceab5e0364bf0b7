"""The httpAuth service: the credentials of an incoming request, and the user cookie.

    credentials = http_auth.credentials(request, allow=["user"])
    http_auth.issue_user_cookie(request, response)

The token is the ``Authorization: Bearer`` header; where limited access is allowed, the
``backstage-auth`` cookie too. Credentials are worked out once per request. The cookie holds a
*limited* user token, good for proving who the user is on routes opened with ``user-cookie``
(images, downloads) and nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from backstage_core.errors import AuthenticationError, NotAllowedError
from backstage_core.services.auth import AuthService, BackstageCredentials
from backstage_core.services.definitions import core_services
from backstage_core.wiring.features import ServiceFactory, create_service_factory

__all__ = ["AUTH_COOKIE", "HttpAuthService", "bearer_token", "http_auth_factory"]

AUTH_COOKIE = "backstage-auth"
COOKIE_REFRESH_MARGIN = timedelta(minutes=5)
_BEARER = re.compile(r"^Bearer[ ]+(\S+)$", re.IGNORECASE)


def bearer_token(request: Any) -> str | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    match = _BEARER.match(header)
    return match.group(1) if match else None


class HttpAuthService:
    """Reads credentials from requests for one plugin, and issues its user cookie."""

    def __init__(self, auth: AuthService, discovery: Any = None) -> None:
        self._auth = auth
        self._discovery = discovery

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

    def _cookie_options(self) -> dict[str, Any]:
        if self._discovery is None:
            return {"httponly": True, "samesite": "Lax"}
        url = urlsplit(self._discovery.get_external_base_url(self._auth.plugin_id))
        secure = url.scheme == "https" or url.hostname == "localhost"
        return {
            "domain": url.hostname,
            "httponly": True,
            "secure": secure,
            "samesite": "None" if secure else "Lax",
        }

    def issue_user_cookie(
        self, request: Any, response: Any, *, credentials: BackstageCredentials | None = None
    ) -> datetime:
        """Set the ``backstage-auth`` cookie for the request's user; returns when it expires.

        ``credentials`` of nobody clear the cookie. An existing cookie that is valid for more
        than five more minutes is kept.
        """
        options = self._cookie_options()
        if credentials is not None and credentials.principal.type == "none":
            response.delete_cookie(
                AUTH_COOKIE, domain=options.get("domain"), samesite=options["samesite"]
            )
            return datetime.now(UTC)
        if credentials is not None and credentials.principal.type != "user":
            raise AuthenticationError("Refused to issue cookie for non-user principal")
        if credentials is None:
            credentials = self.credentials(request, allow=["user"])
        existing = request.COOKIES.get(AUTH_COOKIE)
        if existing:
            try:
                current = self._auth.authenticate(existing, allow_limited_access=True)
            except AuthenticationError:
                current = None
            if (
                current is not None
                and current.expires_at is not None
                and current.expires_at - datetime.now(UTC) > COOKIE_REFRESH_MARGIN
            ):
                return current.expires_at
        limited = self._auth.get_limited_user_token(credentials)
        if not limited.token:
            raise RuntimeError("User credentials is unexpectedly missing token")
        response.set_cookie(AUTH_COOKIE, limited.token, expires=limited.expires_at, **options)
        return limited.expires_at


def http_auth_factory() -> ServiceFactory:
    async def factory(auth: Any, discovery: Any) -> HttpAuthService:
        return HttpAuthService(auth, discovery)

    return create_service_factory(
        service=core_services.http_auth,
        deps={"auth": core_services.auth, "discovery": core_services.discovery},
        factory=factory,
    )
