"""The cache service: per-plugin namespaces, TTLs, and a failing store as a miss."""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

import pytest
from django.core.cache.backends.base import BaseCache

from backstage_core import core_services, create_backend_plugin
from backstage_core.services.cache import CacheService, normalize_key


def caches_of(
    test_backend_factory: Any, *plugin_ids: str, config: dict[str, Any] | None = None
) -> dict[str, CacheService]:
    seen: dict[str, CacheService] = {}

    def plugin(plugin_id: str) -> Any:
        def register(env: Any) -> None:
            env.register_init(
                deps={"cache": core_services.cache},
                init=lambda cache: seen.__setitem__(plugin_id, cache),
            )

        return create_backend_plugin(plugin_id=plugin_id, register=register, django_app=None)

    test_backend_factory(features=[plugin(p) for p in plugin_ids], config=config)
    return seen


def test_two_plugins_using_the_same_key_never_see_each_others_values(
    test_backend_factory: Any,
) -> None:
    caches = caches_of(test_backend_factory, "one", "two")
    caches["one"].set("shared:key", {"owner": "one"})
    caches["two"].set("shared:key", {"owner": "two"})

    assert caches["one"].get("shared:key") == {"owner": "one"}
    assert caches["two"].get("shared:key") == {"owner": "two"}
    caches["one"].delete("shared:key")
    assert caches["one"].get("shared:key") is None
    assert caches["two"].get("shared:key") == {"owner": "two"}


def test_values_expire_after_their_ttl(test_backend_factory: Any) -> None:
    cache = caches_of(test_backend_factory, "one")["one"]
    cache.set("short", "value", ttl=timedelta(milliseconds=300))
    cache.set("ms", "value", ttl=300)  # a number is milliseconds, as in Backstage
    cache.set("forever", "value")
    assert cache.get("short") == "value" and cache.get("ms") == "value"
    time.sleep(1.1)
    assert (cache.get("short"), cache.get("ms"), cache.get("forever")) == (None, None, "value")


def test_with_options_changes_the_default_ttl_and_keeps_the_namespace(
    test_backend_factory: Any,
) -> None:
    cache = caches_of(test_backend_factory, "one")["one"]
    short = cache.with_options(default_ttl={"milliseconds": 300})
    short.set("key", "value")
    assert cache.get("key") == "value"
    time.sleep(1.1)
    assert cache.get("key") is None


def test_default_ttl_comes_from_config(test_backend_factory: Any) -> None:
    cache = caches_of(
        test_backend_factory, "one", config={"backend": {"cache": {"defaultTtl": "300ms"}}}
    )["one"]
    cache.set("key", "value")
    time.sleep(1.1)
    assert cache.get("key") is None


def test_long_keys_are_hashed() -> None:
    assert normalize_key("abc") == "YWJj"
    assert len(normalize_key("x" * 1000)) == 44


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
        "Cache set failed, treating it as a miss: Connection refused",
        "Cache get failed, treating it as a miss: Connection refused",
        "Cache delete failed, treating it as a miss: Connection refused",
    ]


def test_an_unknown_store_is_refused() -> None:
    from django.core.exceptions import ImproperlyConfigured

    from backstage_core.conf import _caches
    from backstage_core.config.reader import ConfigReader

    with pytest.raises(ImproperlyConfigured, match="^Unknown cache store: nosuch$"):
        _caches(ConfigReader({"backend": {"cache": {"store": "nosuch"}}}))
