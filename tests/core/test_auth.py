"""Real tokens end to end: the auth plugin signs them, the barrier and the auth service check them.

Every bad token is refused with a 401 and leaves the todo table as it was.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from backstage_core.auth.keys import SigningKey
from backstage_core.auth.tokens import PLUGIN_TYP, b64url_encode, compact_json, peek, sign
from backstage_core.services.auth import BackstageCredentials, UserPrincipal
from backstage_core.services.definitions import core_services
from backstage_core.services.local_plugins import local_plugins_ref
from tests.tokens import (
    auth_config,
    guest_token,
    issue,
    limited_token,
    real_auth,
    signing_key,
    token_factory,
    unsigned,
    user_token,
)
from todo.models import Todo

AUTH_FEATURES = ["backstage_core.plugins.auth", "todo"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def backend(test_backend_factory: Any) -> Any:
    """Real auth, the auth plugin and a closed todo plugin, on in-memory SQLite."""
    return test_backend_factory(features=[*real_auth(), *AUTH_FEATURES], config=auth_config())


# -- the auth plugin ---------------------------------------------------------------------------


def test_the_guest_provider_signs_a_user_token(backend: Any) -> None:
    response = backend.client.post("/api/auth/guest/refresh?optional&env=development")
    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["profile", "backstageIdentity"]
    identity = body["backstageIdentity"]
    assert identity["identity"] == {
        "type": "user",
        "userEntityRef": "user:development/guest",
        "ownershipEntityRefs": ["user:development/guest"],
    }
    assert identity["expiresInSeconds"] == 3600
    header, payload = peek(identity["token"])
    key = signing_key(backend)
    assert header == {"typ": "vnd.backstage.user", "alg": "ES256", "kid": key.kid}
    assert list(payload) == ["iss", "sub", "aud", "iat", "exp", "uip"]  # no ent by default
    assert payload["iss"] == f"http://localhost:{backend.port}/api/auth"
    assert payload["sub"] == "user:development/guest"
    assert payload["exp"] - payload["iat"] == 3600
    assert backend.client.get("/api/auth/guest/refresh").status_code == 200


def test_outside_development_the_guest_provider_signs_nothing_unless_allowed(
    test_backend_factory: Any,
) -> None:
    backend = test_backend_factory(
        features=[*real_auth(), *AUTH_FEATURES],
        config={"auth": {"providers": {"guest": {}}}},
    )
    response = backend.client.post("/api/auth/guest/refresh")
    assert response.status_code == 403
    assert response.json()["error"] == {
        "name": "NotAllowedError",
        "message": "The guest provider cannot be used outside of a development environment "
        "unless 'auth.providers.guest.dangerouslyAllowOutsideDevelopment' is enabled",
    }
    assert token_factory(backend).key_store.list_keys() == []  # not even a key was made


def test_provider_routes_that_do_not_exist(test_backend_factory: Any) -> None:
    config = auth_config()
    config["auth"]["providers"]["github"] = {"clientId": "x"}
    backend = test_backend_factory(features=[*real_auth(), *AUTH_FEATURES], config=config)
    client = backend.client
    assert client.get("/api/auth/guest/start").status_code == 501
    assert client.post("/api/auth/guest/handler/frame").json()["error"]["message"] == (
        "Not implemented"
    )
    assert client.get("/api/auth/gitlab/start").json()["error"] == {
        "name": "NotFoundError",
        "message": "Unknown auth provider 'gitlab'",
    }
    assert client.get("/api/auth/github/refresh").json()["error"]["message"] == (
        "No auth provider registered for 'github'"
    )


def test_the_jwks_and_the_openid_configuration(backend: Any) -> None:
    token = guest_token(backend)
    keys = backend.client.get("/api/auth/.well-known/jwks.json").json()["keys"]
    assert len(keys) == 1
    assert list(keys[0]) == ["kty", "x", "y", "crv", "kid", "alg"]
    assert keys[0]["kid"] == peek(token)[0]["kid"]
    key = jwt.PyJWK(keys[0]).key
    claims = jwt.decode(token, key, algorithms=["ES256"], audience="backstage")
    assert claims["sub"] == "user:development/guest"

    config = backend.client.get("/api/auth/.well-known/openid-configuration").json()
    base = f"http://localhost:{backend.port}/api/auth"
    assert config["issuer"] == base
    assert config["jwks_uri"] == f"{base}/.well-known/jwks.json"
    assert config["userinfo_endpoint"] == f"{base}/v1/userinfo"
    assert config["claims_supported"] == ["sub", "ent"]


def test_userinfo_gives_the_claims_recorded_at_sign_in(backend: Any) -> None:
    token = issue(backend, "user:default/jane", ["user:default/jane", "group:default/team-a"])
    response = backend.client.get("/api/auth/v1/userinfo", headers=bearer(token))
    assert response.status_code == 200
    assert response.json() == {
        "claims": {"sub": "user:default/jane", "ent": ["user:default/jane", "group:default/team-a"]}
    }
    # A limited token proves who the user is, which is all userinfo needs.
    limited = limited_token(backend, sub="user:default/jane")
    assert backend.client.get("/api/auth/v1/userinfo", headers=bearer(limited)).status_code == 200
    missing = backend.client.get("/api/auth/v1/userinfo")
    assert (missing.status_code, missing.json()["error"]["message"]) == (401, "No token provided")
    stranger = user_token(backend, sub="user:default/nobody")
    unknown = backend.client.get("/api/auth/v1/userinfo", headers=bearer(stranger))
    assert (unknown.status_code, unknown.text) == (404, "User info not found")


def test_signing_keys_rotate_and_old_ones_stay_listed(backend: Any) -> None:
    factory = token_factory(backend)
    first = peek(guest_token(backend))[0]["kid"]
    factory._key_made_at -= factory.key_duration.total_seconds()  # the key is an hour old
    second_token = guest_token(backend)
    second = peek(second_token)[0]["kid"]
    assert first != second
    kids = [k["kid"] for k in backend.client.get("/api/auth/.well-known/jwks.json").json()["keys"]]
    assert kids == [first, second]
    assert (
        backend.client.post(
            "/api/todo/todos", json={"title": "x"}, headers=bearer(second_token)
        ).status_code
        == 201
    )


# -- user tokens at the barrier ----------------------------------------------------------------


def test_a_guest_token_opens_the_closed_todo_plugin(backend: Any) -> None:
    assert backend.client.get("/api/todo/todos").status_code == 401
    token = guest_token(backend)
    created = backend.client.post("/api/todo/todos", json={"title": "mine"}, headers=bearer(token))
    assert created.status_code == 201
    assert created.json()["createdBy"] == "user:development/guest"
    listed = backend.client.get("/api/todo/todos", headers=bearer(token))
    assert [t["title"] for t in listed.json()] == ["mine"]


def test_the_auth_service_turns_a_user_token_into_user_credentials(backend: Any) -> None:
    token = issue(backend, "user:default/jane")
    auth = backend.get_service(core_services.auth, "todo")
    credentials = auth.authenticate(token)
    assert credentials.principal == UserPrincipal("user:default/jane")
    assert credentials.token == token
    assert credentials.expires_at is not None
    assert abs(credentials.expires_at.timestamp() - (time.time() + 3600)) < 5
    assert str(credentials) == "backstageCredentials{userPrincipal{user:default/jane}}"
    assert "token" not in repr(credentials).replace("BackstageCredentials", "")


def _other_key() -> SigningKey:
    return SigningKey.generate()


def _public_pem(backend: Any) -> bytes:
    return (
        signing_key(backend)
        .private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def _hs256_with_public_key(backend: Any) -> str:
    key = signing_key(backend)
    header = {"typ": "vnd.backstage.user", "alg": "HS256", "kid": key.kid}
    now = int(time.time())
    payload = {
        "iss": f"http://localhost:{backend.port}/api/auth",
        "sub": "user:default/jane",
        "aud": "backstage",
        "iat": now,
        "exp": now + 3600,
    }
    signing_input = f"{b64url_encode(compact_json(header).encode())}.{b64url_encode(compact_json(payload).encode())}"
    mac = hmac.new(_public_pem(backend), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url_encode(mac)}"


def _alg_none(backend: Any) -> str:
    key = signing_key(backend)
    now = int(time.time())
    return unsigned(
        {"typ": "vnd.backstage.user", "alg": "none", "kid": key.kid},
        {"sub": "user:default/jane", "aud": "backstage", "iat": now, "exp": now + 3600},
    )


def _tampered(backend: Any) -> str:
    header, payload, signature = user_token(backend, sub="user:default/jane").split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "user:default/admin"
    return f"{header}.{b64url_encode(compact_json(claims).encode())}.{signature}"


def _plugin_token_for_another_audience(backend: Any) -> str:
    auth = backend.get_service(core_services.auth, "auth")
    return auth.get_plugin_request_token(
        on_behalf_of=auth.get_own_service_credentials(), target_plugin_id="catalog"
    ).token


def _huge(backend: Any) -> str:
    """A validly signed user token of exactly 64,000 bytes (a header line servers still take)."""
    padding = 47_000
    token = user_token(backend, padding="x" * padding)
    while len(token) != 64_000:
        padding += 64_000 - len(token) if abs(64_000 - len(token)) > 2 else 1
        token = user_token(backend, padding="x" * padding)
    return token


REJECTED = {
    "alg none": (_alg_none, "Failed user token verification"),
    "HS256 with the ES256 public key": (_hs256_with_public_key, "Failed user token verification"),
    "expired": (
        lambda b: user_token(b, exp=int(time.time()) - 1),
        "Failed user token verification",
    ),
    "not yet valid (nbf)": (
        lambda b: user_token(b, nbf=int(time.time()) + 600),
        "Failed user token verification",
    ),
    "not yet valid (iat)": (
        lambda b: user_token(b, iat=int(time.time()) + 600),
        "Failed user token verification",
    ),
    "wrong issuer": (
        lambda b: user_token(b, iss="https://evil.example.com/api/auth"),
        "Failed user token verification",
    ),
    "no issuer": (lambda b: user_token(b, iss=None), "Failed user token verification"),
    "wrong typ": (lambda b: user_token(b, header={"typ": "JWT"}, aud="other"), "Illegal token"),
    "limited user token as a bearer": (
        lambda b: limited_token(b),
        "Illegal limited user token",
    ),
    "a plugin token for another audience": (
        _plugin_token_for_another_audience,
        "Failed plugin token verification",
    ),
    "tampered payload": (_tampered, "Failed user token verification"),
    "unknown kid": (lambda b: user_token(b, key=_other_key()), "Failed user token verification"),
    "64 kB": (_huge, "Illegal token, it is too large"),
    "garbage": (lambda b: "not.a.token", "Illegal token"),
}


@pytest.mark.parametrize("case", list(REJECTED))
def test_bad_tokens_are_refused_with_401_and_change_nothing(
    test_backend_factory: Any, database_config: dict[str, Any], case: str
) -> None:
    backend = test_backend_factory(
        features=[*real_auth(), *AUTH_FEATURES],
        config=auth_config(backend={"database": database_config}),
    )
    good = bearer(issue(backend, "user:default/jane"))
    existing = backend.client.post("/api/todo/todos", json={"title": "keep"}, headers=good).json()
    make, message = REJECTED[case]
    headers = bearer(make(backend))

    attempts = [
        backend.client.post("/api/todo/todos", json={"title": "sneaky"}, headers=headers),
        backend.client.patch(
            f"/api/todo/todos/{existing['id']}", json={"completed": True}, headers=headers
        ),
        backend.client.delete(f"/api/todo/todos/{existing['id']}", headers=headers),
        backend.client.get("/api/todo/todos", headers=headers),
    ]
    for response in attempts:
        assert response.status_code == 401, (case, response.text)
        assert response.json()["error"] == {"name": "AuthenticationError", "message": message}
    assert list(Todo.objects.values_list("title", "completed")) == [("keep", False)]


def test_no_token_on_a_protected_route_is_a_401_and_changes_nothing(backend: Any) -> None:
    response = backend.client.post("/api/todo/todos", json={"title": "sneaky"})
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "Missing credentials"
    assert not Todo.objects.exists()


def test_unknown_kids_fetch_the_jwks_again_but_only_so_often(backend: Any) -> None:
    token = issue(backend, "user:default/jane")
    auth = backend.get_service(core_services.auth, "todo")
    auth.authenticate(token)
    jwks = auth.user_tokens._jwks
    fetched = jwks.fetches

    # A new key (another process of the auth plugin, say) is published after the keys were read:
    # its first token fetches the keys again and is accepted.
    rotated = SigningKey.generate()
    token_factory(backend).key_store.add_key(rotated.public_jwk)
    assert auth.authenticate(user_token(backend, key=rotated)).principal.type == "user"
    assert jwks.fetches == fetched + 1

    # Made-up kids: a few more fetches (at most 10 a minute within the cooldown), then none.
    for _ in range(30):
        with pytest.raises(Exception, match="Failed user token verification"):
            auth.authenticate(user_token(backend, key=_other_key()))
    assert jwks.fetches <= fetched + 1 + 10


def test_the_barrier_holds_on_every_spelling_of_a_path(backend: Any) -> None:
    """Without credentials nothing reaches the closed todo routes, however the path is written."""
    spellings = [
        "/api/todo/todos",
        "/api/todo/todos/",
        "/api/todo/TODOS",
        "/API/TODO/todos",
        "/api/TODO/todos",
        "/api/todo/%74odos",
        "/api/%74odo/todos",
        "/api/todo%2Ftodos",
        "/api/todo/./todos",
        "/api/todo/todos/.",
        "/api/todo/x/../todos",
        "/api/auth/../todo/todos",
        "/api/todo/.backstage/auth/v1/jwks.json/../../../../todos",
        "//api/todo/todos",
        "/api//todo/todos",
        "/api/todo//todos",
        "/api/todo/todos;x=1",
    ]
    for spelling in spellings:
        connection = http.client.HTTPConnection("127.0.0.1", backend.port, timeout=10)
        body = json.dumps({"title": f"via {spelling}"})
        connection.request("POST", spelling, body, {"content-type": "application/json"})
        response = connection.getresponse()
        response.read()
        connection.close()
        # 401 where the path is the todo plugin's; elsewhere Django's 404 (or its CSRF 403).
        assert response.status in (401, 403, 404), (spelling, response.status)
    assert not Todo.objects.exists()


# -- limited user tokens and the cookie --------------------------------------------------------


def test_the_cookie_endpoint_sets_a_limited_user_token(backend: Any) -> None:
    token = guest_token(backend)
    response = backend.client.get("/api/todo/.backstage/auth/v1/cookie", headers=bearer(token))
    assert response.status_code == 200
    expires_at = response.json()["expiresAt"]
    assert expires_at.endswith(".000Z")
    set_cookie = response.headers["set-cookie"]
    cookie = set_cookie.split(";")[0].removeprefix("backstage-auth=")
    header, payload = peek(cookie)
    assert header["typ"] == "vnd.backstage.limited-user"
    assert list(payload) == ["sub", "iat", "exp"]
    assert payload["exp"] == peek(token)[1]["exp"]
    assert "HttpOnly" in set_cookie and "Domain=localhost" in set_cookie and "Path=/" in set_cookie
    # The limited token verifies with the auth plugin's keys (its signature is the token's uip).
    auth = backend.get_service(core_services.auth, "todo")
    credentials = auth.authenticate(cookie, allow_limited_access=True)
    assert credentials.principal == UserPrincipal("user:development/guest")

    cleared = backend.client.delete("/api/todo/.backstage/auth/v1/cookie", headers=bearer(token))
    assert cleared.status_code == 204
    assert 'backstage-auth=""' in cleared.headers["set-cookie"]
    assert backend.client.get("/api/todo/.backstage/auth/v1/cookie").status_code == 401


def test_a_service_can_not_have_a_cookie(backend: Any) -> None:
    auth = backend.get_service(core_services.auth, "auth")
    token = auth.get_plugin_request_token(
        on_behalf_of=auth.get_own_service_credentials(), target_plugin_id="todo"
    ).token
    response = backend.client.get("/api/todo/.backstage/auth/v1/cookie", headers=bearer(token))
    assert response.status_code == 403
    assert (
        response.json()["error"]["message"] == "This endpoint does not allow 'service' credentials"
    )


# -- plugin-to-plugin tokens -------------------------------------------------------------------


def test_plugins_call_each_other_with_plugin_tokens(backend: Any) -> None:
    auth = backend.get_service(core_services.auth, "auth")
    token = auth.get_plugin_request_token(
        on_behalf_of=auth.get_own_service_credentials(), target_plugin_id="todo"
    ).token
    header, payload = peek(token)
    assert header["typ"] == PLUGIN_TYP
    assert list(payload) == ["sub", "aud", "iat", "exp"]
    assert (payload["sub"], payload["aud"], payload["exp"] - payload["iat"]) == (
        "auth",
        "todo",
        3600,
    )

    created = backend.client.post(
        "/api/todo/todos", json={"title": "by a plugin"}, headers=bearer(token)
    )
    assert created.status_code == 201
    assert "createdBy" not in created.json()  # a service, not a user
    todo_auth = backend.get_service(core_services.auth, "todo")
    credentials = todo_auth.authenticate(token)
    assert str(credentials.principal) == "servicePrincipal{plugin:auth}"

    # The caller's public key is served at its jwks.json and kept in its own database.
    keys = backend.client.get("/api/auth/.backstage/auth/v1/jwks.json").json()["keys"]
    assert [k["kid"] for k in keys] == [header["kid"]]
    from backstage_core.models import PluginPublicKey

    assert list(PluginPublicKey.objects.using("auth").values_list("id", flat=True)) == [
        header["kid"]
    ]


def test_a_plugin_token_on_behalf_of_a_user_stands_for_that_user(backend: Any) -> None:
    user = issue(backend, "user:default/jane")
    auth = backend.get_service(core_services.auth, "auth")
    credentials = auth.authenticate(user)
    token = auth.get_plugin_request_token(on_behalf_of=credentials, target_plugin_id="todo").token
    _, payload = peek(token)
    assert payload["exp"] <= peek(user)[1]["exp"]
    assert peek(payload["obo"])[0]["typ"] == "vnd.backstage.limited-user"

    seen = backend.get_service(core_services.auth, "todo").authenticate(token)
    assert (
        str(seen.principal)
        == "userPrincipal{user:default/jane,actor={servicePrincipal{plugin:auth}}}"
    )
    created = backend.client.post(
        "/api/todo/todos", json={"title": "for jane"}, headers=bearer(token)
    )
    assert created.json()["createdBy"] == "user:default/jane"


def test_a_plugin_token_from_a_plugin_nobody_hosts_is_refused(backend: Any) -> None:
    key = SigningKey.generate()
    now = int(time.time())
    token = sign(
        {"typ": PLUGIN_TYP, "alg": "ES256", "kid": key.kid},
        {"sub": "ghost", "aud": "todo", "iat": now, "exp": now + 60},
        key.private_key,
    )
    response = backend.client.get("/api/todo/todos", headers=bearer(token))
    assert response.status_code == 401
    assert response.json()["error"]["message"] == (
        "Received a plugin token where the source 'ghost' plugin unexpectedly does not have a "
        "JWKS endpoint. The target plugin needs to be migrated to be installed in an app using "
        "the new backend system."
    )
    for subject in ("../x", "todo\n", "\u212a"):  # the newline and the Kelvin sign: as JavaScript
        bad_subject = unsigned({"typ": PLUGIN_TYP, "alg": "ES256"}, {"sub": subject, "aud": "todo"})
        response = backend.client.get("/api/todo/todos", headers=bearer(bad_subject))
        assert response.status_code == 401
        assert response.json()["error"]["message"] == (
            "Invalid plugin token: forbidden subject format"
        )


def test_plugin_tokens_verify_across_backends_through_discovery(test_backend_factory: Any) -> None:
    """A plugin in one backend calls the todo plugin in another; each finds the other's keys and
    the auth plugin through discovery.endpoints."""
    from tests.helpers import free_port

    todo_port, caller_port = free_port(), free_port()
    endpoints = [
        {"target": f"http://127.0.0.1:{todo_port}/api/{{{{pluginId}}}}", "plugins": ["todo"]},
        {"target": f"http://127.0.0.1:{caller_port}/api/{{{{pluginId}}}}", "plugins": ["auth"]},
    ]
    caller = test_backend_factory(
        features=[*real_auth(), "backstage_core.plugins.auth"],
        config=auth_config(discovery={"endpoints": endpoints}),
        port=caller_port,
    )
    todo_backend = test_backend_factory(
        features=[*real_auth(), "todo"],
        config=auth_config(discovery={"endpoints": endpoints}),
        port=todo_port,
    )
    auth = caller.get_service(core_services.auth, "auth")
    service_token = auth.get_plugin_request_token(
        on_behalf_of=auth.get_own_service_credentials(), target_plugin_id="todo"
    ).token
    assert (
        todo_backend.client.post(
            "/api/todo/todos", json={"title": "remote"}, headers=bearer(service_token)
        ).status_code
        == 201
    )

    user = issue(caller, "user:default/jane")
    assert todo_backend.client.get("/api/todo/todos", headers=bearer(user)).status_code == 200
    obo = auth.get_plugin_request_token(
        on_behalf_of=auth.authenticate(user), target_plugin_id="todo"
    ).token
    created = todo_backend.client.post(
        "/api/todo/todos", json={"title": "remote for jane"}, headers=bearer(obo)
    )
    assert created.json()["createdBy"] == "user:default/jane"


# -- external access ---------------------------------------------------------------------------


def _external(test_backend_factory: Any, entries: list[dict[str, Any]], **extra: Any) -> Any:
    return test_backend_factory(
        features=[*real_auth(), *AUTH_FEATURES],
        config=auth_config(backend={"auth": {"externalAccess": entries, **extra}}),
    )


def test_static_tokens(test_backend_factory: Any) -> None:
    backend = _external(
        test_backend_factory,
        [{"type": "static", "options": {"token": "static-secret-123", "subject": "ci-bot"}}],
    )
    response = backend.client.post(
        "/api/todo/todos", json={"title": "from ci"}, headers=bearer("static-secret-123")
    )
    assert response.status_code == 201
    auth = backend.get_service(core_services.auth, "todo")
    assert str(auth.authenticate("static-secret-123").principal) == "servicePrincipal{ci-bot}"
    assert (
        backend.client.get("/api/todo/todos", headers=bearer("static-secret-12")).status_code == 401
    )


def test_static_token_config_is_checked(test_backend_factory: Any) -> None:
    from backstage_core import BackendStartupError

    with pytest.raises(
        BackendStartupError, match="Illegal token, must be at least 8 characters length"
    ):
        _external(
            test_backend_factory,
            [{"type": "static", "options": {"token": "short", "subject": "x"}}],
        )
    with pytest.raises(
        BackendStartupError,
        match="Unknown type 'magic' in backend.auth.externalAccess, expected one of 'static', 'legacy', 'jwks'",
    ):
        _external(test_backend_factory, [{"type": "magic", "options": {}}])


def _legacy_token(secret: bytes, **claims: Any) -> str:
    payload = {"sub": "backstage-server", "exp": int(time.time()) + 3600, **claims}
    return jwt.encode(payload, secret, algorithm="HS256")


def test_legacy_tokens(test_backend_factory: Any) -> None:
    secret = b"a-legacy-shared-secret-of-32-byte"
    backend = _external(
        test_backend_factory,
        [
            {
                "type": "legacy",
                "options": {"secret": base64.b64encode(secret).decode(), "subject": "old-plugins"},
            }
        ],
    )
    auth = backend.get_service(core_services.auth, "todo")
    assert (
        str(auth.authenticate(_legacy_token(secret)).principal) == "servicePrincipal{old-plugins}"
    )
    assert (
        backend.client.get("/api/todo/todos", headers=bearer(_legacy_token(secret))).status_code
        == 200
    )
    for bad in (
        _legacy_token(b"another-secret-entirely-123456789"),
        _legacy_token(secret, aud="backstage-x"),
        _legacy_token(secret, sub="someone-else"),
        _legacy_token(secret, exp=int(time.time()) - 10),
    ):
        response = backend.client.get("/api/todo/todos", headers=bearer(bad))
        assert response.status_code == 401, response.text


def test_the_old_backend_auth_keys_still_work(test_backend_factory: Any) -> None:
    secret = b"an-old-style-backend-secret-value"
    backend = test_backend_factory(
        features=[*real_auth(), *AUTH_FEATURES],
        config=auth_config(
            backend={"auth": {"keys": [{"secret": base64.b64encode(secret).decode()}]}}
        ),
    )
    auth = backend.get_service(core_services.auth, "todo")
    principal = auth.authenticate(_legacy_token(secret)).principal
    assert str(principal) == "servicePrincipal{external:backstage-plugin}"


def test_jwks_tokens_from_an_identity_provider(test_backend_factory: Any) -> None:
    """The auth plugin of another backend plays the identity provider: its JWKS, its issuer."""
    idp = test_backend_factory(
        features=[*real_auth(), "backstage_core.plugins.auth"], config=auth_config()
    )
    issuer = f"http://localhost:{idp.port}/api/auth"
    backend = _external(
        test_backend_factory,
        [
            {
                "type": "jwks",
                "options": {
                    "url": f"{idp.url}/api/auth/.well-known/jwks.json",
                    "issuer": issuer,
                    "audience": "backstage",
                    "algorithm": "ES256",
                    "subjectPrefix": "idp",
                },
            }
        ],
    )
    auth = backend.get_service(core_services.auth, "todo")
    token = user_token(idp, sub="robot", iss=issuer, header={"typ": "JWT"})
    assert str(auth.authenticate(token).principal) == "servicePrincipal{external:idp:robot}"
    for bad in (
        user_token(idp, sub="robot", iss="https://elsewhere", header={"typ": "JWT"}),
        user_token(idp, sub="robot", iss=issuer, aud="other", header={"typ": "JWT"}),
        user_token(idp, sub="robot", iss=issuer, exp=int(time.time()) - 5, header={"typ": "JWT"}),
        user_token(idp, key=SigningKey.generate(), sub="robot", iss=issuer, header={"typ": "JWT"}),
    ):
        response = backend.client.get("/api/todo/todos", headers=bearer(bad))
        assert (response.status_code, response.json()["error"]["message"]) == (401, "Illegal token")


def test_access_restrictions_limit_plugins_and_permissions(test_backend_factory: Any) -> None:
    from backstage_core.permissions import AuthorizeResult
    from todo.permissions import todo_item_create_permission, todo_item_read_permission

    backend = _external(
        test_backend_factory,
        [
            {
                "type": "static",
                "options": {"token": "reader-token-1", "subject": "reader"},
                "accessRestrictions": [
                    {"plugin": "todo", "permissionAttribute": {"action": "read"}},
                ],
            },
            {
                "type": "static",
                "options": {"token": "catalog-only-1", "subject": "cataloger"},
                "accessRestrictions": [{"plugin": "catalog"}, {"plugin": "scaffolder"}],
            },
        ],
    )
    denied = backend.client.get("/api/todo/todos", headers=bearer("catalog-only-1"))
    assert denied.status_code == 403
    assert denied.json()["error"]["message"] == (
        "This token's access is restricted to plugin(s) 'catalog', 'scaffolder'"
    )
    assert (
        backend.client.get("/api/todo/todos", headers=bearer("reader-token-1")).status_code == 200
    )
    created = backend.client.post(
        "/api/todo/todos", json={"title": "x"}, headers=bearer("reader-token-1")
    )
    assert created.status_code == 403
    assert not Todo.objects.exists()

    auth = backend.get_service(core_services.auth, "todo")
    permissions = backend.get_service(core_services.permissions, "todo")
    reader = auth.authenticate("reader-token-1")
    decisions = permissions.authorize(
        [
            {"permission": todo_item_read_permission, "resource_ref": "x"},
            {"permission": todo_item_create_permission},
        ],
        credentials=reader,
    )
    assert [d.result for d in decisions] == [AuthorizeResult.ALLOW, AuthorizeResult.DENY]
    with pytest.raises(Exception, match="Access to target plugin 'catalog' is not included"):
        auth.get_plugin_request_token(on_behalf_of=reader, target_plugin_id="catalog")
    with pytest.raises(
        Exception, match="Access to target plugin 'todo' is restricted and cannot be delegated"
    ):
        auth.get_plugin_request_token(on_behalf_of=reader, target_plugin_id="todo")


def test_access_restriction_config_is_checked(test_backend_factory: Any) -> None:
    from backstage_core import BackendStartupError

    entry = {"type": "static", "options": {"token": "a-long-token", "subject": "s"}}
    cases = {
        "Invalid key 'plugins' in 'accessRestrictions' config, expected one of 'plugin', 'permission', 'permissionAttribute'": [
            {"plugins": "todo"}
        ],
        "Attempted to declare 'accessRestrictions' twice for plugin 'todo', which is not permitted": [
            {"plugin": "todo"},
            {"plugin": "todo"},
        ],
        "Invalid value 'destroy' at 'action' in 'permissionAttributes' config, valid values are 'create', 'read', 'update', 'delete'": [
            {"plugin": "todo", "permissionAttribute": {"action": "read destroy"}}
        ],
    }
    for message, restrictions in cases.items():
        with pytest.raises(BackendStartupError) as raised:
            _external(test_backend_factory, [{**entry, "accessRestrictions": restrictions}])
        assert message in str(raised.value)


# -- the identity service (the seed's) and userInfo --------------------------------------------


def _request_with(token: str | None) -> Any:
    from django.test import RequestFactory

    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    return RequestFactory().get("/", **headers)


def test_get_identity_returns_the_user_and_their_ownership(backend: Any) -> None:
    identity = backend.get_service(core_services.identity, "todo")
    token = issue(backend, "user:default/jane", ["user:default/jane", "group:default/team-a"])
    result = identity.get_identity(_request_with(token))
    assert result.token == token
    assert result.identity.user_entity_ref == "user:default/jane"
    assert result.identity.ownership_entity_refs == ["user:default/jane", "group:default/team-a"]
    assert identity.get_identity({"request": _request_with(token)}).identity == result.identity
    assert identity.get_identity(_request_with(None)) is None
    with pytest.raises(Exception, match="Failed user token verification"):
        identity.get_identity(_request_with(user_token(backend, exp=int(time.time()) - 1)))
    with pytest.raises(Exception, match="Failed user token verification"):
        identity.get_identity(_request_with(limited_token(backend)))  # no aud: not a full token


def test_identity_factory_restricts_issuer_and_algorithms(test_backend_factory: Any) -> None:
    from backstage_core.services.identity import identity_factory

    backend = test_backend_factory(
        features=[
            *real_auth(),
            *AUTH_FEATURES,
            identity_factory(issuer="backstage", algorithms=["ES256", "RS256"]),
        ],
        config=auth_config(),
    )
    identity = backend.get_service(core_services.identity, "todo")
    with pytest.raises(Exception, match="Invalid issuer"):
        identity.get_identity(_request_with(issue(backend, "user:default/jane")))
    with_ent = user_token(backend, iss="backstage", ent=["user:default/jane"])
    assert identity.get_identity(_request_with(with_ent)).identity.ownership_entity_refs == [
        "user:default/jane"
    ]
    rsa = SigningKey.generate("PS256")
    with pytest.raises(Exception, match="Unexpected token algorithm 'PS256'"):
        identity.get_identity(_request_with(user_token(backend, key=rsa, iss="backstage")))


def test_user_info_comes_from_the_token_or_the_auth_plugin(backend: Any) -> None:
    user_info = backend.get_service(core_services.user_info, "todo")
    token = issue(backend, "user:default/jane", ["user:default/jane", "group:default/a"])
    info = user_info.get_user_info(
        BackstageCredentials(UserPrincipal("user:default/jane"), token=token)
    )
    assert info.to_json() == {
        "userEntityRef": "user:default/jane",
        "ownershipEntityRefs": ["user:default/jane", "group:default/a"],
    }
    with_ent = user_token(backend, sub="user:default/joe", ent=["group:default/b"])
    info = user_info.get_user_info(
        BackstageCredentials(UserPrincipal("user:default/joe"), token=with_ent)
    )
    assert info.ownership_entity_refs == ["group:default/b"]
    with pytest.raises(TypeError, match="Only user credentials are supported"):
        user_info.get_user_info(
            backend.get_service(core_services.auth, "todo").get_own_service_credentials()
        )


def test_the_local_plugins_directory_knows_the_auth_plugin(backend: Any) -> None:
    local = backend.get_service(local_plugins_ref)
    assert local.get("auth", "user_keys") is not None
    assert local.get("nobody", "plugin_keys") is None


def test_plugin_keys_rotate_and_stay_listed_while_their_tokens_live(backend: Any) -> None:
    auth = backend.get_service(core_services.auth, "auth")
    own = auth.get_own_service_credentials()
    first = auth.get_plugin_request_token(on_behalf_of=own, target_plugin_id="todo").token
    source = auth.plugin_tokens.key_source
    source._expires_at = source._expires_at.replace(year=2000)  # the key's hour is over
    second = auth.get_plugin_request_token(on_behalf_of=own, target_plugin_id="todo").token
    kids = [peek(first)[0]["kid"], peek(second)[0]["kid"]]
    assert kids[0] != kids[1]
    listed = backend.client.get("/api/auth/.backstage/auth/v1/jwks.json").json()["keys"]
    assert [k["kid"] for k in listed] == kids
    for token in (first, second):
        assert backend.client.get("/api/todo/todos", headers=bearer(token)).status_code == 200

    from backstage_core.models import PluginPublicKey

    PluginPublicKey.objects.using("auth").filter(id=kids[0]).update(
        expires_at="2000-01-01T00:00:00.000Z"
    )
    listed = backend.client.get("/api/auth/.backstage/auth/v1/jwks.json").json()["keys"]
    assert [k["kid"] for k in listed] == kids[1:]
    assert list(PluginPublicKey.objects.using("auth").values_list("id", flat=True)) == kids[1:]


def test_user_cookie_routes_take_the_backstage_auth_cookie(test_backend_factory: Any) -> None:
    from django.urls import path

    from backstage_core import create_backend_plugin
    from backstage_core.http.errors import json_response

    def register(env: Any) -> None:
        def init(http_router: Any, http_auth: Any) -> None:
            def who(request: Any) -> Any:
                credentials = http_auth.credentials(request, allow_limited_access=True)
                return json_response({"user": credentials.principal.user_entity_ref})

            http_router.use([path("static/app.js", who), path("api", who)])
            http_router.add_auth_policy(path="/static", allow="user-cookie")

        env.register_init(
            deps={"http_router": core_services.http_router, "http_auth": core_services.http_auth},
            init=init,
        )

    plugin = create_backend_plugin(plugin_id="files", register=register, django_app=None)
    backend = test_backend_factory(
        features=[*real_auth(), *AUTH_FEATURES, plugin], config=auth_config()
    )
    token = issue(backend, "user:default/jane")
    issued = backend.client.get("/api/files/.backstage/auth/v1/cookie", headers=bearer(token))
    cookie = issued.headers["set-cookie"].split(";")[0]
    with_cookie = {"Cookie": cookie}

    response = backend.client.get("/api/files/static/app.js", headers=with_cookie)
    assert (response.status_code, response.json()) == (200, {"user": "user:default/jane"})
    assert backend.client.get("/api/files/api", headers=with_cookie).status_code == 401
    assert backend.client.get("/api/files/static/app.js").status_code == 401
    forged = {"Cookie": f"backstage-auth={user_token(backend, key=_other_key())}"}
    assert backend.client.get("/api/files/static/app.js", headers=forged).status_code == 401


def _pem_pair(directory: Any, name: str) -> dict[str, str]:
    key = SigningKey.generate()
    private = directory / f"{name}.key"
    public = directory / f"{name}.pub"
    private.write_bytes(
        key.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public.write_bytes(
        key.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return {"publicKeyFile": str(public), "privateKeyFile": str(private), "keyId": name}


def test_static_key_pairs_sign_plugin_and_user_tokens(
    test_backend_factory: Any, tmp_path: Any
) -> None:
    first, second = _pem_pair(tmp_path, "first"), _pem_pair(tmp_path, "second")
    second.pop("privateKeyFile")
    static = {"static": {"keys": [first, second]}}
    config = auth_config(backend={"auth": {"pluginKeyStore": {"type": "static", **static}}})
    config["auth"]["keyStore"] = {"provider": "static", **static}
    backend = test_backend_factory(features=[*real_auth(), *AUTH_FEATURES], config=config)

    token = guest_token(backend)
    assert peek(token)[0]["kid"] == "first"
    jwks = backend.client.get("/api/auth/.well-known/jwks.json").json()["keys"]
    assert [k["kid"] for k in jwks] == ["first", "second"]
    auth = backend.get_service(core_services.auth, "auth")
    plugin_token = auth.get_plugin_request_token(
        on_behalf_of=auth.get_own_service_credentials(), target_plugin_id="todo"
    ).token
    assert peek(plugin_token)[0]["kid"] == "first"
    for bearer_token in (token, plugin_token):
        assert (
            backend.client.get("/api/todo/todos", headers=bearer(bearer_token)).status_code == 200
        )


def test_static_key_stores_need_a_signing_key(test_backend_factory: Any, tmp_path: Any) -> None:
    from backstage_core import BackendStartupError

    public_only = _pem_pair(tmp_path, "k")
    public_only.pop("privateKeyFile")
    config = auth_config(
        backend={"auth": {"pluginKeyStore": {"type": "static", "static": {"keys": [public_only]}}}}
    )
    with pytest.raises(BackendStartupError, match="Private key for signing must be provided"):
        test_backend_factory(features=[*real_auth(), *AUTH_FEATURES], config=config)
    config = auth_config(backend={"auth": {"pluginKeyStore": {"type": "vault"}}})
    with pytest.raises(
        BackendStartupError,
        match="Unsupported config value backend.auth.pluginKeyStore.type 'vault'",
    ):
        test_backend_factory(features=[*real_auth(), *AUTH_FEATURES], config=config)
