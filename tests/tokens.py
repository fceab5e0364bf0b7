"""Helpers for tests with real tokens: the real auth services, and tokens made to order.

backend = test_backend_factory(features=[*real_auth(), "backstage_core.plugins.auth", "todo"],
                               config=auth_config())
token = user_token(backend, sub="user:default/jane")              # a valid user token
token = user_token(backend, exp=time.time() - 10)                 # an expired one
"""

from __future__ import annotations

import time
from typing import Any

from backstage_core.auth.keys import SigningKey
from backstage_core.auth.tokens import LIMITED_USER_TYP, USER_TYP, b64url_encode, compact_json, sign
from backstage_core.services.auth import auth_factory
from backstage_core.services.http_auth import http_auth_factory
from backstage_core.services.local_plugins import local_plugins_ref
from backstage_core.services.user_info import user_info_factory

UNSET: Any = object()


def real_auth() -> list[Any]:
    """The real auth, httpAuth and userInfo services (test backends mock them by default)."""
    return [auth_factory(), http_auth_factory(), user_info_factory()]


def auth_config(**extra: Any) -> dict[str, Any]:
    """Config with the guest provider on (tests run outside development) and the todo closed."""
    config: dict[str, Any] = {
        "auth": {"providers": {"guest": {"dangerouslyAllowOutsideDevelopment": True}}},
        "todo": {"allowUnauthenticated": False},
    }
    for key, value in extra.items():
        config[key] = value
    return config


def token_factory(backend: Any) -> Any:
    """The auth plugin's token factory in a running test backend."""
    return backend.get_service(local_plugins_ref).get("auth", "token_factory")()


def signing_key(backend: Any) -> SigningKey:
    return token_factory(backend)._signing_key()


def issue(backend: Any, sub: str, ent: list[str] | None = None) -> str:
    """A real user token from the auth plugin, with ownership refs recorded as at sign-in."""
    return token_factory(backend).issue_token({"sub": sub, "ent": ent or [sub]})


def guest_token(backend: Any) -> str:
    response = backend.client.post("/api/auth/guest/refresh")
    assert response.status_code == 200, response.text
    return response.json()["backstageIdentity"]["token"]


def user_token(
    backend: Any,
    *,
    key: SigningKey | None = None,
    header: dict[str, Any] | None = None,
    sub: str = "user:default/jane",
    iss: Any = UNSET,
    aud: Any = "backstage",
    iat: Any = UNSET,
    exp: Any = UNSET,
    **claims: Any,
) -> str:
    """A user token signed by ``key`` (the auth plugin's by default), with claims to order."""
    key = key or signing_key(backend)
    now = int(time.time())
    payload = {
        "iss": f"{backend.url.replace('127.0.0.1', 'localhost')}/api/auth" if iss is UNSET else iss,
        "sub": sub,
        "aud": aud,
        "iat": now if iat is UNSET else iat,
        "exp": now + 3600 if exp is UNSET else exp,
        **claims,
    }
    payload = {k: v for k, v in payload.items() if v is not None}
    head = {"typ": USER_TYP, "alg": key.alg, "kid": key.kid, **(header or {})}
    return sign(head, payload, key.private_key)


def limited_token(backend: Any, *, sub: str = "user:default/jane") -> str:
    key = signing_key(backend)
    now = int(time.time())
    return sign(
        {"typ": LIMITED_USER_TYP, "alg": key.alg, "kid": key.kid},
        {"sub": sub, "iat": now, "exp": now + 3600},
        key.private_key,
    )


def unsigned(header: dict[str, Any], payload: dict[str, Any], signature: str = "") -> str:
    """A token with any header at all (``alg: none``, say), and the given signature."""
    return (
        f"{b64url_encode(compact_json(header).encode())}."
        f"{b64url_encode(compact_json(payload).encode())}.{signature}"
    )
