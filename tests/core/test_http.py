"""The HTTP router: mounting, the credentials barrier, the error envelope, health, headers, CORS."""

from __future__ import annotations

import io
import json
import re
import threading
from typing import Any

import pytest
from django.core.signals import request_finished
from django.db import OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.urls import get_urlconf, path, reverse
from rest_framework import routers, serializers, viewsets
from rest_framework.response import Response

from backstage_core import (
    AuthenticationError,
    ConflictError,
    InputError,
    NotAllowedError,
    NotFoundError,
    NotImplementedError,
    NotModifiedError,
    ServiceUnavailableError,
    core_services,
    create_backend_plugin,
    http_router_factory,
)
from backstage_core.services.http_auth import http_auth_factory
from backstage_core.testing import mock_credentials


def ok(request: HttpRequest, **kwargs: Any) -> JsonResponse:
    return JsonResponse({"path": request.path})


def raiser(error: BaseException) -> Any:
    def view(request: HttpRequest) -> HttpResponse:
        raise error

    return view


def http_plugin(
    plugin_id: str, urls: Any, policies: list[tuple[str, str]] = (), init_hook: Any = None
) -> Any:
    def register(env: Any) -> None:
        def init(http_router: Any, lifecycle: Any) -> None:
            if init_hook is not None:
                init_hook(lifecycle)
            http_router.use(urls)
            for policy_path, allow in policies:
                http_router.add_auth_policy(path=policy_path, allow=allow)

        env.register_init(
            deps={"http_router": core_services.http_router, "lifecycle": core_services.lifecycle},
            init=init,
        )

    return create_backend_plugin(plugin_id=plugin_id, register=register, django_app=None)


NONE = {"Authorization": mock_credentials.none.header()}
USER = {"Authorization": mock_credentials.user.header()}


def wsgi_environ(path_info: str) -> dict[str, Any]:
    """A WSGI environ for a GET of ``path_info``, to call a handler on the test's own thread."""
    return {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path_info,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
    }


def envelope(name: str, message: str, method: str, url: str, status: int) -> dict[str, Any]:
    return {
        "error": {"name": name, "message": message},
        "request": {"method": method, "url": url},
        "response": {"statusCode": status},
    }


# -- the credentials barrier -------------------------------------------------------------------


def test_the_barrier_denies_by_default_before_routing(test_backend_factory: Any) -> None:
    backend = test_backend_factory(features=[http_plugin("closed", [path("thing", ok)])])

    for url in ("/api/closed/thing", "/api/closed/no-such-route", "/api/closed"):
        response = backend.client.get(url, headers=NONE)
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/json; charset=utf-8"
        relative = url[len("/api/closed") :] or "/"
        assert response.json() == envelope(
            "AuthenticationError", "Missing credentials", "GET", relative, 401
        )

    assert backend.client.get("/api/closed/thing", headers=USER).json() == {
        "path": "/api/closed/thing"
    }
    assert (
        backend.client.get(
            "/api/closed/thing", headers={"Authorization": "Bearer mock-service-token"}
        ).status_code
        == 200
    )


def test_without_a_token_the_real_http_auth_service_says_missing_credentials(
    test_backend_factory: Any,
) -> None:
    backend = test_backend_factory(
        features=[http_plugin("closed", [path("thing", ok)]), http_auth_factory()]
    )
    response = backend.client.get("/api/closed/thing?x=1")
    assert response.status_code == 401
    assert response.json() == envelope(
        "AuthenticationError", "Missing credentials", "GET", "/thing?x=1", 401
    )


def test_a_token_no_handler_accepts_is_illegal(test_backend_factory: Any) -> None:
    from backstage_core.services.auth import auth_factory

    backend = test_backend_factory(
        features=[http_plugin("closed", [path("thing", ok)]), auth_factory(), http_auth_factory()]
    )
    response = backend.client.get(
        "/api/closed/thing", headers={"Authorization": "Bearer something"}
    )
    assert response.status_code == 401
    assert response.json()["error"] == {"name": "AuthenticationError", "message": "Illegal token"}


def test_an_invalid_token_is_refused_even_where_user_credentials_are_allowed(
    test_backend_factory: Any,
) -> None:
    backend = test_backend_factory(features=[http_plugin("closed", [path("thing", ok)])])
    response = backend.client.get(
        "/api/closed/thing", headers={"Authorization": mock_credentials.user.invalid_header()}
    )
    assert response.status_code == 401
    assert response.json()["error"] == {
        "name": "AuthenticationError",
        "message": "User token is invalid",
    }


def test_unauthenticated_policies_open_a_prefix_on_segment_boundaries(
    test_backend_factory: Any,
) -> None:
    urls = [
        path("public", ok),
        path("public/deep/x", ok),
        path("publicity", ok),
        path("private", ok),
        path("users/<str:name>/info", ok),
    ]
    backend = test_backend_factory(
        features=[
            http_plugin(
                "mixed",
                urls,
                [("/public", "unauthenticated"), ("/users/:id/info", "unauthenticated")],
            )
        ]
    )
    client = backend.client

    assert client.get("/api/mixed/public", headers=NONE).status_code == 200
    assert (
        client.get("/api/mixed/public/", headers=NONE).status_code == 404
    )  # open, but no such route
    assert client.get("/api/mixed/public/deep/x", headers=NONE).status_code == 200
    assert client.get("/api/mixed/users/jane/info", headers=NONE).status_code == 200
    assert client.get("/api/mixed/publicity", headers=NONE).status_code == 401
    assert client.get("/api/mixed/private", headers=NONE).status_code == 401
    # A spelling that only looks like an open path is not opened by it.
    assert client.get("/api/mixed/public/../private", headers=NONE).status_code == 401
    assert client.get("/api/mixed/public/%2E%2E/private", headers=NONE).status_code == 401
    assert client.get("/api/mixed//public/../private", headers=NONE).status_code == 401


def test_user_cookie_policies_accept_the_backstage_auth_cookie_only_there(
    test_backend_factory: Any,
) -> None:
    plugin = http_plugin(
        "cookies", [path("static/app.js", ok), path("api", ok)], [("/static", "user-cookie")]
    )
    backend = test_backend_factory(features=[plugin, http_auth_factory()])
    cookie = {"Cookie": mock_credentials.limited_user.cookie()}

    assert backend.client.get("/api/cookies/static/app.js", headers=cookie).status_code == 200
    assert backend.client.get("/api/cookies/static/app.js").status_code == 401
    assert backend.client.get("/api/cookies/api", headers=cookie).status_code == 401


def test_the_default_auth_policy_can_be_turned_off(test_backend_factory: Any) -> None:
    backend = test_backend_factory(
        features=[http_plugin("closed", [path("thing", ok)])],
        config={"backend": {"auth": {"dangerouslyDisableDefaultAuthPolicy": True}}},
    )
    assert backend.client.get("/api/closed/thing", headers=NONE).status_code == 200


def test_invalid_auth_policies_are_refused(test_backend_factory: Any) -> None:
    from backstage_core import BackendStartupError

    with pytest.raises(BackendStartupError, match="Invalid auth policy"):
        test_backend_factory(features=[http_plugin("bad", [], [("/", "everyone")])])


# -- the error envelope ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "status", "name"),
    [
        (InputError("bad input"), 400, "InputError"),
        (AuthenticationError("who are you"), 401, "AuthenticationError"),
        (NotAllowedError("not you"), 403, "NotAllowedError"),
        (NotFoundError("no such thing"), 404, "NotFoundError"),
        (ConflictError("already there"), 409, "ConflictError"),
        (NotImplementedError("not yet"), 501, "NotImplementedError"),
        (ServiceUnavailableError("later"), 503, "ServiceUnavailableError"),
        (Http404("gone"), 404, "NotFoundError"),
    ],
)
def test_errors_become_the_envelope_with_their_status(
    test_backend_factory: Any, error: Exception, status: int, name: str
) -> None:
    backend = test_backend_factory(
        features=[http_plugin("errors", [path("boom", raiser(error))], [("/", "unauthenticated")])]
    )
    response = backend.client.post("/api/errors/boom?q=1")
    assert response.status_code == status
    body = response.json()
    body["error"].pop("stack", None)
    assert body == envelope(name, str(error), "POST", "/boom?q=1", status)


def test_not_modified_maps_to_304(test_backend_factory: Any) -> None:
    backend = test_backend_factory(
        features=[
            http_plugin(
                "errors",
                [path("boom", raiser(NotModifiedError("same")))],
                [("/", "unauthenticated")],
            )
        ]
    )
    assert backend.client.get("/api/errors/boom").status_code == 304


def test_an_error_with_its_own_status_keeps_it(test_backend_factory: Any) -> None:
    class TeapotError(Exception):
        status_code = 418

    backend = test_backend_factory(
        features=[
            http_plugin(
                "errors",
                [path("boom", raiser(TeapotError("short and stout")))],
                [("/", "unauthenticated")],
            )
        ]
    )
    response = backend.client.get("/api/errors/boom")
    assert response.status_code == 418
    assert response.json()["error"]["message"] == "short and stout"


@pytest.mark.parametrize(
    "error", [RuntimeError("secret internals"), OperationalError("no such table: secret_table")]
)
def test_unexpected_and_database_errors_are_hidden_behind_a_log_id(
    test_backend_factory: Any, caplog: Any, error: Exception
) -> None:
    from backstage_core.testing import mock_services

    plugin = http_plugin("errors", [path("boom", raiser(error))], [("/", "unauthenticated")])
    backend = test_backend_factory(
        features=[plugin, mock_services.root_logger.factory(level="error")]
    )
    with caplog.at_level("ERROR"):
        response = backend.client.get("/api/errors/boom")
    assert response.status_code == 500
    body = response.json()
    match = re.fullmatch(
        r"An internal error occurred logId=([0-9a-f]{20})", body["error"]["message"]
    )
    assert match, body
    assert body == envelope("Error", body["error"]["message"], "GET", "/boom", 500)
    assert "secret" not in response.text
    assert any(
        f"Filtered internal error with logId={match.group(1)} from response" in r.getMessage()
        for r in caplog.records
    )
    assert any(r.getMessage() == "Request failed with status 500" for r in caplog.records)


def test_a_lost_database_connection_is_a_503(test_backend_factory: Any) -> None:
    error = OperationalError(
        'connection to server at "127.0.0.1", port 5432 failed: Connection refused'
    )
    backend = test_backend_factory(
        features=[http_plugin("errors", [path("boom", raiser(error))], [("/", "unauthenticated")])]
    )
    response = backend.client.get("/api/errors/boom")
    assert response.status_code == 503
    assert response.json()["error"] == {
        "name": "ServiceUnavailableError",
        "message": "Database is unavailable",
    }


def test_stack_traces_are_shown_in_development_only(
    test_backend_factory: Any, monkeypatch: Any
) -> None:
    features = [
        http_plugin("errors", [path("boom", raiser(InputError("bad")))], [("/", "unauthenticated")])
    ]
    monkeypatch.setenv("DJANGO_ENV", "development")
    development = test_backend_factory(features=features).client.get("/api/errors/boom").json()
    assert "InputError: bad" in development["error"]["stack"]

    monkeypatch.setenv("DJANGO_ENV", "production")
    production = test_backend_factory(
        features=[
            http_plugin(
                "errors2", [path("boom", raiser(InputError("bad")))], [("/", "unauthenticated")]
            )
        ]
    )
    assert "stack" not in production.client.get("/api/errors2/boom").json()["error"]


class ThingSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=5)


class ThingViewSet(viewsets.ViewSet):
    def list(self, request: Any) -> Response:
        return Response([{"name": "a"}])

    def create(self, request: Any) -> Response:
        serializer = ThingSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(serializer.data, status=201)

    def retrieve(self, request: Any, pk: str) -> Response:
        raise NotFoundError(f"No thing {pk}")


def test_a_drf_router_is_mounted_and_its_errors_use_the_envelope(test_backend_factory: Any) -> None:
    router = routers.SimpleRouter()
    router.trailing_slash = "/?"
    router.register("things", ThingViewSet, basename="thing")
    backend = test_backend_factory(
        features=[http_plugin("drf", router, [("/", "unauthenticated")])]
    )
    client = backend.client

    assert client.get("/api/drf/things").json() == [{"name": "a"}]
    assert client.get("/api/drf/things/").json() == [{"name": "a"}]
    response = client.post("/api/drf/things", json={"name": "too long"})
    assert response.status_code == 400
    assert response.json() == envelope(
        "InputError",
        "name: Ensure this field has no more than 5 characters.",
        "POST",
        "/things",
        400,
    )
    response = client.post(
        "/api/drf/things", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["name"] == "SyntaxError"
    assert client.get("/api/drf/things/7").json() == envelope(
        "NotFoundError", "No thing 7", "GET", "/things/7", 404
    )


def test_routes_can_be_reversed_in_the_plugin_namespace(test_backend_factory: Any) -> None:
    seen = {}

    def named(request: HttpRequest) -> JsonResponse:
        seen["url"] = reverse("named:here")
        return JsonResponse({})

    backend = test_backend_factory(
        features=[
            http_plugin("named", [path("here", named, name="here")], [("/", "unauthenticated")])
        ]
    )
    assert backend.client.get("/api/named/here").status_code == 200
    assert seen["url"] == "/api/named/here"
    # On this thread: the handler reverses without setting the thread's URL conf, and leaves none.
    seen.clear()
    statuses: list[str] = []
    handler = backend.server.get_app()
    handler(wsgi_environ("/api/named/here"), lambda status, headers: statuses.append(status))
    assert statuses == ["200 OK"] and seen["url"] == "/api/named/here"
    assert get_urlconf() is None


def test_get_path_moves_every_plugin(test_backend_factory: Any) -> None:
    backend = test_backend_factory(
        features=[
            http_plugin("moved", [path("thing", ok)], [("/", "unauthenticated")]),
            http_router_factory(get_path=lambda plugin_id: f"/plugins/{plugin_id}"),
        ]
    )
    assert backend.client.get("/plugins/moved/thing").json() == {"path": "/plugins/moved/thing"}
    assert backend.client.get("/api/moved/thing").status_code == 404


def test_unknown_paths_are_a_404_with_an_empty_body(test_backend_factory: Any) -> None:
    backend = test_backend_factory(
        features=[http_plugin("open", [path("thing", ok)], [("/", "unauthenticated")])]
    )
    for url in ("/api/open/nothing", "/api/unknown-plugin/x", "/nothing", "/api/OPEN/thing"):
        for method in ("GET", "POST", "DELETE"):
            response = backend.client.request(method, url)
            assert (response.status_code, response.content) == (404, b""), (method, url)
            assert "content-type" not in response.headers


# -- health and lifecycle ----------------------------------------------------------------------


def test_health_endpoints(test_backend_factory: Any) -> None:
    backend = test_backend_factory(config={"backend": {"health": {"headers": {"X-Health": "yes"}}}})
    for kind in ("liveness", "readiness"):
        response = backend.client.get(f"/.backstage/health/v1/{kind}", headers=NONE)
        assert (response.status_code, response.json()) == (200, {"status": "ok"})
        assert response.headers["x-health"] == "yes"


def get_while_releasing(url: str, release: threading.Event) -> Any:
    """GET ``url`` from another thread, let the held start go on, and return the response."""
    import httpx

    waiting: dict[str, Any] = {}
    request = threading.Thread(target=lambda: waiting.update(response=httpx.get(url, timeout=10)))
    request.start()
    release.set()
    request.join()
    return waiting["response"]


def assert_held_then_unavailable(url: str) -> None:
    """A request held while its routes start, past ``startupRequestPauseTimeout``: Backstage's 503."""
    import httpx

    held = httpx.get(url, timeout=10)
    assert held.status_code == 503
    assert held.json()["error"] == {
        "name": "ServiceUnavailableError",
        "message": "Service has not started up yet",
    }


def test_requests_wait_for_their_plugin_to_start_and_readiness_says_503_until_then(
    test_backend_factory: Any,
) -> None:
    import httpx

    release = threading.Event()
    features = [
        http_plugin("slow", [path("thing", ok)], [("/", "unauthenticated")]),
        http_plugin(
            "late",
            [path("thing", ok)],
            [("/", "unauthenticated")],
            init_hook=lambda lifecycle: release.wait(10),
        ),
    ]
    config = {"backend": {"lifecycle": {"startupRequestPauseTimeout": "300ms"}}}
    backend = test_backend_factory(features=features, config=config, start=False)
    url = backend.url
    starting = threading.Thread(target=backend.backend.start)
    starting.start()
    try:
        readiness = httpx.get(f"{url}/.backstage/health/v1/readiness")
        assert (readiness.status_code, readiness.json()) == (
            503,
            {"message": "Backend has not started yet", "status": "error"},
        )
        assert_held_then_unavailable(f"{url}/api/late/thing")
        deadline = threading.Event()
        while httpx.get(f"{url}/api/slow/thing").status_code != 200 and not deadline.wait(0.02):
            pass  # its own plugin starts without waiting for the other
        assert httpx.get(f"{url}/api/slow/thing").status_code == 200

        response = get_while_releasing(f"{url}/api/late/thing", release)
        starting.join()
        assert response.status_code == 200
        assert httpx.get(f"{url}/.backstage/health/v1/readiness").status_code == 200
    finally:
        release.set()
        starting.join()


def test_a_request_that_matches_no_route_while_the_backend_starts_waits_for_it(
    test_backend_factory: Any,
) -> None:
    """With several workers, a client may see another worker's readiness say 200 and reach one
    whose plugins have not mounted their routes yet: such a request is held, as for a plugin
    that is starting, instead of falling through to a 404 (or Django's CSRF 403 for a POST)."""
    import httpx

    release = threading.Event()

    def register(env: Any) -> None:
        def init(root_router: Any) -> None:
            release.wait(10)
            root_router.use("/late", [path("thing", ok)])

        env.register_init(deps={"root_router": core_services.root_http_router}, init=init)

    features = [create_backend_plugin(plugin_id="late", register=register, django_app=None)]
    config = {"backend": {"lifecycle": {"startupRequestPauseTimeout": "300ms"}}}
    backend = test_backend_factory(features=features, config=config, start=False)
    url = backend.url
    starting = threading.Thread(target=backend.backend.start)
    starting.start()
    try:
        assert_held_then_unavailable(f"{url}/late/thing")
        response = get_while_releasing(f"{url}/late/thing", release)
        starting.join()
        assert (response.status_code, response.json()) == (200, {"path": "/late/thing"})
        # Health checks are never held.
        assert httpx.get(f"{url}/.backstage/health/v1/liveness").status_code == 200
    finally:
        release.set()
        starting.join()


def test_shutdown_turns_readiness_and_plugin_routes_to_503(test_backend_factory: Any) -> None:
    in_hook = threading.Event()
    release = threading.Event()

    def hooks(lifecycle: Any) -> None:
        def slow_shutdown() -> None:
            in_hook.set()
            release.wait(10)

        lifecycle.add_shutdown_hook(slow_shutdown)

    backend = test_backend_factory(
        features=[
            http_plugin("closing", [path("thing", ok)], [("/", "unauthenticated")], init_hook=hooks)
        ]
    )
    stopping = threading.Thread(target=backend.backend.stop)
    stopping.start()
    assert in_hook.wait(5)
    try:
        readiness = backend.client.get("/.backstage/health/v1/readiness")
        assert (readiness.status_code, readiness.json()) == (
            503,
            {"message": "Backend is shutting down", "status": "error"},
        )
        response = backend.client.get("/api/closing/thing")
        assert response.status_code == 503
        assert response.json()["error"] == {
            "name": "ServiceUnavailableError",
            "message": "Service is shutting down",
        }
    finally:
        release.set()
        stopping.join()


# -- headers and CORS --------------------------------------------------------------------------

BACKSTAGE_CSP = (
    "default-src 'self';base-uri 'self';font-src 'self' https: data:;frame-ancestors 'self';"
    "img-src 'self' data:;object-src 'none';script-src 'self' 'unsafe-eval';script-src-attr 'none';"
    "style-src 'self' https: 'unsafe-inline';upgrade-insecure-requests"
)


def test_security_headers_are_on_every_response(test_backend_factory: Any) -> None:
    backend = test_backend_factory(
        features=[http_plugin("open", [path("thing", ok)], [("/", "unauthenticated")])]
    )
    for url in ("/api/open/thing", "/nothing", "/.backstage/health/v1/liveness"):
        headers = backend.client.get(url).headers
        assert headers["content-security-policy"] == BACKSTAGE_CSP
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["strict-transport-security"] == "max-age=15552000; includeSubDomains"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "SAMEORIGIN"
        assert "x-powered-by" not in headers
        assert "access-control-allow-origin" not in headers


def test_a_security_header_a_view_sets_is_kept(test_backend_factory: Any) -> None:
    def framed(request: HttpRequest) -> HttpResponse:
        response = JsonResponse({})
        response["x-frame-options"] = "DENY"  # any spelling of the name
        response["Content-Security-Policy"] = "default-src 'none'"
        return response

    backend = test_backend_factory(
        features=[http_plugin("own", [path("framed", framed)], [("/", "unauthenticated")])]
    )
    response = backend.client.get("/api/own/framed")
    assert response.headers.get_list("x-frame-options") == ["DENY"]
    assert response.headers.get_list("content-security-policy") == ["default-src 'none'"]
    assert response.headers["x-content-type-options"] == "nosniff"


def test_csp_and_referrer_policy_follow_config(test_backend_factory: Any) -> None:
    config = {
        "backend": {
            "csp": {
                "connectSrc": ["'self'", "https://api.example.com"],
                "upgrade-insecure-requests": False,
            },
            "referrer": {"policy": ["same-origin"]},
        }
    }
    headers = test_backend_factory(config=config).client.get("/nothing").headers
    assert headers["content-security-policy"].endswith(
        "style-src 'self' https: 'unsafe-inline';connect-src 'self' https://api.example.com"
    )
    assert headers["referrer-policy"] == "same-origin"


def test_cors_follows_backend_cors_with_origin_globs(
    test_backend_factory: Any, settings: Any
) -> None:
    from backstage_core.conf import cors_settings
    from backstage_core.config.reader import ConfigReader

    cors = cors_settings(
        ConfigReader(
            {
                "backend": {
                    "cors": {
                        "origin": ["https://*.example.com", "http://localhost:3000"],
                        "credentials": True,
                        "methods": ["GET", "POST"],
                    }
                }
            }
        )
    )
    assert cors is not None
    for key, value in cors.items():
        setattr(settings, key, value)
    settings.MIDDLEWARE = [
        settings.MIDDLEWARE[0],
        "corsheaders.middleware.CorsMiddleware",
        *settings.MIDDLEWARE[1:],
    ]
    settings.INSTALLED_APPS = [*settings.INSTALLED_APPS, "corsheaders"]
    backend = test_backend_factory(features=[http_plugin("open", [path("thing", ok)])])

    allowed = backend.client.get(
        "/api/open/thing", headers={"Origin": "https://app.example.com", **USER}
    )
    assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
    assert allowed.headers["access-control-allow-credentials"] == "true"
    refused = backend.client.get(
        "/api/open/thing", headers={"Origin": "https://example.org", **USER}
    )
    assert "access-control-allow-origin" not in refused.headers
    preflight = backend.client.options(
        "/api/open/thing",
        headers={"Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST"},
    )  # no credentials: answered before the barrier
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-methods"] == "GET, POST"


def test_a_root_path_can_only_be_mounted_once(test_backend_factory: Any) -> None:
    backend = test_backend_factory()
    router = backend.get_service(core_services.root_http_router)
    router.use("/extra", [path("x", ok)])
    assert backend.client.get("/extra/x").json() == {"path": "/extra/x"}
    with pytest.raises(
        ValueError, match="^Path /extra/deeper conflicts with the existing path /extra$"
    ):
        router.use("/extra/deeper", [])
    with pytest.raises(ValueError, match="^Root router path may not be empty$"):
        router.use("/", [])


# -- the WSGI handler ----------------------------------------------------------------------------


def test_in_memory_bodies_go_to_the_server_whole_and_streams_as_streams(
    test_backend_factory: Any,
) -> None:
    def stream(request: HttpRequest) -> StreamingHttpResponse:
        return StreamingHttpResponse(iter([b"one ", b"two"]))

    backend = test_backend_factory(
        features=[
            http_plugin(
                "wsgi", [path("ok", ok), path("stream", stream)], [("/", "unauthenticated")]
            )
        ]
    )
    handler = backend.server.get_app()
    finished: list[Any] = []

    def on_finished(**kwargs: Any) -> None:
        finished.append(kwargs)

    def call(path_info: str) -> tuple[Any, list[Any]]:
        started: list[Any] = []
        return handler(wsgi_environ(path_info), lambda status, h: started.append(status)), started

    request_finished.connect(on_finished)
    try:
        body, started = call("/api/wsgi/ok")
        # A list: the server sends it in one piece; the response was closed before returning it.
        assert body == [b'{"path": "/api/wsgi/ok"}']
        assert started == ["200 OK"] and len(finished) == 1

        streamed, started = call("/api/wsgi/stream")
        assert not isinstance(streamed, list) and len(finished) == 1  # the server closes it
        assert b"".join(streamed) == b"one two"
        streamed.close()
        assert len(finished) == 2
    finally:
        request_finished.disconnect(on_finished)


def test_core_routes_before_a_plugins_own_are_grouped_behind_one_check() -> None:
    from django.urls import URLResolver, path, re_path

    from backstage_core.services.http_router import _dot_routes_grouped

    core = [path(".backstage/a", ok, name="a"), re_path(r"^\.well-known/b$", ok, name="b")]
    own = [path("things", ok, name="things"), path(".backstage/late", ok, name="late")]
    grouped = _dot_routes_grouped([*core, *own])
    assert isinstance(grouped[0], URLResolver) and grouped[0].url_patterns == core
    assert grouped[1:] == own  # the plugin's own routes stay in order after them
    catch_all = re_path(r"^.*$", ok)  # an unescaped dot matches any path: never grouped
    assert _dot_routes_grouped([catch_all, *core]) == [catch_all, *core]
    assert _dot_routes_grouped([core[0], *own]) == [core[0], *own]  # one is not worth a group


# -- resolving paths ---------------------------------------------------------------------------


def test_a_path_seen_before_resolves_from_memory_with_kwargs_of_its_own(
    test_backend_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.urls.resolvers import URLResolver

    seen: list[Any] = []

    def thing(request: HttpRequest, pk: int) -> JsonResponse:
        seen.append(pk)
        request.resolver_match.kwargs["pk"] = -1  # a request may change its own match
        return JsonResponse({"pk": pk})

    backend = test_backend_factory(
        features=[
            http_plugin("remembered", [path("things/<int:pk>", thing)], [("/", "unauthenticated")])
        ]
    )
    walks: list[str] = []
    resolve = URLResolver.resolve

    def counted(self: Any, path_info: str) -> Any:
        if self.pattern.regex.pattern == "^/":  # the root resolver: one walk per path resolved
            walks.append(path_info)
        return resolve(self, path_info)

    monkeypatch.setattr(URLResolver, "resolve", counted)
    for _ in range(3):
        assert backend.client.get("/api/remembered/things/7").json() == {"pk": 7}
    assert backend.client.get("/api/remembered/things/8").json() == {"pk": 8}
    assert seen == [7, 7, 7, 8]
    assert walks == ["/api/remembered/things/7", "/api/remembered/things/8"]


def test_a_path_that_was_a_404_is_routed_once_a_plugin_mounts_it(
    test_backend_factory: Any,
) -> None:
    routers: dict[str, Any] = {}

    def register(env: Any) -> None:
        env.register_init(
            deps={"root_router": core_services.root_http_router},
            init=lambda root_router: routers.setdefault("root", root_router),
        )

    backend = test_backend_factory(
        features=[create_backend_plugin(plugin_id="keeper", register=register, django_app=None)]
    )
    assert backend.client.get("/later/thing").status_code == 404
    routers["root"].use("/later", [path("thing", ok)])
    assert backend.client.get("/later/thing").json() == {"path": "/later/thing"}


def test_i18n_patterns_resolve_by_the_active_language_every_time(
    test_backend_factory: Any,
) -> None:
    from django.conf.urls.i18n import i18n_patterns
    from django.urls import Resolver404
    from django.utils import translation

    backend = test_backend_factory(features=[])
    handler = backend.server.get_app()

    class urlconf:  # noqa: N801 - a URL conf module's stand-in
        urlpatterns = i18n_patterns(path("thing/", ok))

    def resolve(path_info: str) -> Any:
        request = HttpRequest()
        request.path_info = path_info
        request.urlconf = urlconf
        return handler.resolve_request(request)

    try:
        with translation.override("en"):
            assert resolve("/en/thing/").func is ok
        with translation.override("de"), pytest.raises(Resolver404):
            resolve("/en/thing/")
        with translation.override("de"):
            assert resolve("/de/thing/").func is ok
    finally:
        from django.urls import set_urlconf

        set_urlconf(None)


def test_the_handler_answers_as_djangos_wsgi_handler_does(test_backend_factory: Any) -> None:
    """Status, headers (cookies included), body and the script prefix ``reverse`` uses are what
    Django's ``WSGIHandler.__call__`` gives, whatever the thread's previous request had."""
    from django.core.handlers.wsgi import WSGIHandler
    from django.test import RequestFactory
    from django.urls import get_script_prefix

    def here(request: HttpRequest) -> HttpResponse:
        response = JsonResponse({"prefix": get_script_prefix(), "path": request.path})
        response.set_cookie("flavour", "lemon", httponly=True)
        response["X-Thing"] = "é"
        return response

    def stream(request: HttpRequest) -> StreamingHttpResponse:
        return StreamingHttpResponse(iter([b"a", b"b"]), content_type="text/plain")

    routes = [path("here", here), path("stream", stream)]
    backend = test_backend_factory(
        features=[http_plugin("prefixed", routes, [("/", "unauthenticated")])]
    )
    handler = backend.server.get_app()

    def call(app: Any, route: str, script_name: str) -> tuple[Any, ...]:
        environ = RequestFactory().get(f"/api/prefixed/{route}", SCRIPT_NAME=script_name).environ
        started: list[Any] = []
        response = app(
            environ, lambda status, headers, exc_info=None: started.append((status, headers))
        )
        body = b"".join(response)
        if hasattr(response, "close"):
            response.close()
        return started, body

    for script_name in ["", "/backstage", "", "/other/", "/other/", ""]:
        ours = call(handler, "here", script_name)
        assert ours == call(lambda e, s: WSGIHandler.__call__(handler, e, s), "here", script_name)
        prefix = script_name.rstrip("/") + "/"
        assert json.loads(ours[1]) == {"prefix": prefix, "path": f"{prefix}api/prefixed/here"}
        headers = dict(ours[0][0][1])
        assert headers["Set-Cookie"].startswith(" flavour=lemon") and "X-Thing" in headers
    assert call(handler, "stream", "") == call(
        lambda e, s: WSGIHandler.__call__(handler, e, s), "stream", ""
    )


def test_a_plugin_request_reads_what_drfs_request_reads_from_djangos() -> None:
    """:class:`PluginRequest` gives each attribute it reads from the Django request the value
    DRF's own ``Request`` gives (through ``__getattr__``), and a value set on it still wins."""
    from django.test import RequestFactory
    from rest_framework.request import Request

    from backstage_core.http.parsers import JSONParser
    from backstage_core.http.views import PluginRequest, _FromDjangoRequest

    django_request = RequestFactory().post(
        "/api/x/things?a=1&a=2", data=b'{"n": 1}', content_type="application/json", HTTP_X_Y="z"
    )
    django_request.COOKIES["c"] = "d"
    names = [n for n, v in vars(PluginRequest).items() if isinstance(v, _FromDjangoRequest)]
    assert set(names) >= {"method", "META", "body"}
    drf, ours = Request(django_request), PluginRequest(django_request, parsers=[JSONParser()])
    for name in names:
        assert name not in dir(Request), f"DRF's Request has {name} of its own"
        theirs, mine = getattr(drf, name), getattr(ours, name)
        if callable(theirs):
            assert (mine.__self__, mine.__func__) == (theirs.__self__, theirs.__func__), name
            assert mine() == theirs(), name
        else:
            assert mine is theirs or mine == theirs, name
    assert ours.data == {"n": 1}  # the body is still there for DRF's parser
    ours.method = "PATCH"
    assert ours.method == "PATCH" and django_request.method == "POST"


def test_plugin_viewsets_get_plugin_requests() -> None:
    from django.test import RequestFactory
    from rest_framework.response import Response as DRFResponse

    from backstage_core.http.views import PluginRequest, ViewHeadersMixin

    seen: list[tuple[type, str]] = []

    class Things(ViewHeadersMixin, viewsets.ViewSet):
        def list(self, request: Any) -> Any:
            seen.append((type(request), request.method))
            return DRFResponse([])

    view = Things.as_view({"get": "list"})
    response = view(RequestFactory().get("/things"))
    assert response.status_code == 200
    assert seen == [(PluginRequest, "GET")]
