"""The cache service: Django's cache framework, with keys namespaced per plugin.

    cache.set("entity:123", payload, ttl=timedelta(minutes=5))
    cache.get("entity:123")
    short = cache.with_options(default_ttl={"seconds": 30})

``ttl`` and ``default_ttl`` take a timedelta, a duration (``{"minutes": 5}``, ``"5m"``) or a number of
milliseconds, as in Backstage; without one a value does not expire unless ``backend.cache.defaultTtl``
says so. A store that fails (down, unreachable) is a miss and a logged warning, never an error.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import timedelta
from typing import Any

from backstage_core.config.duration import read_duration_from_config, to_timedelta
from backstage_core.services.definitions import core_services
from backstage_core.wiring.features import ServiceFactory, create_service_factory

__all__ = ["CacheService", "cache_factory", "normalize_key"]

Ttl = timedelta | dict | str | int | float | None
_NO_DEFAULT: Any = object()


def normalize_key(key: str) -> str:
    """Backstage's key normalisation: base64 of the key, or its sha256 when that would be long."""
    encoded = base64.b64encode(key.encode()).decode()
    if len(encoded) < 200:
        return encoded
    return base64.b64encode(hashlib.sha256(key.encode()).digest()).decode()


def _seconds(ttl: Ttl) -> float | None:
    if ttl is None:
        return None
    return to_timedelta(ttl).total_seconds()


class CacheService:
    """A plugin's cache: ``get``, ``set``, ``delete`` and ``with_options``."""

    def __init__(self, alias: str, namespace: str, default_ttl: Ttl, logger: Any) -> None:
        self._alias = alias
        self._namespace = namespace
        self._default_ttl = _seconds(default_ttl)
        self._logger = logger

    @property
    def _cache(self) -> Any:
        from django.core.cache import caches

        return caches[self._alias]  # Django keeps one cache client per thread

    def _key(self, key: str) -> str:
        return f"{self._namespace}:{normalize_key(key)}"

    def _failed(self, action: str, error: Exception) -> None:
        self._logger.warn(
            f"Cache {action} failed, treating it as a miss: {error}", {"type": "cache"}
        )

    def get(self, key: str) -> Any:
        """The value stored at ``key``, or None."""
        try:
            return self._cache.get(self._key(key))
        except Exception as error:
            self._failed("get", error)
            return None

    def set(self, key: str, value: Any, *, ttl: Ttl = _NO_DEFAULT) -> None:
        """Store ``value`` (JSON-like) at ``key`` for ``ttl`` (the default TTL if not given)."""
        timeout = self._default_ttl if ttl is _NO_DEFAULT else _seconds(ttl)
        try:
            self._cache.set(self._key(key), value, timeout=timeout)
        except Exception as error:
            self._failed("set", error)

    def delete(self, key: str) -> None:
        try:
            self._cache.delete(self._key(key))
        except Exception as error:
            self._failed("delete", error)

    def with_options(self, *, default_ttl: Ttl = None) -> CacheService:
        """The same cache and namespace with another default TTL."""
        clone = CacheService(self._alias, self._namespace, None, self._logger)
        clone._default_ttl = _seconds(default_ttl) if default_ttl is not None else self._default_ttl
        return clone

    # Async spellings for async plugin code (Backstage's API is promise-based).
    async def aget(self, key: str) -> Any:
        from asgiref.sync import sync_to_async

        return await sync_to_async(self.get)(key)

    async def aset(self, key: str, value: Any, *, ttl: Ttl = _NO_DEFAULT) -> None:
        from asgiref.sync import sync_to_async

        await sync_to_async(self.set)(key, value, ttl=ttl)

    async def adelete(self, key: str) -> None:
        from asgiref.sync import sync_to_async

        await sync_to_async(self.delete)(key)


def read_default_ttl(config: Any) -> timedelta | None:
    if not config.has("backend.cache.defaultTtl"):
        return None
    value = config.get("backend.cache.defaultTtl")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(milliseconds=value)
    return read_duration_from_config(config, "backend.cache.defaultTtl")


def cache_factory(*, alias: str = "default") -> ServiceFactory:
    """The cache service over Django's cache ``alias`` (configured from ``backend.cache``)."""

    def create_root_context(config: Any) -> timedelta | None:
        return read_default_ttl(config)

    def factory(
        default_ttl: timedelta | None, config: Any, plugin: Any, logger: Any
    ) -> CacheService:
        return CacheService(alias, plugin.get_id(), default_ttl, logger)

    return create_service_factory(
        service=core_services.cache,
        deps={
            "config": core_services.root_config,
            "plugin": core_services.plugin_metadata,
            "logger": core_services.logger,
        },
        create_root_context=create_root_context,
        factory=factory,
    )
