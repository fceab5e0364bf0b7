"""Django cache settings from ``backend.cache``, and what the cache service needs of them.

    backend:
      cache:
        store: redis                      # memory (default), redis, valkey, memcache
        connection: redis://cache:6379    # valkey://... works too
        defaultTtl: 1h                    # or milliseconds, or {hours: 1}
        redis:
          client:
            namespace: backstage          # keys are <namespace>:<pluginId>:<key>
            socketTimeout: 500            # ms; a cache that does not answer is a miss

Values are stored as JSON (not pickle), so a cache shared with other services can not run code
here, and Redis keys read as Backstage's do: ``[namespace:]pluginId:base64(key)``.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlparse

from django.core.exceptions import ImproperlyConfigured

__all__ = ["JSONSerializer", "backstage_key", "cache_settings"]

STORES = ("memory", "redis", "valkey", "memcache")
DEFAULT_SOCKET_TIMEOUT_MS = 500


class JSONSerializer:
    """Django's Redis cache serializer interface, with JSON."""

    def __init__(self, protocol: Any = None) -> None:
        pass

    def dumps(self, value: Any) -> bytes | int:
        # Integers stay integers so that Redis INCR/DECR keep working, as Django's serializer does.
        if type(value) is int:
            return value
        return json.dumps(value, separators=(",", ":")).encode()

    def loads(self, data: bytes) -> Any:
        try:
            return int(data)
        except ValueError:
            return json.loads(data)


def backstage_key(key: str, key_prefix: str, version: Any) -> str:
    """``[prefix:]key``: the cache service already namespaces keys by plugin id."""
    return f"{key_prefix}:{key}" if key_prefix else key


def _connection(cache: Any) -> str:
    connection = cache.get_optional("connection")
    if isinstance(connection, dict):
        connection = connection.get("url")
    return connection or ""


def _milliseconds(cache: Any, key: str, default: int) -> float:
    value = cache.get_optional_number(key)
    return (value if value is not None else default) / 1000


def cache_settings(
    config: Any, *, location: str = "backstage", key_prefix: str | None = None
) -> dict[str, Any]:
    """One Django ``CACHES`` entry for ``backend.cache``."""
    cache = config.get_optional_config("backend.cache")
    store = (cache.get_optional_string("store") if cache else None) or "memory"
    if store not in STORES:
        raise ImproperlyConfigured(f"Unknown cache store: {store}")
    if store == "memory":
        return {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": location}
    connection = _connection(cache)
    if not connection:
        raise ImproperlyConfigured(
            f"backend.cache.connection is required for the '{store}' cache store"
        )
    if store in ("redis", "valkey"):
        url = urlparse(connection)
        scheme = {"valkey": "redis", "valkeys": "rediss"}.get(url.scheme, url.scheme)
        client = cache.get_optional_config(f"{store}.client")
        namespace = (
            (
                client.get_optional_string("namespace")
                or client.get_optional_string("keyPrefix")
                or ""
            )
            if client
            else ""
        )
        if key_prefix:
            namespace = f"{namespace}:{key_prefix}" if namespace else key_prefix
        timeout = (
            _milliseconds(client, "socketTimeout", DEFAULT_SOCKET_TIMEOUT_MS)
            if client
            else DEFAULT_SOCKET_TIMEOUT_MS / 1000
        )
        return {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url._replace(scheme=scheme).geturl(),
            "KEY_PREFIX": namespace,
            "KEY_FUNCTION": "backstage_core.cache.backstage_key",
            "OPTIONS": {
                "serializer": "backstage_core.cache.JSONSerializer",
                "socket_connect_timeout": timeout,
                "socket_timeout": timeout,
                "retry_on_timeout": False,
                "health_check_interval": 30,
            },
        }
    url = urlparse(connection if "://" in connection else f"memcache://{connection}")
    client = cache.get_optional_config("memcache.client")
    timeout = (
        _milliseconds(client, "socketTimeout", DEFAULT_SOCKET_TIMEOUT_MS)
        if client
        else DEFAULT_SOCKET_TIMEOUT_MS / 1000
    )
    return {
        "BACKEND": "django.core.cache.backends.memcached.PyMemcacheCache",
        "LOCATION": f"{url.hostname}:{url.port or 11211}",
        "KEY_PREFIX": key_prefix or "",
        "KEY_FUNCTION": "backstage_core.cache.backstage_key",
        "OPTIONS": {
            "connect_timeout": timeout,
            "timeout": timeout,
            "no_delay": True,
            "serde": _JsonSerde(),
        },
    }


class _JsonSerde:
    """pymemcache's serde interface, with JSON."""

    def serialize(self, key: Any, value: Any) -> tuple[bytes, int]:
        return json.dumps(value, separators=(",", ":")).encode(), 1

    def deserialize(self, key: Any, value: bytes, flags: int) -> Any:
        return json.loads(value)
