"""The userInfo service: who a user is and which entities they own (their ownership refs).

    info = user_info.get_user_info(credentials)
    info.user_entity_ref, info.ownership_entity_refs

Ownership refs come from the token's ``ent`` claim when it has one; the auth plugin leaves them out
of tokens by default and records them when it signs in a user, so they are otherwise asked of
the auth plugin (``GET /api/auth/v1/userinfo``, in-process when it runs in this backend). Answers
are kept for 5 seconds per token.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from backstage_core.auth.tokens import peek
from backstage_core.errors import AuthenticationError
from backstage_core.services.auth import BackstageCredentials
from backstage_core.services.definitions import core_services
from backstage_core.services.local_plugins import local_plugins_ref
from backstage_core.wiring.features import ServiceFactory, create_service_factory

__all__ = ["BackstageUserInfo", "UserInfoService", "user_info_factory"]

CACHE_TTL = 5.0
SWEEP_INTERVAL = 30.0


@dataclass(frozen=True)
class BackstageUserInfo:
    """A user's entity ref and ownership refs, from their token."""

    user_entity_ref: str
    ownership_entity_refs: list[str]

    def to_json(self) -> dict[str, Any]:
        return {
            "userEntityRef": self.user_entity_ref,
            "ownershipEntityRefs": list(self.ownership_entity_refs),
        }


class _Cache:
    """Answers per token for a few seconds, shared by every plugin of the backend."""

    def __init__(self) -> None:
        self.entries: dict[str, tuple[float, BackstageUserInfo]] = {}
        self.lock = threading.Lock()
        self.swept_at = time.monotonic()

    def get(self, token: str) -> BackstageUserInfo | None:
        entry = self.entries.get(token)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, token: str, info: BackstageUserInfo) -> None:
        now = time.monotonic()
        with self.lock:
            self.entries[token] = (now + CACHE_TTL, info)
            if now - self.swept_at > SWEEP_INTERVAL:
                self.swept_at = now
                for key in [k for k, (expiry, _) in self.entries.items() if expiry < now]:
                    del self.entries[key]


class UserInfoService:
    """Reads a user's info from their token, or from the auth plugin."""

    def __init__(self, discovery: Any, local: Any, cache: _Cache | None = None) -> None:
        self._discovery = discovery
        self._local = local
        self._cache = cache or _Cache()

    def get_user_info(self, credentials: BackstageCredentials) -> BackstageUserInfo:
        if credentials.principal.type != "user":
            raise TypeError("Only user credentials are supported")
        token = credentials.token
        if not token:
            raise RuntimeError("User credentials is unexpectedly missing token")
        cached = self._cache.get(token)
        if cached is not None:
            return cached
        info = self._resolve(token)
        self._cache.put(token, info)
        return info

    def _resolve(self, token: str) -> BackstageUserInfo:
        try:
            _, payload = peek(token)
        except ValueError as error:
            raise AuthenticationError("Invalid user token") from error
        subject, ownership = payload.get("sub"), payload.get("ent")
        if not isinstance(subject, str):
            raise TypeError("User entity ref must be a string")
        if not ownership:
            ownership = self._fetch_claims(token).get("ent")
        if not ownership:
            raise ValueError("Ownership entity refs can not be determined")
        if not isinstance(ownership, list) or not all(isinstance(r, str) for r in ownership):
            raise TypeError("Ownership entity refs must be an array of strings")
        return BackstageUserInfo(subject, ownership)

    def _fetch_claims(self, token: str) -> dict[str, Any]:
        provider = self._local.get("auth", "userinfo")
        if provider is not None:
            body = provider(token)
        else:
            from backstage_core.http.client import request_json

            url = f"{self._discovery.get_base_url('auth')}/v1/userinfo"
            body = request_json("GET", url, token=token)
        claims = body.get("claims") if isinstance(body, dict) else None
        return claims if isinstance(claims, dict) else {}


def user_info_factory() -> ServiceFactory:
    async def create_root_context(local: Any) -> _Cache:
        return _Cache()

    async def factory(cache: _Cache, discovery: Any, local: Any) -> UserInfoService:
        return UserInfoService(discovery, local, cache)

    return create_service_factory(
        service=core_services.user_info,
        deps={"discovery": core_services.discovery, "local": local_plugins_ref},
        create_root_context=create_root_context,
        factory=factory,
    )
