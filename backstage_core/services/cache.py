"""The cache service: Django's cache framework, with keys namespaced per plugin.

    cache.set("entity:123", payload, ttl=timedelta(minutes=5))
    cache.get("entity:123")
    short = cache.with_options(default_ttl={"seconds": 30})

``ttl`` and ``default_ttl`` take a timedelta, a duration (``{"minutes": 5}``, ``"5m"``) or a number of
milliseconds, as in Backstage, kept to whole seconds (rounded up); without one a value does not
expire unless ``backend.cache.defaultTtl`` says so. A store that fails (down, unreachable) is a miss and a logged warning, never an error.
"""

from __future__ import annotations

import base64
import hashlib
import math
import threading
import time
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


def _seconds(ttl: Ttl) -> int | None:
    """Whole seconds, rounded up: Redis and memcached keep no finer expiry than that."""
    if ttl is None:
        return None
    return max(1, math.ceil(to_timedelta(ttl).total_seconds()))


class StoreHealth:
    """Whether a cache store is answering. After a failure it is left alone for a while (1 s,
    doubling up to 10 s), so that no request waits on a store that is down; one warning is logged
    per outage, and one line when it answers again."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._retry_at = 0.0
        self._backoff = 1.0
        self.failures = 0

    def available(self) -> bool:
        return self._retry_at <= time.monotonic()

    def failed(self, logger: Any, action: str, error: Exception) -> None:
        with self._lock:
            self.failures += 1
            first = self.failures == 1
            self._retry_at = time.monotonic() + self._backoff
            self._backoff = min(self._backoff * 2, 10.0)
        if first:
            logger.warn(
                f"Cache {action} failed, treating it as a miss until it answers again: {error}",
                {"type": "cache"},
            )

    def succeeded(self, logger: Any) -> None:
        if not self.failures:
            return
        with self._lock:
            failures, self.failures = self.failures, 0
            self._retry_at, self._backoff = 0.0, 1.0
        if failures:
            logger.info(f"Cache answers again, after {failures} failed calls", {"type": "cache"})


_HEALTH: dict[str, StoreHealth] = {}
_HEALTH_LOCK = threading.Lock()


def store_health(alias: str) -> StoreHealth:
    with _HEALTH_LOCK:
        return _HEALTH.setdefault(alias, StoreHealth())


class CacheService:
    """A plugin's cache: ``get``, ``set``, ``delete`` and ``with_options``."""

    def __init__(self, alias: str, namespace: str, default_ttl: Ttl, logger: Any) -> None:
        self._alias = alias
        self._namespace = namespace
        self._default_ttl = _seconds(default_ttl)
        self._logger = logger
        self._health = store_health(alias)

    @property
    def _cache(self) -> Any:
        from django.core.cache import caches

        return caches[self._alias]  # Django keeps one cache client per thread

    def _key(self, key: str) -> str:
        return f"{self._namespace}:{normalize_key(key)}"

    def _call(self, action: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        if not self._health.available():
            return None
        try:
            result = fn(*args, **kwargs)
        except Exception as error:
            self._health.failed(self._logger, action, error)
            return None
        self._health.succeeded(self._logger)
        return result

    def get(self, key: str) -> Any:
        """The value stored at ``key``, or None (also when the store does not answer)."""
        return self._call("get", lambda: self._cache.get(self._key(key)))

    def set(self, key: str, value: Any, *, ttl: Ttl = _NO_DEFAULT) -> None:
        """Store ``value`` (JSON-like) at ``key`` for ``ttl`` (the default TTL if not given)."""
        timeout = self._default_ttl if ttl is _NO_DEFAULT else _seconds(ttl)
        self._call("set", lambda: self._cache.set(self._key(key), value, timeout=timeout))

    def delete(self, key: str) -> None:
        self._call("delete", lambda: self._cache.delete(self._key(key)))

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


def register_cache(config: Any) -> str:
    """A fresh Django cache alias laid out from ``config``'s ``backend.cache``, with keys of its own
    (a test backend's cache: empty, and apart from every other one even in a shared Redis)."""
    import uuid

    from django.conf import settings

    from backstage_core.cache import cache_settings

    alias = f"backstage-{uuid.uuid4().hex[:12]}"
    settings.CACHES[alias] = cache_settings(config, location=alias, key_prefix=alias)
    return alias


def cache_factory(*, alias: str | None = "default") -> ServiceFactory:
    """The cache service over Django's cache ``alias`` (``CACHES`` comes from ``backend.cache``).

    With ``alias=None`` each backend lays out a cache alias of its own from its config.
    """

    async def create_root_context(config: Any) -> tuple[str, timedelta | None]:
        return alias or register_cache(config), read_default_ttl(config)

    async def factory(
        context: tuple[str, timedelta | None], config: Any, plugin: Any, logger: Any
    ) -> CacheService:
        store, default_ttl = context
        return CacheService(store, plugin.get_id(), default_ttl, logger)

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
