"""The auth backend plugin (id ``auth``): user tokens, their keys, userinfo and the guest provider.

Routes, all under ``/api/auth`` and open to everyone, as Backstage's:

- ``GET /.well-known/jwks.json``: the public keys of user tokens;
- ``GET /.well-known/openid-configuration``;
- ``GET /v1/userinfo``: the claims the caller's user signed in with (bearer user token);
- ``GET|POST /guest/refresh``: a guest user token (``auth.providers.guest``).

Config::

    auth:
      backstageTokenExpiration: {hours: 1}     # 10 minutes to 24 hours
      keyStore: {provider: database}           # database | memory | static
      identityTokenAlgorithm: ES256
      omitIdentityTokenOwnershipClaim: true    # ownership refs via /v1/userinfo, not in the token
      providers:
        guest:
          userEntityRef: user:development/guest
          ownershipEntityRefs: [user:development/guest]
          dangerouslyAllowOutsideDevelopment: false
"""

from __future__ import annotations

from typing import Any

from backstage_core import core_services, create_backend_plugin
from backstage_core.services.local_plugins import local_plugins_ref

__all__ = ["auth_plugin", "build_token_factory"]

GUEST_REF = "user:development/guest"
SIGNING_ALGORITHMS = [
    "RS256",
    "RS384",
    "RS512",
    "ES256",
    "ES384",
    "ES512",
    "PS256",
    "PS384",
    "PS512",
    "EdDSA",
]
MISCONFIGURED = (
    "Auth provider registered for '{id}' is misconfigured. This could mean the configs under "
    "auth.providers.{id} are missing or the environment variables used are not defined. Check the "
    "auth backend plugin logs when the backend starts to see more details."
)


def build_token_factory(config: Any, database: Any, discovery: Any, logger: Any) -> Any:
    """The auth plugin's token factory, from config (also used by ``manage.py issue_token``)."""
    from backstage_core.plugins.auth.tokens import (
        TokenFactory,
        UserInfoStore,
        create_key_store,
        read_token_expiration,
    )

    omit = config.get_optional_boolean("auth.omitIdentityTokenOwnershipClaim")
    return TokenFactory(
        issuer=lambda: discovery.get_external_base_url("auth"),
        key_store=create_key_store(config, database, logger),
        logger=logger,
        key_duration=read_token_expiration(config),
        algorithm=config.get_optional_string("auth.identityTokenAlgorithm") or "ES256",
        omit_claims=("ent",) if omit is None or omit else (),
        user_info_store=UserInfoStore(database.alias),
    )


class GuestProvider:
    """Signs in everyone as one guest user, in development only unless told otherwise."""

    def __init__(self, config: Any, token_factory: Any) -> None:
        from backstage_core.environment import is_development

        self.user_entity_ref = config.get_optional_string("userEntityRef") or GUEST_REF
        self.ownership_entity_refs = config.get_optional_string_array("ownershipEntityRefs") or [
            self.user_entity_ref
        ]
        allowed = bool(config.get_optional_boolean("dangerouslyAllowOutsideDevelopment"))
        self.disabled = not is_development() and not allowed
        self.token_factory = token_factory

    def refresh(self, request: Any) -> dict[str, Any]:
        from backstage_core.errors import NotAllowedError

        if self.disabled:
            raise NotAllowedError(
                "The guest provider cannot be used outside of a development environment unless "
                "'auth.providers.guest.dangerouslyAllowOutsideDevelopment' is enabled"
            )
        token = self.token_factory.issue_token(
            {"sub": self.user_entity_ref, "ent": self.ownership_entity_refs}
        )
        return {
            "profile": {},
            "backstageIdentity": {
                "token": token,
                "identity": {
                    "type": "user",
                    "userEntityRef": self.user_entity_ref,
                    "ownershipEntityRefs": list(self.ownership_entity_refs),
                },
                "expiresInSeconds": round(self.token_factory.key_duration.total_seconds()),
            },
        }


def _urls(
    token_factory: Any, providers: dict[str, Any], configured: set[str], auth: Any, discovery: Any
) -> list[Any]:
    from django.http import HttpResponse
    from django.urls import path, re_path

    from backstage_core.errors import (
        AuthenticationError,
        InputError,
        NotFoundError,
        NotImplementedError,  # noqa: A004 - Backstage's error
    )
    from backstage_core.http.errors import json_response
    from backstage_core.http.urls import not_found
    from backstage_core.services.http_auth import bearer_token

    def get_only(view: Any) -> Any:
        def wrapper(request: Any, *args: Any) -> Any:
            return view(request, *args) if request.method == "GET" else not_found(request)

        return wrapper

    def jwks(request: Any) -> Any:
        return json_response(token_factory.list_public_keys())

    def openid_configuration(request: Any) -> Any:
        base = discovery.get_external_base_url("auth")
        return json_response(
            {
                "issuer": base,
                "token_endpoint": f"{base}/v1/token",
                "userinfo_endpoint": f"{base}/v1/userinfo",
                "jwks_uri": f"{base}/.well-known/jwks.json",
                "response_types_supported": ["code", "id_token"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": SIGNING_ALGORITHMS,
                "scopes_supported": ["openid"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_basic",
                    "client_secret_post",
                ],
                "claims_supported": ["sub", "ent"],
                "grant_types_supported": ["authorization_code"],
                "authorization_endpoint": f"{base}/v1/authorize",
                "code_challenge_methods_supported": ["S256", "plain"],
            }
        )

    def userinfo(request: Any) -> Any:
        token = bearer_token(request)
        if not token:
            raise AuthenticationError("No token provided")
        claims = user_claims(token)
        if claims is None:
            return HttpResponse(
                "User info not found", status=404, content_type="text/plain; charset=utf-8"
            )
        return json_response(claims)

    def user_claims(token: str) -> dict[str, Any] | None:
        credentials = auth.authenticate(token, allow_limited_access=True)
        if credentials.principal.type != "user":
            raise InputError(
                "Userinfo endpoint must be called with a token that represents a user principal"
            )
        return token_factory.user_info_store.get(credentials.principal.user_entity_ref)

    def provider_route(request: Any, provider_id: str, action: str) -> Any:
        provider = providers.get(provider_id)
        if provider is None:
            if provider_id in configured:
                raise NotFoundError(f"No auth provider registered for '{provider_id}'")
            raise NotFoundError(f"Unknown auth provider '{provider_id}'")
        if provider == "misconfigured":
            raise NotFoundError(MISCONFIGURED.format(id=provider_id))
        if action == "refresh" and request.method in ("GET", "POST"):
            return json_response(provider.refresh(request))
        if action in ("start", "handler/frame") and request.method in ("GET", "POST"):
            raise NotImplementedError("Not implemented")
        return not_found(request)

    urls = [
        path(".well-known/jwks.json", get_only(jwks), name="jwks"),
        path(
            ".well-known/openid-configuration",
            get_only(openid_configuration),
            name="openid-configuration",
        ),
        path("v1/userinfo", get_only(userinfo), name="userinfo"),
        re_path(
            r"^(?P<provider_id>[^/]+)/(?P<action>start|handler/frame|refresh|logout)/?$",
            provider_route,
            name="provider",
        ),
        re_path(
            r"^(?P<provider_id>[^/.][^/]*)(?:/.*)?$",
            lambda request, provider_id: provider_route(request, provider_id, ""),
        ),
    ]
    return urls, user_claims


def register(env: Any) -> None:
    def init(
        http_router: Any,
        database: Any,
        logger: Any,
        config: Any,
        discovery: Any,
        auth: Any,
        local: Any,
    ) -> None:
        from backstage_core.environment import is_development

        token_factory = build_token_factory(config, database, discovery, logger)
        providers: dict[str, Any] = {}
        configured = set((config.get_optional_config("auth.providers") or _Empty()).keys())
        if "guest" in configured:
            logger.info("Configuring auth provider: guest")
            try:
                providers["guest"] = GuestProvider(
                    config.get_config("auth.providers.guest"), token_factory
                )
            except Exception as error:
                if not is_development():
                    raise RuntimeError(
                        f"Failed to initialize guest auth provider, {error}"
                    ) from error
                logger.warn(f"Skipping guest auth provider, {error}")
                providers["guest"] = "misconfigured"
        urls, user_claims = _urls(token_factory, providers, configured, auth, discovery)
        http_router.use(urls)
        http_router.add_auth_policy(path="/", allow="unauthenticated")
        local.provide("auth", "user_keys", token_factory.list_public_keys)
        local.provide("auth", "userinfo", lambda token: user_claims(token) or {})
        local.provide("auth", "token_factory", lambda: token_factory)

    env.register_init(
        deps={
            "http_router": core_services.http_router,
            "database": core_services.database,
            "logger": core_services.logger,
            "config": core_services.root_config,
            "discovery": core_services.discovery,
            "auth": core_services.auth,
            "local": local_plugins_ref,
        },
        init=init,
    )


class _Empty:
    def keys(self) -> list[str]:
        return []


auth_plugin = create_backend_plugin(plugin_id="auth", register=register)
