"""The test utilities themselves: mock credentials, mock auth and plugin metadata."""

from __future__ import annotations

from typing import Any

import pytest

from backstage_core import AuthenticationError, core_services, create_backend_plugin
from backstage_core.testing import mock_credentials, mock_services


def test_mock_credentials_and_their_tokens() -> None:
    assert mock_credentials.none().principal.type == "none"
    assert mock_credentials.none.header() == "Bearer mock-none-token"
    assert mock_credentials.user().principal.user_entity_ref == "user:default/mock"
    assert mock_credentials.user.token() == "mock-user-token"
    assert (
        mock_credentials.user.header("user:default/jane")
        == 'Bearer mock-user-token:{"sub":"user:default/jane"}'
    )
    assert mock_credentials.service().principal.subject == "external:test-service"
    assert mock_credentials.service.token(
        on_behalf_of=mock_credentials.user(), target_plugin_id="catalog"
    ) == ('mock-service-token:{"obo":"user:default/mock","target":"catalog"}')
    assert (
        mock_credentials.limited_user.cookie()
        == 'backstage-auth=mock-limited-user-token:{"sub":"user:default/mock"}'
    )
    with pytest.raises(
        TypeError, match="Invalid user entity reference 'jane', expected <kind>:<namespace>/<name>"
    ):
        mock_credentials.user("jane")


def test_the_mock_auth_service_accepts_mock_tokens_only() -> None:
    auth = mock_services.auth(plugin_id="catalog")
    assert (
        auth.authenticate(
            mock_credentials.user.token("user:default/jane")
        ).principal.user_entity_ref
        == "user:default/jane"
    )
    assert (
        auth.authenticate(mock_credentials.service.token(target_plugin_id="catalog")).principal.type
        == "service"
    )
    assert auth.is_principal(auth.get_own_service_credentials(), "service")
    assert auth.get_own_service_credentials().principal.subject == "plugin:catalog"
    for token, message in [
        (mock_credentials.user.invalid_token(), "User token is invalid"),
        (
            mock_credentials.service.token(target_plugin_id="search"),
            "Invalid mock token target plugin ID, got 'search' but expected 'catalog'",
        ),
        (mock_credentials.limited_user.token(), "Limited user token is not allowed"),
        ("a real looking token", "Unknown mock token 'a real looking token'"),
    ]:
        with pytest.raises(AuthenticationError, match=f"^{message}$"):
            auth.authenticate(token)


def test_plugin_metadata_names_the_plugin_and_can_not_be_overridden(
    test_backend_factory: Any,
) -> None:
    from backstage_core import create_service_factory

    seen = {}

    def register(env: Any) -> None:
        env.register_init(
            deps={"metadata": core_services.plugin_metadata},
            init=lambda metadata: seen.update(id=metadata.get_id()),
        )

    test_backend_factory(
        features=[create_backend_plugin(plugin_id="named", register=register, django_app=None)]
    )
    assert seen["id"] == "named"
    with pytest.raises(ValueError, match="^The core.pluginMetadata service cannot be overridden$"):
        test_backend_factory(
            features=[
                create_service_factory(service=core_services.plugin_metadata, factory=lambda: None)
            ]
        )


def test_a_test_backend_reports_its_startup_failure(test_backend_factory: Any) -> None:
    from backstage_core import BackendStartupError

    def register(env: Any) -> None:
        def init() -> None:
            raise RuntimeError("cannot start")

        env.register_init(deps={}, init=init)

    with pytest.raises(
        BackendStartupError,
        match="Plugin 'broken' startup failed; caused by RuntimeError: cannot start",
    ):
        test_backend_factory(
            features=[create_backend_plugin(plugin_id="broken", register=register, django_app=None)]
        )


def test_mock_services_give_instances_factories_and_mocks(django_db_blocker: Any) -> None:
    config = mock_services.root_config(data={"app": {"title": "Test"}})
    assert config.get_string("app.title") == "Test"
    config.update(data={"app": {"title": "Changed"}})
    assert config.get_string("app.title") == "Changed"

    cache = mock_services.cache()
    cache.set("k", "v")
    assert cache.get("k") == "v" and mock_services.cache().get("k") is None  # each one is fresh

    assert mock_services.discovery().get_base_url("catalog") == "http://localhost:0/api/catalog"
    assert mock_services.logger().fields == {"service": "backstage", "plugin": "test"}

    with django_db_blocker.unblock():
        database = mock_services.database(plugin_id="scratch")
        with database.get_client().cursor() as cursor:
            cursor.execute("create table t (x)")
            cursor.execute("insert into t values (1)")
            cursor.execute("select x from t")
            assert cursor.fetchone() == (1,)

    logger = mock_services.logger.mock()
    logger.info("hello")
    logger.info.assert_called_once_with("hello")
    assert mock_services.cache.factory().service is core_services.cache
