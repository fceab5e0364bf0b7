"""The auth plugin's token issuer and its key stores (``auth.keyStore.provider``).

    factory = TokenFactory(issuer=..., key_store=DatabaseKeyStore("auth"), logger=logger)
    token = factory.issue_token({"sub": "user:default/jane", "ent": ["user:default/jane"]})

Each process signs with a key of its own, made when first needed and replaced after
``auth.backstageTokenExpiration`` (1 hour by default); public keys stay listed three times as long,
so every token verifies for as long as it lives.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from backstage_core.auth.keys import SigningKey, load_key_pairs
from backstage_core.auth.tokens import LIMITED_USER_TYP, USER_AUDIENCE, USER_TYP, sign
from backstage_core.config.duration import read_duration_from_config

__all__ = [
    "DatabaseKeyStore",
    "MemoryKeyStore",
    "StaticKeyStore",
    "TokenFactory",
    "create_key_store",
    "parse_entity_ref",
    "read_token_expiration",
]

DEFAULT_TOKEN_EXPIRATION = timedelta(hours=1)
MIN_TOKEN_EXPIRATION = timedelta(minutes=10)
MAX_TOKEN_EXPIRATION = timedelta(hours=24)
MAX_TOKEN_LENGTH = 32768
KEY_EXPIRATION_MARGIN_FACTOR = 3
_ENTITY_REF = re.compile(r"^(?P<kind>[^:/]+):(?:(?P<namespace>[^:/]+)/)?(?P<name>[^:/]+)$")


def parse_entity_ref(ref: Any) -> tuple[str, str, str]:
    """(kind, namespace, name) of ``kind:[namespace/]name``; ValueError otherwise."""
    match = _ENTITY_REF.match(ref) if isinstance(ref, str) else None
    if match is None:
        raise ValueError(f"Invalid entity ref '{ref}', expected <kind>:[<namespace>/]<name>")
    return match["kind"], match["namespace"] or "default", match["name"]


def read_token_expiration(config: Any) -> timedelta:
    """``auth.backstageTokenExpiration``: 1 hour by default, kept within 10 minutes and 24 hours."""
    if not config.has("auth.backstageTokenExpiration"):
        return DEFAULT_TOKEN_EXPIRATION
    duration = read_duration_from_config(config, "auth.backstageTokenExpiration")
    return min(max(duration, MIN_TOKEN_EXPIRATION), MAX_TOKEN_EXPIRATION)


class DatabaseKeyStore:
    """Public keys in the auth plugin's ``signing_keys`` table, shared by every process."""

    def __init__(self, alias: str) -> None:
        self.alias = alias

    def _rows(self) -> Any:
        from backstage_core.plugins.auth.models import SigningKey as Row

        return Row.objects.using(self.alias)

    def add_key(self, jwk: dict[str, Any]) -> None:
        self._rows().create(kid=jwk["kid"], key=json.dumps(jwk))

    def list_keys(self) -> list[tuple[dict[str, Any], datetime]]:
        return [
            (json.loads(row.key), row.created_at) for row in self._rows().order_by("created_at")
        ]

    def remove_keys(self, kids: list[str]) -> None:
        self._rows().filter(kid__in=kids).delete()


class MemoryKeyStore:
    """Public keys in this process only: for tests, and for a single process."""

    def __init__(self) -> None:
        self._keys: dict[str, tuple[dict[str, Any], datetime]] = {}

    def add_key(self, jwk: dict[str, Any]) -> None:
        self._keys[jwk["kid"]] = (jwk, datetime.now(UTC))

    def list_keys(self) -> list[tuple[dict[str, Any], datetime]]:
        return list(self._keys.values())

    def remove_keys(self, kids: list[str]) -> None:
        for kid in kids:
            self._keys.pop(kid, None)


class StaticKeyStore:
    """Key pairs from PEM files (``auth.keyStore.static.keys``): the first signs, none rotate."""

    def __init__(self, signing_key: SigningKey, public_keys: list[dict[str, Any]]) -> None:
        self.signing_key = signing_key
        self.public_keys = public_keys

    @classmethod
    def from_config(cls, config: Any) -> StaticKeyStore:
        return cls(
            *load_key_pairs(
                config,
                no_keys="auth.keyStore.static.keys needs at least one key pair",
                no_private_key="The first key in auth.keyStore.static.keys needs a privateKeyFile",
            )
        )


def create_key_store(config: Any, database: Any, logger: Any) -> Any:
    provider = config.get_optional_string("auth.keyStore.provider") or "database"
    logger.info(f'Configuring "{provider}" as KeyStore provider')
    if provider == "database":
        return DatabaseKeyStore(database.alias)
    if provider == "memory":
        return MemoryKeyStore()
    if provider == "static":
        return StaticKeyStore.from_config(config.get_config("auth.keyStore"))
    raise ValueError(f"Unknown KeyStore provider: {provider}")


class TokenFactory:
    """Signs user tokens, and lists the public keys that verify them."""

    def __init__(
        self,
        *,
        issuer: Any,
        key_store: Any,
        logger: Any,
        key_duration: timedelta = DEFAULT_TOKEN_EXPIRATION,
        algorithm: str = "ES256",
        omit_claims: tuple[str, ...] = ("ent",),
        user_info_store: Any = None,
    ) -> None:
        self._issuer = issuer
        self.key_store = key_store
        self.logger = logger
        self.key_duration = key_duration
        self.algorithm = algorithm
        self.omit_claims = omit_claims
        self.user_info_store = user_info_store
        self._key: SigningKey | None = None
        self._key_made_at = 0.0
        self._lock = threading.Lock()

    @property
    def issuer(self) -> str:
        return self._issuer() if callable(self._issuer) else self._issuer

    def _signing_key(self) -> SigningKey:
        if isinstance(self.key_store, StaticKeyStore):
            return self.key_store.signing_key
        key = self._key
        if key is not None and time.time() - self._key_made_at < self.key_duration.total_seconds():
            return key
        with self._lock:
            if (
                self._key is not None
                and time.time() - self._key_made_at < self.key_duration.total_seconds()
            ):
                return self._key
            key = SigningKey.generate(self.algorithm)
            self.logger.info(f"Created new signing key {key.kid}")
            try:
                self.key_store.add_key(key.public_jwk)
            except Exception as error:
                self.logger.error(f"Failed to generate new signing key, {error}")
                raise
            self._key, self._key_made_at = key, time.time()
            return key

    def issue_token(self, claims: dict[str, Any]) -> str:
        """A signed user token for ``claims`` (``sub``, ``ent`` and any others)."""
        claims = dict(claims)
        subject = claims.pop("sub", None)
        ownership = claims.pop("ent", None)
        try:
            parse_entity_ref(subject)
        except ValueError as error:
            raise ValueError(
                '"sub" claim provided by the auth resolver is not a valid EntityRef.'
            ) from error
        key = self._signing_key()
        issued_at = math.floor(time.time())
        expires = issued_at + int(self.key_duration.total_seconds())
        proof = sign(
            {"typ": LIMITED_USER_TYP, "alg": key.alg, "kid": key.kid},
            {"sub": subject, "iat": issued_at, "exp": expires},
            key.private_key,
        ).rsplit(".", 1)[1]
        entities = ",".join(ownership or [])
        self.logger.info(f"Issuing token for {subject}, with entities {entities}")
        payload = {
            **claims,
            "iss": self.issuer,
            "sub": subject,
            "ent": ownership,
            "aud": USER_AUDIENCE,
            "iat": issued_at,
            "exp": expires,
            "uip": proof,
        }
        for name in self.omit_claims:
            payload.pop(name, None)
        if ownership is None:
            payload.pop("ent", None)
        token = sign({"typ": USER_TYP, "alg": key.alg, "kid": key.kid}, payload, key.private_key)
        if len(token) > MAX_TOKEN_LENGTH:
            raise ValueError(
                "Failed to issue a new user token. The resulting token is excessively large, with "
                "either too many ownership claims or too large custom claims. You likely have a "
                "bug either in the sign-in resolver or catalog data. The following claims were "
                f"requested: '{json.dumps({'sub': subject, 'ent': ownership, **claims})}'"
            )
        if self.user_info_store is not None:
            self.user_info_store.record(subject, {"sub": subject, "ent": ownership or [], **claims})
        return token

    def list_public_keys(self) -> dict[str, Any]:
        """The JWKS: every key that may still verify a live token; older keys are removed."""
        if isinstance(self.key_store, StaticKeyStore):
            return {"keys": list(self.key_store.public_keys)}
        now = datetime.now(UTC)
        lifetime = self.key_duration * KEY_EXPIRATION_MARGIN_FACTOR
        keys, expired = [], []
        for jwk, created_at in self.key_store.list_keys():
            if created_at.tzinfo is None:
                created_at = created_at.replace(tzinfo=UTC)
            if created_at + lifetime < now:
                expired.append(jwk["kid"])
            else:
                keys.append(jwk)
        if expired:
            names = "', '".join(expired)
            self.logger.info(f"Removing expired signing keys, '{names}'")
            try:
                self.key_store.remove_keys(expired)
            except Exception as error:
                self.logger.warn("Failed to remove expired signing keys", error)
        return {"keys": keys}


class UserInfoStore:
    """The claims each user last signed in with (table ``user_info``)."""

    def __init__(self, alias: str | None) -> None:
        self.alias = alias
        self._memory: dict[str, dict[str, Any]] = {}

    def record(self, user_entity_ref: str, claims: dict[str, Any]) -> None:
        body = json.dumps({"claims": claims})
        if self.alias is None:
            self._memory[user_entity_ref] = json.loads(body)
            return
        from backstage_core.plugins.auth.models import UserInfo

        UserInfo.objects.using(self.alias).update_or_create(
            user_entity_ref=user_entity_ref, defaults={"user_info": body}
        )

    def get(self, user_entity_ref: str) -> dict[str, Any] | None:
        if self.alias is None:
            return self._memory.get(user_entity_ref)
        from backstage_core.plugins.auth.models import UserInfo

        row = UserInfo.objects.using(self.alias).filter(user_entity_ref=user_entity_ref).first()
        return json.loads(row.user_info) if row is not None else None
