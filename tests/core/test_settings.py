"""Django settings derived from app-config: one place configures the backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.exceptions import ImproperlyConfigured

from backstage_core import Backend, config_factory
from backstage_core.conf import DEV_SECRET_KEY, django_settings, glob_to_regex
from backstage_core.runtime import create_backend


def settings_for(tmp_path: Path, data: dict[str, Any], *plugins: str) -> dict[str, Any]:
    (tmp_path / "app-config.yaml").write_text(yaml.safe_dump(data))
    backend: Backend = create_backend(services=[config_factory(argv=["prog"], root_dir=tmp_path)])
    for plugin in plugins:
        backend.add(plugin)
    return django_settings(backend, base_dir=tmp_path, backend_path="x:backend")


def test_apps_databases_hosts_and_logging_come_from_the_backend(
    tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.delenv("DJANGO_SECRET_KEY", raising=False)
    monkeypatch.setenv("DJANGO_ENV", "development")
    data = {
        "backend": {
            "baseUrl": "https://backstage.example.com",
            "listen": {"host": "10.0.0.5", "port": 7007},
            "database": {"client": "better-sqlite3", "connection": {"directory": "./db"}},
            "logger": {"level": "warn"},
        }
    }
    settings = settings_for(tmp_path, data, "tests.plugins.alpha.plugin")

    assert settings["INSTALLED_APPS"][-1] == "tests.plugins.alpha"
    assert settings["DATABASES"]["alpha"]["NAME"] == str(tmp_path / "db" / "alpha.sqlite")
    assert settings["DATABASES"]["default"]["NAME"] == str(tmp_path / "db" / "default.sqlite")
    assert settings["DATABASES"]["alpha"]["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
    assert (
        "backstage.example.com" in settings["ALLOWED_HOSTS"]
        and "10.0.0.5" in settings["ALLOWED_HOSTS"]
    )
    assert settings["CSRF_TRUSTED_ORIGINS"] == ["https://backstage.example.com"]
    assert settings["DEBUG"] is True
    assert settings["SECRET_KEY"] == DEV_SECRET_KEY
    assert settings["LOGGING"]["formatters"]["backstage"]["()"].endswith("DevFormatter")
    assert "corsheaders" not in settings["INSTALLED_APPS"]


def test_production_needs_a_secret_key_read_by_django_environ(
    tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setenv("DJANGO_ENV", "production")
    monkeypatch.delenv("DJANGO_SECRET_KEY", raising=False)
    with pytest.raises(ImproperlyConfigured, match="No secret key"):
        settings_for(tmp_path, {"backend": {"baseUrl": "http://localhost:7007"}})

    (tmp_path / ".env").write_text("DJANGO_SECRET_KEY=from-dot-env-file\nDJANGO_DEBUG=false\n")
    settings = settings_for(tmp_path, {"backend": {"baseUrl": "http://localhost:7007"}})
    assert settings["SECRET_KEY"] == "from-dot-env-file"
    assert settings["DEBUG"] is False
    assert settings["LOGGING"]["formatters"]["backstage"]["()"].endswith("JsonFormatter")


def test_cors_is_on_only_with_backend_cors(tmp_path: Path) -> None:
    settings = settings_for(
        tmp_path,
        {
            "backend": {
                "baseUrl": "http://localhost:7007",
                "cors": {"origin": "http://localhost:3000", "credentials": True, "maxAge": 600},
            }
        },
    )
    assert "corsheaders" in settings["INSTALLED_APPS"]
    assert "corsheaders.middleware.CorsMiddleware" in settings["MIDDLEWARE"]
    assert settings["CORS_ALLOW_CREDENTIALS"] is True
    assert settings["CORS_PREFLIGHT_MAX_AGE"] == 600


@pytest.mark.parametrize(
    ("glob", "origin", "matches"),
    [
        ("https://*.example.com", "https://a.example.com", True),
        ("https://*.example.com", "https://a.b.example.com", True),
        ("https://*.example.com", "https://example.com", False),
        ("https://*.example.com", "HTTPS://A.EXAMPLE.COM", True),
        ("http://localhost:*", "http://localhost:3000", True),
        ("*", "http://a.com", False),
        ("https://**", "https://a.com", True),
        ("http?(s)://a.com", "https://a.com", True),
        ("https://{a,b}.com", "https://b.com", True),
        ("https://[ab].com", "https://b.com", True),
    ],
)
def test_cors_origin_globs_match_as_backstage_matches_them(
    glob: str, origin: str, matches: bool
) -> None:
    import re

    assert bool(re.match(glob_to_regex(glob), origin)) is matches


def test_a_plugin_may_not_be_called_default(tmp_path: Path) -> None:
    from backstage_core import create_backend_plugin

    (tmp_path / "app-config.yaml").write_text("backend: {baseUrl: 'http://x'}\n")
    backend = create_backend(services=[config_factory(argv=["prog"], root_dir=tmp_path)])
    backend.add(
        create_backend_plugin(plugin_id="default", register=lambda env: None, django_app=None)
    )
    with pytest.raises(ValueError, match="A plugin can not be called 'default'"):
        django_settings(backend, base_dir=tmp_path, backend_path="x:backend")
