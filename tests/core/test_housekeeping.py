"""The production server's request housekeeping does what Django's own receivers do."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.cache import caches, close_caches
from django.core.cache.backends.locmem import LocMemCache
from django.core.handlers.base import reset_urlconf
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, connections, reset_queries
from django.test import override_settings
from django.urls import base as urls_base
from django.urls import get_urlconf, set_urlconf

from backstage_core.db import housekeeping

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(params=["django", "backstage"])
def receivers(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "backstage":
        housekeeping.install()
        try:
            yield request.param
        finally:
            housekeeping.uninstall()
    else:
        yield request.param


def in_a_new_thread(scenario: Callable[[], Any]) -> Any:
    """Run ``scenario`` in a thread of its own (its own connections), as a request thread."""
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["value"] = scenario()
        except BaseException as error:  # re-raised in the test's thread
            result["error"] = error
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["value"]


def request() -> None:
    request_started.send(sender=None, environ={})
    request_finished.send(sender=None)


def test_a_healthy_persistent_connection_stays_open(receivers: str) -> None:
    def scenario() -> bool:
        connection = connections["default"]
        connection.ensure_connection()
        connection.close_at = None  # CONN_MAX_AGE = None
        raw = connection.connection
        request()
        request()
        return connection.connection is raw

    assert in_a_new_thread(scenario)


def closes(connection: Any) -> list[str]:
    """Calls to ``connection.close()`` from now on (an in-memory test database ignores them)."""
    calls: list[str] = []
    connection.close = lambda: calls.append("close")
    return calls


def test_a_connection_left_out_of_autocommit_is_closed_when_the_request_ends(
    receivers: str,
) -> None:
    def scenario() -> tuple[list[str], list[str]]:
        connection = connections["default"]
        connection.ensure_connection()
        connection.close_at = None
        calls = closes(connection)
        request_started.send(sender=None, environ={})
        connection.set_autocommit(False)
        during = list(calls)
        request_finished.send(sender=None)
        del connection.close
        connection.set_autocommit(True)
        return during, list(calls)

    assert in_a_new_thread(scenario) == ([], ["close"])


def test_a_connection_past_its_max_age_is_closed_at_the_next_request(receivers: str) -> None:
    def scenario() -> tuple[list[str], list[str]]:
        connection = connections["default"]
        connection.ensure_connection()
        connection.close_at = time.monotonic() + 3600
        calls = closes(connection)
        request()
        kept = list(calls)
        connection.close_at = time.monotonic() - 1  # CONN_MAX_AGE ran out (0: at once)
        request_started.send(sender=None, environ={})
        return kept, list(calls)

    assert in_a_new_thread(scenario) == ([], ["close"])


def test_a_new_connection_for_the_same_database_is_looked_after(receivers: str) -> None:
    def scenario() -> tuple[list[str], list[str]]:
        first = connections["default"]
        first.ensure_connection()
        first.close_at = None
        request()
        second = connections["default"] = connections.create_connection("default")
        second.ensure_connection()
        second.close_at = time.monotonic() - 1
        first_calls, second_calls = closes(first), closes(second)
        request_finished.send(sender=None)
        return list(first_calls), list(second_calls)

    assert in_a_new_thread(scenario) == ([], ["close"])


def test_the_query_log_is_cleared_when_a_request_starts(receivers: str) -> None:
    def scenario() -> tuple[int, int]:
        connection = connections["default"]
        connection.force_debug_cursor = True
        try:
            with connection.cursor() as cursor:
                cursor.execute("select 1")
            logged = len(connection.queries)
            request_started.send(sender=None, environ={})
            return logged, len(connection.queries)
        finally:
            connection.force_debug_cursor = False

    assert in_a_new_thread(scenario) == (1, 0)


def test_a_database_the_thread_has_not_used_is_left_alone(receivers: str) -> None:
    def scenario() -> list[str]:
        connections["default"].ensure_connection()
        request()
        return [connection.alias for connection in connections.all(initialized_only=True)]

    assert in_a_new_thread(scenario) == ["default"]


class ClosingCache(LocMemCache):
    """A cache with a ``close()`` of its own, as memcached's backends have."""

    closed: list[str] = []

    def __init__(self, name: str, params: dict[str, Any]) -> None:
        super().__init__(name, params)
        self.location = name

    def close(self, **kwargs: Any) -> None:
        ClosingCache.closed.append(self.location)


CLOSING = f"{__name__}.ClosingCache"
MEMORY = "django.core.cache.backends.locmem.LocMemCache"


def test_caches_this_thread_used_are_closed_when_the_request_ends(receivers: str) -> None:
    configured = {
        "default": {"BACKEND": MEMORY},
        "used": {"BACKEND": CLOSING, "LOCATION": "used"},
        "unused": {"BACKEND": CLOSING, "LOCATION": "unused"},
    }

    def scenario() -> tuple[list[str], list[str]]:
        caches["default"].get("x")
        caches["used"].get("x")
        request_started.send(sender=None, environ={})
        during = list(ClosingCache.closed)
        request_finished.send(sender=None)
        return during, list(ClosingCache.closed)

    ClosingCache.closed = []
    with override_settings(CACHES=configured):
        assert in_a_new_thread(scenario) == ([], ["used"])
        ClosingCache.closed = []
        # A cache added while the process runs (as a plugin's, when it starts) is looked after.
        added = {"BACKEND": CLOSING, "LOCATION": "added"}
        with override_settings(CACHES={**configured, "added": added}):
            in_a_new_thread(lambda: (caches["added"].get("x"), request()))
            assert ClosingCache.closed == ["added"]


def test_a_url_conf_set_in_a_request_is_reset_when_it_ends(receivers: str) -> None:
    def scenario() -> list[Any]:
        seen = [get_urlconf()]
        set_urlconf("tests.urls")  # as the handler does for a request.urlconf
        seen.append(get_urlconf())
        request_finished.send(sender=None)
        seen.append(get_urlconf())
        request()  # none set: nothing to reset
        seen.append(get_urlconf())
        return seen

    assert in_a_new_thread(scenario) == [None, "tests.urls", None, None]


def test_a_url_conf_is_reset_only_in_the_thread_that_set_it(receivers: str) -> None:
    set_urlconf("tests.urls")
    try:
        in_a_new_thread(lambda: (set_urlconf("tests.settings"), request()))
        assert get_urlconf() == "tests.urls"
        request_finished.send(sender=None)
        assert get_urlconf() is None
    finally:
        set_urlconf(None)


def test_the_url_conf_stand_in_is_used_only_where_asgiref_is_understood(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from asgiref.local import Local

    housekeeping.install()  # with the installed asgiref, it reads the storage itself
    try:
        assert not has_receiver(request_finished, reset_urlconf)
    finally:
        housekeeping.uninstall()
    # A Local laid out otherwise (a thread-critical one keeps a threading.local): Django's stays.
    monkeypatch.setattr(urls_base, "_urlconfs", Local(thread_critical=True))
    housekeeping.install()
    try:
        assert has_receiver(request_finished, reset_urlconf)
        set_urlconf("tests.urls")
        request_finished.send(sender=None)
        assert get_urlconf() is None
    finally:
        housekeeping.uninstall()


def test_uninstall_gives_django_its_receivers_back() -> None:
    housekeeping.install()
    housekeeping.install()  # idempotent
    try:
        assert not has_receiver(request_started, close_old_connections)
        assert not has_receiver(request_started, reset_queries)
        assert not has_receiver(request_finished, close_old_connections)
        assert not has_receiver(request_finished, close_caches)
        assert not has_receiver(request_finished, reset_urlconf)
    finally:
        housekeeping.uninstall()
    assert has_receiver(request_started, close_old_connections)
    assert has_receiver(request_started, reset_queries)
    assert has_receiver(request_finished, close_old_connections)
    assert has_receiver(request_finished, close_caches)
    assert has_receiver(request_finished, reset_urlconf)


def has_receiver(signal: Any, function: Any) -> bool:
    return any(reference() is function for _key, reference, _async in signal.receivers)
