"""Plugin-to-plugin tokens: signed by the calling plugin, verified with the caller's JWKS.

    header  {"typ": "vnd.backstage.plugin", "alg": "ES256", "kid": ...}
    payload {"sub": <calling plugin>, "aud": <target plugin>, "iat": ..., "exp": ..., "obo": ...}

``obo`` carries a limited user token when the call is made on a user's behalf. Tokens live an hour
at most, and never longer than the user token they carry. The target finds the caller's public keys
at ``/api/<caller>/.backstage/auth/v1/jwks.json`` (in-process when the caller runs in this backend).
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from backstage_core.auth.jwks import JwksClient
from backstage_core.auth.tokens import PLUGIN_TYP, check_issued_at, peek, sign, typ_matches
from backstage_core.errors import AuthenticationError, ResponseError
from backstage_core.http.client import request_json

__all__ = ["JWKS_PATH", "PluginTokenHandler", "VerifiedPlugin"]

JWKS_PATH = "/.backstage/auth/v1/jwks.json"
# Backstage's /^[a-z0-9_-]+$/i. Matched whole: Python's $ also matches before a final newline, and
# its re.IGNORECASE takes the Kelvin sign for a "k"; JavaScript's pattern takes neither.
_PLUGIN_ID = re.compile(r"[a-zA-Z0-9_-]+")


@dataclass(frozen=True)
class VerifiedPlugin:
    """A verified plugin token: the calling plugin and the user token it acts for."""

    subject: str
    limited_user_token: str | None


class PluginTokenHandler:
    """Issues this plugin's tokens and verifies tokens other plugins send it."""

    def __init__(
        self,
        *,
        own_plugin_id: str,
        key_source: Any,
        key_duration: timedelta,
        discovery: Any,
        local_jwks: Callable[[str], Callable[[], Any] | None],
        logger: Any,
    ) -> None:
        self.own_plugin_id = own_plugin_id
        self.key_source = key_source
        self.key_duration = key_duration
        self._discovery = discovery
        self._local_jwks = local_jwks
        self._logger = logger
        self._clients: dict[str, JwksClient] = {}
        self._lock = threading.Lock()

    def issue(
        self,
        *,
        target_plugin_id: str,
        on_behalf_of: tuple[str, float] | None = None,
    ) -> str:
        """A token for calling ``target_plugin_id``; ``on_behalf_of`` is (limited token, its exp)."""
        key = self.key_source.get_private_signing_key()
        issued_at = math.floor(time.time())
        expires = issued_at + int(self.key_duration.total_seconds())
        payload: dict[str, Any] = {"sub": self.own_plugin_id, "aud": target_plugin_id}
        if on_behalf_of is not None:
            expires = min(expires, math.floor(on_behalf_of[1]))
        payload.update({"iat": issued_at, "exp": expires})
        if on_behalf_of is not None:
            payload["obo"] = on_behalf_of[0]
        return sign({"typ": PLUGIN_TYP, "alg": key.alg, "kid": key.kid}, payload, key.private_key)

    def verify(self, token: str) -> VerifiedPlugin | None:
        """The calling plugin; None when this is not a plugin token; 401 when it is invalid."""
        try:
            header, payload = peek(token)
        except ValueError:
            return None
        if not typ_matches(header.get("typ"), PLUGIN_TYP):
            return None
        plugin_id = payload.get("sub")
        if plugin_id is None or plugin_id == "":
            raise AuthenticationError("Invalid plugin token: missing subject")
        if not isinstance(plugin_id, str) or not _PLUGIN_ID.fullmatch(plugin_id):
            raise AuthenticationError("Invalid plugin token: forbidden subject format")
        client = self._client(plugin_id)
        import jwt

        try:
            claims = jwt.decode(
                token,
                client.get_key(header),
                algorithms=[header.get("alg")],
                audience=self.own_plugin_id,
                options={"require": ["iat", "exp", "sub", "aud"], "verify_iat": False},
            )
            check_issued_at(claims)
        except Exception as error:
            self._logger.warn("Failed to verify incoming plugin token", error)
            raise AuthenticationError("Failed plugin token verification") from error
        obo = claims.get("obo")
        return VerifiedPlugin(f"plugin:{claims['sub']}", obo if isinstance(obo, str) else None)

    def _client(self, plugin_id: str) -> JwksClient:
        client = self._clients.get(plugin_id)
        if client is not None:
            return client
        local = self._local_jwks(plugin_id)
        if local is not None:
            fetch: Callable[[], Any] = local
        else:
            self._check_remote_support(plugin_id)
            fetch = lambda: request_json("GET", self._jwks_url(plugin_id))  # noqa: E731
        with self._lock:
            return self._clients.setdefault(plugin_id, JwksClient(fetch))

    def _jwks_url(self, plugin_id: str) -> str:
        return f"{self._discovery.get_base_url(plugin_id)}{JWKS_PATH}"

    def _check_remote_support(self, plugin_id: str) -> None:
        """A caller that is neither here nor anywhere discovery points to has no keys to check."""
        unsupported = AuthenticationError(
            f"Received a plugin token where the source '{plugin_id}' plugin unexpectedly does not "
            f"have a JWKS endpoint. The target plugin needs to be migrated to be installed in an "
            f"app using the new backend system."
        )
        has_endpoint = getattr(self._discovery, "has_endpoint", None)
        if has_endpoint is not None and not has_endpoint(plugin_id):
            raise unsupported  # discovery points at this backend, which does not host it
        try:
            document = request_json("GET", self._jwks_url(plugin_id))
        except ResponseError as error:
            if error.status_code != 404:
                self._logger.error("Unexpected failure for target JWKS check", error)
            raise unsupported from error
        except Exception as error:
            self._logger.error("Unexpected failure for target JWKS check", error)
            raise unsupported from error
        if not isinstance(document, dict) or "keys" not in document:
            self._logger.error(
                "Unexpected failure for target JWKS check",
                ValueError("Invalid jwks.json response, missing keys"),
            )
            raise unsupported
