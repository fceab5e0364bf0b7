"""The cache service: per-plugin namespaces, TTLs, and a store that fails as a miss.

Tests taking ``cache_config`` run on the in-memory store and on Redis in turn.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import timedelta
from typing import Any
from urllib.parse import urlparse

import pytest
import redis
from django.core.cache.backends.base import BaseCache

from backstage_core import core_services, create_backend_plugin
from backstage_core.services.cache import CacheService, normalize_key
from backstage_core.testing.engines import require_service
from tests.helpers import TcpProxy


def caches_of(
    test_backend_factory: Any, *plugin_ids: str, cache: dict[str, Any] | None = None
) -> dict[str, CacheService]:
    seen: dict[str, CacheService] = {}

    def plugin(plugin_id: str) -> Any:
        def register(env: Any) -> None:
            env.register_init(
                deps={"cache": core_services.cache},
                init=lambda cache: seen.__setitem__(plugin_id, cache),
            )

        return create_backend_plugin(plugin_id=plugin_id, register=register, django_app=None)

    config = {"backend": {"cache": cache}} if cache is not None else None
    test_backend_factory(features=[plugin(p) for p in plugin_ids], config=config)
    return seen


def test_two_plugins_using_the_same_key_never_see_each_others_values(
    test_backend_factory: Any, cache_config: dict[str, Any]
) -> None:
    caches = caches_of(test_backend_factory, "one", "two", cache=cache_config)
    caches["one"].set("shared:key", {"owner": "one"})
    caches["two"].set("shared:key", {"owner": "two"})

    assert caches["one"].get("shared:key") == {"owner": "one"}
    assert caches["two"].get("shared:key") == {"owner": "two"}
    caches["one"].delete("shared:key")
    assert caches["one"].get("shared:key") is None
    assert caches["two"].get("shared:key") == {"owner": "two"}


def test_values_expire_after_their_ttl(
    test_backend_factory: Any, cache_config: dict[str, Any]
) -> None:
    cache = caches_of(test_backend_factory, "one", cache=cache_config)["one"]
    cache.set("short", "value", ttl=timedelta(milliseconds=300))
    cache.set("ms", "value", ttl=300)  # a number is milliseconds, as in Backstage
    cache.set("forever", "value")
    assert cache.get("short") == "value" and cache.get("ms") == "value"
    time.sleep(1.3)
    assert (cache.get("short"), cache.get("ms"), cache.get("forever")) == (None, None, "value")


def test_with_options_changes_the_default_ttl_and_keeps_the_namespace(
    test_backend_factory: Any, cache_config: dict[str, Any]
) -> None:
    cache = caches_of(test_backend_factory, "one", cache=cache_config)["one"]
    short = cache.with_options(default_ttl={"milliseconds": 300})
    short.set("key", "value")
    assert cache.get("key") == "value"
    time.sleep(1.3)
    assert cache.get("key") is None


def test_default_ttl_comes_from_config(
    test_backend_factory: Any, cache_config: dict[str, Any]
) -> None:
    cache = caches_of(test_backend_factory, "one", cache={**cache_config, "defaultTtl": "300ms"})[
        "one"
    ]
    cache.set("key", "value")
    time.sleep(1.3)
    assert cache.get("key") is None


def test_json_values_round_trip(test_backend_factory: Any, cache_config: dict[str, Any]) -> None:
    cache = caches_of(test_backend_factory, "one", cache=cache_config)["one"]
    value = {"list": [1, 2.5, "three", None, True], "nested": {"ü": "ñ"}}
    cache.set("complex", value)
    cache.set("count", 7)
    assert cache.get("complex") == value
    assert cache.get("count") == 7


def test_redis_keys_and_values_read_as_backstage_writes_them(test_backend_factory: Any) -> None:
    url = require_service("redis", pytest.skip, pytest.fail)
    namespace = f"keys{time.monotonic_ns()}"
    cache = caches_of(
        test_backend_factory,
        "catalog",
        cache={"store": "redis", "connection": url, "redis": {"client": {"namespace": namespace}}},
    )["catalog"]
    cache.set("somekey", {"a": 1})
    client = redis.Redis.from_url(url)
    keys = [k.decode() for k in client.scan_iter(match=f"{namespace}:*")]
    try:
        assert len(keys) == 1 and keys[0].endswith(
            ":catalog:c29tZWtleQ=="
        )  # <ns>:<alias>:<pluginId>:base64(key)
        assert json.loads(client.get(keys[0])) == {"a": 1}  # JSON, not pickle
    finally:
        client.delete(*keys)


def test_long_keys_are_hashed() -> None:
    assert normalize_key("abc") == "YWJj"
    assert len(normalize_key("x" * 1000)) == 44


def test_redis_going_away_is_a_miss_with_one_warning_and_the_cache_recovers(
    test_backend_factory: Any, caplog: Any
) -> None:
    url = urlparse(require_service("redis", pytest.skip, pytest.fail))
    proxy = TcpProxy((url.hostname, url.port or 6379)).start()
    cache_config = {
        "store": "redis",
        "connection": f"redis://127.0.0.1:{proxy.port}",
        "redis": {"client": {"namespace": "outage", "socketTimeout": 200}},
    }
    from backstage_core.testing import mock_services

    seen: dict[str, CacheService] = {}

    def register(env: Any) -> None:
        env.register_init(
            deps={"cache": core_services.cache}, init=lambda cache: seen.setdefault("cache", cache)
        )

    plugin = create_backend_plugin(plugin_id="one", register=register, django_app=None)
    test_backend_factory(
        features=[plugin, mock_services.root_logger.factory(level="info")],
        config={"backend": {"cache": cache_config}},
    )
    cache = seen["cache"]
    try:
        cache.set("key", "before")
        assert cache.get("key") == "before"

        proxy.stop()
        with caplog.at_level(logging.INFO):
            started = time.monotonic()
            for _ in range(50):
                assert cache.get("key") is None  # a miss, not an error
                cache.set("key", "during")
            assert time.monotonic() - started < 2  # the store is left alone, not waited on
            warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
            assert len(warnings) == 1 and warnings[0].startswith(
                "Cache get failed, treating it as a miss until it answers again"
            )

            proxy.start()
            deadline = time.monotonic() + 5
            while cache.get("key") != "before" and time.monotonic() < deadline:
                time.sleep(0.2)
            assert cache.get("key") == "before"
            assert any(
                r.getMessage().startswith("Cache answers again, after") for r in caplog.records
            )
    finally:
        proxy.stop()


class BrokenCache(BaseCache):
    def __init__(self, location: str, params: dict[str, Any]) -> None:
        super().__init__(params)

    def get(self, *args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("Connection refused")

    set = delete = get


def test_a_failing_store_is_a_miss_and_a_warning(settings: Any, caplog: Any) -> None:
    settings.CACHES = {**settings.CACHES, "broken": {"BACKEND": f"{__name__}.BrokenCache"}}
    logger = logging.getLogger("backstage.cachetest")
    from backstage_core.services.logger import LoggerService

    cache = CacheService("broken", "plugin", None, LoggerService(logger))
    with caplog.at_level(logging.WARNING, logger="backstage.cachetest"):
        cache.set("key", "value")
        assert cache.get("key") is None
        cache.delete("key")
    assert [r.getMessage() for r in caplog.records] == [
        "Cache set failed, treating it as a miss until it answers again: Connection refused",
    ]


def test_an_unknown_store_is_refused() -> None:
    from django.core.exceptions import ImproperlyConfigured

    from backstage_core.cache import cache_settings
    from backstage_core.config.reader import ConfigReader

    with pytest.raises(ImproperlyConfigured, match="^Unknown cache store: nosuch$"):
        cache_settings(ConfigReader({"backend": {"cache": {"store": "nosuch"}}}))


@pytest.mark.parametrize(
    ("cache", "backend", "location"),
    [
        (
            {"store": "redis", "connection": "redis://cache:6379/2"},
            "django.core.cache.backends.redis.RedisCache",
            "redis://cache:6379/2",
        ),
        (
            {"store": "valkey", "connection": "valkey://cache:6379"},
            "django.core.cache.backends.redis.RedisCache",
            "redis://cache:6379",
        ),
        (
            {"store": "memcache", "connection": "cache:11211"},
            "django.core.cache.backends.memcached.PyMemcacheCache",
            "cache:11211",
        ),
    ],
)
def test_stores_map_to_django_cache_backends(
    cache: dict[str, Any], backend: str, location: str
) -> None:
    from backstage_core.cache import cache_settings
    from backstage_core.config.reader import ConfigReader

    settings = cache_settings(ConfigReader({"backend": {"cache": cache}}))
    assert (settings["BACKEND"], settings["LOCATION"]) == (backend, location)
