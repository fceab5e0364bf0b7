"""Tokens of callers outside Backstage: ``backend.auth.externalAccess``.

    backend:
      auth:
        externalAccess:
          - type: static                       # a shared secret token
            options: {token: ${CI_TOKEN}, subject: ci}
            accessRestrictions:
              - plugin: todo
                permissionAttribute: {action: read}
          - type: legacy                       # HS256 tokens signed with a base64 secret
            options: {secret: ${LEGACY_SECRET}, subject: legacy-callers}
          - type: jwks                         # tokens of an identity provider
            options: {url: https://idp/.well-known/jwks.json, issuer: https://idp, audience: backstage}

The first entry that accepts a token wins; its subject becomes ``external:...`` for ``jwks``, and
is used as is for ``static`` and ``legacy``. ``accessRestrictions`` limit the plugins a token
may call (403 elsewhere) and the permissions it is granted there. The older ``backend.auth.keys``
list (``[{secret}]``) still works, after the new entries, with the subject
``external:backstage-plugin``.
"""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass
from typing import Any

from backstage_core.auth.jwks import JwksClient
from backstage_core.auth.tokens import b64url_decode, peek
from backstage_core.errors import NotAllowedError
from backstage_core.http.client import request_json

__all__ = [
    "AccessRestrictions",
    "ExternalTokenHandler",
    "VerifiedExternal",
    "read_access_restrictions",
]

_NON_SPACE = re.compile(r"^\S+$")
_ACTIONS = ("create", "read", "update", "delete")
_DEPRECATION_WARNED = False

AccessRestrictions = dict[str, Any]


@dataclass(frozen=True)
class VerifiedExternal:
    """A verified external access token: its subject and access restrictions."""

    subject: str
    access_restrictions: AccessRestrictions | None = None
    all_access_restrictions: dict[str, AccessRestrictions] | None = None


class StaticTokens:
    """``type: static``: one exact token, of at least 8 non-space characters."""

    def __init__(self, options: Any) -> None:
        token = options.get_string("token")
        subject = options.get_string("subject")
        if not _NON_SPACE.match(token):
            raise ValueError("Illegal token, must be a set of non-space characters")
        if len(token) < 8:
            raise ValueError("Illegal token, must be at least 8 characters length")
        if not _NON_SPACE.match(subject):
            raise ValueError("Illegal subject, must be a set of non-space characters")
        self._token, self._subject = token, subject

    def verify(self, token: str) -> str | None:
        import hmac

        return self._subject if hmac.compare_digest(token, self._token) else None


class LegacyTokens:
    """``type: legacy``: HS256 tokens with ``sub: backstage-server`` and no ``aud``."""

    def __init__(self, options: Any, *, subject: str | None = None) -> None:
        secret = options.get_string("secret")
        subject = subject or options.get_string("subject")
        if not _NON_SPACE.match(secret):
            raise ValueError("Illegal secret, must be a valid base64 string")
        if not _NON_SPACE.match(subject):
            raise ValueError("Illegal subject, must be a set of non-space characters")
        try:
            self._key = b64url_decode(secret)
        except (binascii.Error, ValueError) as error:
            raise ValueError("Illegal secret, must be a valid base64 string") from error
        self._subject = subject

    def verify(self, token: str) -> str | None:
        import jwt

        try:
            header, payload = peek(token)
        except ValueError:
            return None
        if header.get("alg") != "HS256" or payload.get("sub") != "backstage-server":
            return None
        if "aud" in payload:
            return None
        try:
            jwt.decode(token, self._key, algorithms=["HS256"], options={"verify_aud": False})
        except jwt.InvalidSignatureError:
            return None  # another secret may have signed it
        except jwt.PyJWTError:
            return None
        return self._subject


def _string_or_strings(
    config: Any, key: str, valid: tuple[str, ...] | None = None
) -> list[str] | None:
    """A string or a list of strings, each split on spaces and commas; None when empty."""
    if not config.has(key):
        return None
    value = config.get(key)
    raw = [value] if isinstance(value, str) else config.get_string_array(key)
    values: list[str] = []
    for item in raw:
        for part in re.split(r"[ ,]", item):
            if part and part not in values:
                values.append(part)
    if valid is not None:
        for part in values:
            if part not in valid:
                allowed = ", ".join(f"'{v}'" for v in valid)
                raise ValueError(
                    f"Invalid value '{part}' at '{key}' in 'permissionAttributes' config, "
                    f"valid values are {allowed}"
                )
    return values or None


class JwksTokens:
    """``type: jwks``: tokens signed by keys of a remote JWKS, checked for issuer and audience."""

    def __init__(self, options: Any) -> None:
        url = options.get_string("url")
        if not _NON_SPACE.match(url):
            raise ValueError("Illegal JWKS URL, must be a set of non-space characters")
        self._algorithms = _string_or_strings(options, "algorithm")
        self._issuers = _string_or_strings(options, "issuer")
        self._audiences = _string_or_strings(options, "audience")
        self._prefix = options.get_optional_string("subjectPrefix")
        self._jwks = JwksClient(lambda: request_json("GET", url))

    def verify(self, token: str) -> str | None:
        import jwt

        try:
            header, _ = peek(token)
            algorithm = header.get("alg")
            if self._algorithms is not None and algorithm not in self._algorithms:
                return None
            claims = jwt.decode(
                token,
                self._jwks.get_key(header),
                algorithms=[algorithm],
                issuer=self._issuers,
                audience=self._audiences,
                options={"verify_aud": self._audiences is not None},
            )
        except Exception:
            return None
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            return None
        return f"external:{self._prefix}:{subject}" if self._prefix else f"external:{subject}"


_HANDLERS = {"static": StaticTokens, "legacy": LegacyTokens, "jwks": JwksTokens}


def read_access_restrictions(entry: Any) -> dict[str, AccessRestrictions] | None:
    """``accessRestrictions`` of an external access entry: plugin id -> its restrictions."""
    items = entry.get_optional_config_array("accessRestrictions")
    if not items:
        return None
    result: dict[str, AccessRestrictions] = {}
    for item in items:
        for key in item.keys():
            if key not in ("plugin", "permission", "permissionAttribute"):
                raise ValueError(
                    f"Invalid key '{key}' in 'accessRestrictions' config, expected one of "
                    f"'plugin', 'permission', 'permissionAttribute'"
                )
        plugin_id = item.get_string("plugin")
        if plugin_id in result:
            raise ValueError(
                f"Attempted to declare 'accessRestrictions' twice for plugin '{plugin_id}', "
                f"which is not permitted"
            )
        restrictions: AccessRestrictions = {}
        names = _string_or_strings(item, "permission")
        if names:
            restrictions["permissionNames"] = names
        attribute = item.get_optional_config("permissionAttribute")
        if attribute is not None:
            for key in attribute.keys():
                if key != "action":
                    raise ValueError(
                        f"Invalid key '{key}' in 'permissionAttribute' config, expected 'action'"
                    )
            actions = _string_or_strings(attribute, "action", _ACTIONS)
            if actions:
                restrictions["permissionAttributes"] = {"action": actions}
        result[plugin_id] = restrictions
    return result


class ExternalTokenHandler:
    """Every configured kind of external token, tried in config order."""

    def __init__(self, own_plugin_id: str, config: Any, logger: Any) -> None:
        self.own_plugin_id = own_plugin_id
        self._contexts: list[tuple[Any, dict[str, AccessRestrictions] | None]] = []
        for entry in config.get_optional_config_array("backend.auth.externalAccess") or []:
            kind = entry.get_string("type")
            handler = _HANDLERS.get(kind)
            if handler is None:
                expected = ", ".join(f"'{name}'" for name in _HANDLERS)
                raise ValueError(
                    f"Unknown type '{kind}' in backend.auth.externalAccess, expected one of {expected}"
                )
            self._contexts.append(
                (handler(entry.get_config("options")), read_access_restrictions(entry))
            )
        legacy_keys = config.get_optional_config_array("backend.auth.keys") or []
        if legacy_keys:
            global _DEPRECATION_WARNED
            if not _DEPRECATION_WARNED:
                _DEPRECATION_WARNED = True
                logger.warn(
                    "DEPRECATION WARNING: The backend.auth.keys config has been replaced by "
                    "backend.auth.externalAccess, see "
                    "https://backstage.io/docs/auth/service-to-service-auth"
                )
            for entry in legacy_keys:
                self._contexts.append(
                    (
                        LegacyTokens(entry, subject="external:backstage-plugin"),
                        read_access_restrictions(entry),
                    )
                )

    @property
    def configured(self) -> bool:
        return bool(self._contexts)

    def verify(self, token: str) -> VerifiedExternal | None:
        for handler, restrictions in self._contexts:
            subject = handler.verify(token)
            if subject is None:
                continue
            if restrictions is None:
                return VerifiedExternal(subject)
            own = restrictions.get(self.own_plugin_id)
            if own is None:
                plugins = ", ".join(f"'{plugin}'" for plugin in restrictions)
                raise NotAllowedError(f"This token's access is restricted to plugin(s) {plugins}")
            return VerifiedExternal(subject, own, restrictions)
        return None
