"""Mock services for tests, as Backstage's ``mockServices``.

    mock_services.root_config(data={"backend": {...}})   # a service instance
    mock_services.root_config.factory(data={...})         # a factory to add to a backend

``start_test_backend`` uses these by default: config from ``data`` only, a silent logger, the mock
auth service (accepting ``mock_credentials`` tokens), an in-memory database per plugin and a
fresh in-memory cache.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from typing import Any

from backstage_core.config.reader import ConfigReader
from backstage_core.errors import AuthenticationError
from backstage_core.services.auth import (
    AuthService,
    BackstageCredentials,
    LimitedUserToken,
    PluginRequestToken,
    UserPrincipal,
)
from backstage_core.services.config import ObservableConfig
from backstage_core.services.definitions import core_services
from backstage_core.services.http_auth import HttpAuthService
from backstage_core.services.logger import LoggerService
from backstage_core.testing.credentials import (
    INVALID_LIMITED_TOKEN,
    INVALID_SERVICE_TOKEN,
    INVALID_USER_TOKEN,
    LIMITED_TOKEN_PREFIX,
    NONE_TOKEN,
    SERVICE_TOKEN,
    SERVICE_TOKEN_PREFIX,
    USER_TOKEN,
    USER_TOKEN_PREFIX,
    mock_credentials,
)
from backstage_core.wiring.features import ServiceFactory, create_service_factory

__all__ = ["MockTokenHandler", "mock_services"]


class MockTokenHandler:
    """Accepts the tokens of ``mock_credentials`` (and refuses every other token)."""

    def __init__(self, plugin_id: str) -> None:
        self.plugin_id = plugin_id

    def verify(self, token: str, *, allow_limited_access: bool) -> BackstageCredentials:
        if not token:
            raise AuthenticationError("Token is empty")
        if token == USER_TOKEN:
            return mock_credentials.user()
        if token == SERVICE_TOKEN:
            return mock_credentials.service()
        if token == NONE_TOKEN:
            return mock_credentials.none()
        if token == INVALID_USER_TOKEN:
            raise AuthenticationError("User token is invalid")
        if token == INVALID_LIMITED_TOKEN:
            raise AuthenticationError("Limited user token is invalid")
        if token == INVALID_SERVICE_TOKEN:
            raise AuthenticationError("Service token is invalid")
        if token.startswith(USER_TOKEN_PREFIX):
            payload = json.loads(token[len(USER_TOKEN_PREFIX) :])
            return mock_credentials.user(
                payload["sub"], actor=(payload.get("actor") or {}).get("subject")
            )
        if token.startswith(LIMITED_TOKEN_PREFIX):
            if not allow_limited_access:
                raise AuthenticationError("Limited user token is not allowed")
            return mock_credentials.user(json.loads(token[len(LIMITED_TOKEN_PREFIX) :])["sub"])
        if token.startswith(SERVICE_TOKEN_PREFIX):
            payload = json.loads(token[len(SERVICE_TOKEN_PREFIX) :])
            target = payload.get("target")
            if target and target != self.plugin_id:
                raise AuthenticationError(
                    f"Invalid mock token target plugin ID, got '{target}' but expected '{self.plugin_id}'"
                )
            if payload.get("obo"):
                return mock_credentials.user(payload["obo"])
            return mock_credentials.service(payload.get("sub") or "external:test-service")
        raise AuthenticationError(f"Unknown mock token '{token}'")


class MockAuthService(AuthService):
    """The auth service of tests: accepts ``mock_credentials`` tokens and issues mock ones."""

    def get_plugin_request_token(
        self, *, on_behalf_of: BackstageCredentials, target_plugin_id: str
    ) -> PluginRequestToken:
        return PluginRequestToken(
            mock_credentials.service.token(
                on_behalf_of=on_behalf_of, target_plugin_id=target_plugin_id
            )
        )

    def get_limited_user_token(self, credentials: BackstageCredentials) -> LimitedUserToken:
        principal = credentials.principal
        if not isinstance(principal, UserPrincipal):
            raise AuthenticationError("Refused to issue a limited user token for a non-user")
        from datetime import UTC, datetime, timedelta

        return LimitedUserToken(
            mock_credentials.limited_user.token(principal.user_entity_ref),
            datetime.now(UTC) + timedelta(hours=1),
        )


class MockUserInfoService:
    """User info of tests: every user owns only themselves, unless ``ownership`` says otherwise."""

    def __init__(self, ownership: Mapping[str, list[str]] | None = None) -> None:
        self._ownership = dict(ownership or {})

    def get_user_info(self, credentials: BackstageCredentials) -> Any:
        from backstage_core.services.user_info import BackstageUserInfo

        principal = credentials.principal
        if not isinstance(principal, UserPrincipal):
            raise TypeError("Only user credentials are supported")
        ref = principal.user_entity_ref
        return BackstageUserInfo(ref, list(self._ownership.get(ref, [ref])))


def _user_info(*, ownership: Mapping[str, list[str]] | None = None) -> MockUserInfoService:
    return MockUserInfoService(ownership)


def _user_info_factory(*, ownership: Mapping[str, list[str]] | None = None) -> ServiceFactory:
    return create_service_factory(
        service=core_services.user_info, factory=lambda: MockUserInfoService(ownership)
    )


class MockHttpAuthService(HttpAuthService):
    """httpAuth that treats a request with no token as ``default_credentials`` (a mock user)."""

    def __init__(self, auth: AuthService, default_credentials: BackstageCredentials) -> None:
        super().__init__(auth)
        self._default = default_credentials

    def _extract(self, request: Any, allow_limited_access: bool) -> BackstageCredentials:
        credentials = super()._extract(request, allow_limited_access)
        from backstage_core.services.http_auth import bearer_token

        if credentials.principal.type == "none" and bearer_token(request) is None:
            return self._default
        return credentials


class _MockService:
    """A mock: call it for an instance, ``.factory()`` for a factory, ``.mock()`` for a Mock."""

    def __init__(self, instance: Any, factory: Any, spec: Any) -> None:
        self._instance = instance
        self._factory = factory
        self._spec = spec

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._instance(*args, **kwargs)

    def factory(self, *args: Any, **kwargs: Any) -> ServiceFactory:
        return self._factory(*args, **kwargs)

    def mock(self, **attributes: Any) -> Any:
        """A ``unittest.mock`` stand-in with the service's methods; ``attributes`` set some."""
        from unittest import mock

        spec = self._spec
        if isinstance(spec, str):
            from django.utils.module_loading import import_string

            spec = import_string(spec)
        stand_in = mock.create_autospec(spec, instance=True)
        for name, value in attributes.items():
            setattr(stand_in, name, value)
        return stand_in


class MockRootConfig(ObservableConfig):
    """Config from ``data`` only, replaceable with :meth:`update`."""

    def update(self, *, data: Mapping[str, Any]) -> None:
        self.set_config(ConfigReader(data, "mock-config"))


def _root_config(*, data: Mapping[str, Any] | None = None) -> MockRootConfig:
    return MockRootConfig(ConfigReader(dict(data or {}), "mock-config"))


def _root_config_factory(*, data: Mapping[str, Any] | None = None) -> ServiceFactory:
    return create_service_factory(
        service=core_services.root_config, factory=lambda: _root_config(data=data)
    )


def _root_logger(*, level: str = "none") -> LoggerService:
    logger = logging.getLogger(f"backstage.test.{uuid.uuid4().hex[:8]}")
    levels = {
        "none": logging.CRITICAL + 10,
        "error": logging.ERROR,
        "warn": logging.WARNING,
        "info": logging.INFO,
        "debug": logging.DEBUG,
    }
    if level not in levels:
        raise ValueError(f"Invalid log level '{level}'")
    logger.setLevel(levels[level])
    return LoggerService(logger, {"service": "backstage"})


def _root_logger_factory(*, level: str = "none") -> ServiceFactory:
    return create_service_factory(
        service=core_services.root_logger, factory=lambda: _root_logger(level=level)
    )


def _auth(*, plugin_id: str = "test") -> AuthService:
    return MockAuthService(plugin_id, [MockTokenHandler(plugin_id)])


def _auth_factory() -> ServiceFactory:
    return create_service_factory(
        service=core_services.auth,
        deps={"plugin": core_services.plugin_metadata},
        factory=lambda plugin: _auth(plugin_id=plugin.get_id()),
    )


def _http_auth(
    *, plugin_id: str = "test", default_credentials: BackstageCredentials | None = None
) -> HttpAuthService:
    return MockHttpAuthService(
        _auth(plugin_id=plugin_id), default_credentials or mock_credentials.user()
    )


def _http_auth_factory(
    *, default_credentials: BackstageCredentials | None = None
) -> ServiceFactory:
    return create_service_factory(
        service=core_services.http_auth,
        deps={"auth": core_services.auth},
        factory=lambda auth: MockHttpAuthService(
            auth, default_credentials or mock_credentials.user()
        ),
    )


def _fresh_cache_alias() -> str:
    """A new in-memory Django cache alias, empty and used by nobody else."""
    from django.conf import settings

    alias = f"backstage-test-{uuid.uuid4().hex[:12]}"
    settings.CACHES[alias] = {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": alias,
    }
    return alias


def _cache(*, plugin_id: str = "test", default_ttl: Any = None) -> Any:
    from backstage_core.services.cache import CacheService

    return CacheService(_fresh_cache_alias(), plugin_id, default_ttl, _root_logger())


def _cache_factory() -> ServiceFactory:
    """The real cache service over a fresh Django cache of its own: in memory, or the store
    ``backend.cache`` names (Redis, say) with keys apart from every other test's."""
    from backstage_core.services.cache import cache_factory

    return cache_factory(alias=None)


def _database(*, plugin_id: str = "test") -> Any:
    """A plugin database on a fresh in-memory SQLite, registered as the ``plugin_id`` alias."""
    from backstage_core.services.database import DatabaseManager

    return DatabaseManager(ConfigReader({})).for_plugin(plugin_id, [])


def _database_factory() -> ServiceFactory:
    """The real database service, each plugin on a fresh in-memory SQLite (``default`` untouched)."""
    from backstage_core.services.database import database_factory

    return database_factory(manage_default=False)


def _discovery(*, base_url: str = "http://localhost:0") -> Any:
    from backstage_core.services.discovery import HostDiscovery

    port = int(base_url.rsplit(":", 1)[-1])
    return HostDiscovery(ConfigReader({"backend": {"baseUrl": base_url, "listen": {"port": port}}}))


def _logger(*, plugin_id: str = "test", level: str = "none") -> LoggerService:
    return _root_logger(level=level).child({"plugin": plugin_id})


def _lifecycle(*, plugin_id: str = "test") -> Any:
    from backstage_core.services.lifecycle import PluginLifecycle

    return PluginLifecycle(_logger(plugin_id=plugin_id), plugin_id)


def _root_lifecycle() -> Any:
    from backstage_core.services.lifecycle import RootLifecycle

    return RootLifecycle(_root_logger())


def _real(factory_path: str) -> Any:
    """The real default factory at ``module:name``, imported when asked for."""

    def factory() -> ServiceFactory:
        from django.utils.module_loading import import_string

        return import_string(factory_path.replace(":", "."))()

    return factory


class MockServices:
    """Mock or test versions of the core services."""

    root_config = _MockService(_root_config, _root_config_factory, MockRootConfig)
    root_logger = _MockService(_root_logger, _root_logger_factory, LoggerService)
    logger = _MockService(
        _logger, _real("backstage_core.services.logger:logger_factory"), LoggerService
    )
    auth = _MockService(_auth, _auth_factory, MockAuthService)
    user_info = _MockService(_user_info, _user_info_factory, MockUserInfoService)
    http_auth = _MockService(_http_auth, _http_auth_factory, HttpAuthService)
    cache = _MockService(_cache, _cache_factory, "backstage_core.services.cache.CacheService")
    database = _MockService(
        _database, _database_factory, "backstage_core.services.database.PluginDatabase"
    )
    discovery = _MockService(
        _discovery,
        _real("backstage_core.services.discovery:discovery_factory"),
        "backstage_core.services.discovery.HostDiscovery",
    )
    lifecycle = _MockService(
        _lifecycle,
        _real("backstage_core.services.lifecycle:lifecycle_factory"),
        "backstage_core.services.lifecycle.PluginLifecycle",
    )
    root_lifecycle = _MockService(
        _root_lifecycle,
        _real("backstage_core.services.lifecycle:root_lifecycle_factory"),
        "backstage_core.services.lifecycle.RootLifecycle",
    )


mock_services = MockServices()
