"""The keys a plugin signs its plugin-to-plugin tokens with (``backend.auth.pluginKeyStore``).

``database`` (the default): each process makes an ES256 key when it first needs one and a new one
an hour later; the public half goes into the plugin's own database (table
``backstage_backend_public_keys__keys``), listed for three hours so tokens signed just before a
rotation still verify, wherever they land. ``static``: key pairs from PEM files::

    backend:
      auth:
        pluginKeyStore:
          type: static
          static:
            keys:
              - publicKeyFile: /keys/public.pem     # SPKI
                privateKeyFile: /keys/private.pem   # PKCS#8; only the first pair signs
                keyId: key-1
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from backstage_core.auth.keys import SigningKey, load_key_pairs
from backstage_core.db.engines import ensure_table

__all__ = [
    "DatabaseKeyStore",
    "DatabasePluginKeySource",
    "StaticConfigPluginKeySource",
    "create_plugin_key_source",
]

KEY_EXPIRATION_MARGIN_FACTOR = 3


def iso_ms(moment: datetime) -> str:
    """JavaScript's ``toISOString()``: UTC, milliseconds, ``Z``."""
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def _parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _model() -> Any:
    from backstage_core.models import PluginPublicKey

    return PluginPublicKey


class DatabaseKeyStore:
    """Public keys in a plugin's database, each listed until its ``expires_at``."""

    def __init__(self, alias: str, logger: Any, *, skip_migrations: bool = False) -> None:
        self.alias = alias
        self.logger = logger
        self._ready = skip_migrations

    def _rows(self) -> Any:
        if not self._ready:
            ensure_table(self.alias, _model())
            self._ready = True
        return _model().objects.using(self.alias)

    def add_key(self, kid: str, jwk: dict[str, Any], expires_at: datetime) -> None:
        self._rows().create(id=kid, key=json.dumps(jwk), expires_at=iso_ms(expires_at))

    def list_keys(self) -> list[dict[str, Any]]:
        """The public keys that have not expired; expired ones are removed."""
        now = datetime.now(UTC)
        valid, expired = [], []
        for row in self._rows().all():
            if _parse_iso(row.expires_at) < now:
                expired.append(row.id)
            else:
                valid.append(json.loads(row.key))
        if expired:
            names = "', '".join(expired)
            self.logger.info(f"Removing expired plugin service keys, '{names}'")
            try:
                self._rows().filter(id__in=expired).delete()
            except Exception as error:
                self.logger.warn("Failed to remove expired plugin service keys", error)
        return valid


class DatabasePluginKeySource:
    """Makes a signing key when needed, publishes its public half, and replaces it when it expires."""

    def __init__(self, store: DatabaseKeyStore, logger: Any, key_duration: timedelta) -> None:
        self.store = store
        self.logger = logger
        self.key_duration = key_duration
        self._key: SigningKey | None = None
        self._expires_at = datetime.min.replace(tzinfo=UTC)
        self._lock = threading.Lock()

    def get_private_signing_key(self) -> SigningKey:
        key = self._key
        if key is not None and self._expires_at > datetime.now(UTC):
            return key
        with self._lock:
            if self._key is not None and self._expires_at > datetime.now(UTC):
                return self._key
            if self._key is not None:
                self.logger.info("Signing key has expired, generating new key")
            now = datetime.now(UTC)
            key = SigningKey.generate("ES256")
            self.logger.info(f"Created new signing key {key.kid}")
            try:
                self.store.add_key(
                    key.kid,
                    key.public_jwk,
                    now + self.key_duration * KEY_EXPIRATION_MARGIN_FACTOR,
                )
            except Exception as error:
                self.logger.error(f"Failed to generate new signing key, {error}")
                self._key = None
                raise
            self._key, self._expires_at = key, now + self.key_duration
            return key

    def list_keys(self) -> list[dict[str, Any]]:
        return self.store.list_keys()


class StaticConfigPluginKeySource:
    """Key pairs from PEM files; the first pair signs, every pair's public key is listed."""

    def __init__(self, signing_key: SigningKey, public_keys: list[dict[str, Any]]) -> None:
        self._signing_key = signing_key
        self._public_keys = public_keys

    @classmethod
    def from_config(cls, config: Any) -> StaticConfigPluginKeySource:
        return cls(
            *load_key_pairs(
                config,
                no_keys="At least one key pair must be provided in static.keys, when the static "
                "key store type is used",
                no_private_key="Private key for signing must be provided in the first key pair "
                "in static.keys, when the static key store type is used",
            )
        )

    def get_private_signing_key(self) -> SigningKey:
        return self._signing_key

    def list_keys(self) -> list[dict[str, Any]]:
        return list(self._public_keys)


def create_plugin_key_source(
    config: Any, database: Any, logger: Any, key_duration: timedelta
) -> DatabasePluginKeySource | StaticConfigPluginKeySource:
    """The key source ``backend.auth.pluginKeyStore`` asks for (``database`` by default)."""
    store_config = config.get_optional_config("backend.auth.pluginKeyStore")
    kind = (store_config.get_optional_string("type") if store_config else None) or "database"
    if kind == "database":
        store = DatabaseKeyStore(database.alias, logger, skip_migrations=database.migrations.skip)
        return DatabasePluginKeySource(store, logger, key_duration)
    if kind == "static":
        return StaticConfigPluginKeySource.from_config(store_config)
    raise ValueError(
        f"Unsupported config value backend.auth.pluginKeyStore.type '{kind}'; expected one of "
        f"'database', 'static'"
    )
