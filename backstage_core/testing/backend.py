"""``start_test_backend``: a real backend on a real HTTP server on a free port, with mock services.

    with start_test_backend(features=[todo_plugin], config={"todo": {...}}) as test_backend:
        response = test_backend.client.get("/api/todo/todos")

Services default to ``mock_services`` (mock config from ``config``, silent logger, mock auth,
in-memory database per plugin, fresh cache); a service factory among ``features`` replaces one.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

import httpx
from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler

from backstage_core.http.urls import BackendURLConf
from backstage_core.http.wsgi import BackendWSGIHandler
from backstage_core.runtime import default_service_factories
from backstage_core.testing.services import mock_services
from backstage_core.wiring.backend import Backend
from backstage_core.wiring.features import BackendFeature, ServiceFactory

__all__ = ["TestBackend", "start_test_backend"]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        pass


def _deep_merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _not_a_test(fn: Any) -> Any:
    fn.__test__ = False
    return fn


class TestBackend:
    """A started backend and its server: ``url``, ``client``, ``backend``, ``stop()``."""

    __test__ = False  # not a pytest test class

    def __init__(
        self, backend: Backend, server: ThreadedWSGIServer, thread: threading.Thread
    ) -> None:
        self.backend = backend
        self.server = server
        self._thread = thread
        self.port: int = server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.client = httpx.Client(base_url=self.url, timeout=30)
        self._stopped = False

    def get_service(self, ref: Any, plugin_id: str = "root") -> Any:
        return self.backend.get_service(ref, plugin_id)

    def forget_connections(self) -> None:
        """Drop this thread's connections to the plugins' aliases, so its next query reaches the
        database the backend uses now (a thread keeps its connection across backends otherwise)."""
        from backstage_core.services.database import forget_connection

        for plugin_id in self.backend.plugin_ids:
            forget_connection(plugin_id)

    def stop(self) -> Any:
        """Run the shutdown hooks, then stop the server; returns the backend's stop result."""
        if self._stopped:
            return None
        self._stopped = True
        try:
            result = self.backend.stop()
            self.forget_connections()
        finally:
            self.client.close()
            self.server.shutdown()
            self.server.server_close()
            self._thread.join(timeout=5)
            self.backend.close()
        return result

    def __enter__(self) -> TestBackend:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


@_not_a_test
def test_backend_services(config: Mapping[str, Any]) -> list[ServiceFactory]:
    """The default services of a test backend: the real ones, with mocks where tests need them."""
    mocks = [
        mock_services.root_config.factory(data=config),
        mock_services.root_logger.factory(),
        mock_services.auth.factory(),
        mock_services.http_auth.factory(),
        mock_services.user_info.factory(),
        mock_services.cache.factory(),
        mock_services.database.factory(),
    ]
    by_id = {f.service.id: f for f in default_service_factories()}
    by_id.update({f.service.id: f for f in mocks})
    return list(by_id.values())


def start_test_backend(
    *,
    features: Iterable[BackendFeature | str] = (),
    config: Mapping[str, Any] | None = None,
    start: bool = True,
    port: int = 0,
) -> TestBackend:
    """Start a backend with ``features`` on a free port (or ``port``); raises if it fails to start.

    With ``start=False`` the server answers but the backend is not started: call
    ``test_backend.backend.start()`` (to see what happens while plugins start).
    """
    server = ThreadedWSGIServer(("127.0.0.1", port), _QuietHandler, allow_reuse_address=False)
    server.daemon_threads = True
    port = server.server_address[1]
    base = {
        "backend": {
            "baseUrl": f"http://localhost:{port}",
            "listen": {"host": "127.0.0.1", "port": port},
        }
    }
    backend = Backend(test_backend_services(_deep_merge(base, config or {})))
    try:
        for feature in features:
            backend.add(feature)
        server.set_app(BackendWSGIHandler(backend, urlconf=BackendURLConf(backend)))
    except BaseException:
        server.server_close()
        raise
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.02},
        name=f"test-backend-{port}",
        daemon=True,
    )
    thread.start()
    test_backend = TestBackend(backend, server, thread)
    if not start:
        return test_backend
    try:
        backend.start()
    except BaseException:
        test_backend.stop()
        raise
    test_backend.forget_connections()
    return test_backend
