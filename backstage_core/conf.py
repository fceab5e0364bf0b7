"""Django settings derived from the backend and its app-config: the one place users configure.

    # settings/__init__.py
    from backstage_core.conf import django_settings
    from settings.backend import backend

    globals().update(django_settings(backend, base_dir=BASE_DIR, backend_path="settings.backend:backend"))

Installed apps come from the plugins added to the backend; databases from ``backend.database``;
caches from ``backend.cache``; logging from ``backend.logger`` and ``LOG_LEVEL``; allowed hosts from
``backend.baseUrl``; CORS from ``backend.cors``. The secret key and debug flag come from the
environment through django-environ (``DJANGO_SECRET_KEY``, ``DJANGO_DEBUG``, or a ``.env`` file).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import environ
from django.core.exceptions import ImproperlyConfigured

from backstage_core.cache import cache_settings
from backstage_core.environment import is_development, is_production, mode
from backstage_core.services.database import django_databases
from backstage_core.services.definitions import core_services
from backstage_core.services.discovery import read_listen
from backstage_core.services.logger import logging_settings

__all__ = ["cors_settings", "django_settings", "glob_to_regex"]

DEV_SECRET_KEY = "django-insecure-backstage-development-only-key-do-not-use-in-production"  # noqa: S105
MAX_BODY_BYTES = 100 * 1024  # express.json's default limit, as the todo API's reference has it

CORE_APPS = [
    "backstage_core",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
]


def glob_to_regex(pattern: str) -> str:
    """A CORS origin glob as Backstage matches it (minimatch, no globstar, any case) as a regex."""
    out = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char in "?*+@!" and index + 1 < len(pattern) and pattern[index + 1] == "(":
            close = pattern.index(")", index)
            options = "|".join(re.escape(o) for o in pattern[index + 2 : close].split("|"))
            suffix = {"?": "?", "*": "*", "+": "+", "@": "", "!": ""}[char]
            out.append(f"(?!(?:{options}))[^/]*" if char == "!" else f"(?:{options}){suffix}")
            index = close + 1
            continue
        if char == "*":
            while index + 1 < len(pattern) and pattern[index + 1] == "*":
                index += 1
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            close = pattern.index("]", index)
            out.append(f"[{pattern[index + 1 : close]}]")
            index = close
        elif char == "{":
            close = pattern.index("}", index)
            out.append(
                "(?:" + "|".join(re.escape(o) for o in pattern[index + 1 : close].split(",")) + ")"
            )
            index = close
        else:
            out.append(re.escape(char))
        index += 1
    return "(?i)^" + "".join(out) + "$"


def _string_list(config: Any, key: str) -> list[str] | None:
    value = config.get_optional(key)
    if isinstance(value, str):
        return [value]
    if not value:
        return None
    return config.get_string_array(key)


def cors_settings(config: Any) -> dict[str, Any] | None:
    """django-cors-headers settings from ``backend.cors``; None when CORS is off (no ``backend.cors``)."""
    cors = config.get_optional_config("backend.cors")
    if cors is None:
        return None
    settings: dict[str, Any] = {}
    origins = _string_list(cors, "origin")
    if origins is None:
        settings["CORS_ALLOW_ALL_ORIGINS"] = True
    else:
        settings["CORS_ALLOWED_ORIGIN_REGEXES"] = [glob_to_regex(o) for o in origins]
    methods = _string_list(cors, "methods")
    settings["CORS_ALLOW_METHODS"] = methods or ["GET", "HEAD", "PUT", "PATCH", "POST", "DELETE"]
    headers = _string_list(cors, "allowedHeaders")
    if headers is not None:
        settings["CORS_ALLOW_HEADERS"] = headers
    exposed = _string_list(cors, "exposedHeaders")
    if exposed is not None:
        settings["CORS_EXPOSE_HEADERS"] = exposed
    settings["CORS_ALLOW_CREDENTIALS"] = bool(cors.get_optional_boolean("credentials"))
    max_age = cors.get_optional_number("maxAge")
    if max_age is not None:
        settings["CORS_PREFLIGHT_MAX_AGE"] = int(max_age)
    return settings


def _allowed_hosts(config: Any) -> list[str]:
    hosts = ["localhost", "127.0.0.1", "[::1]"]
    base = urlparse(config.get_optional_string("backend.baseUrl") or "")
    if base.hostname:
        hosts.append(f"[{base.hostname}]" if ":" in base.hostname else base.hostname)
    host, _port = read_listen(config)
    if host and host not in ("0.0.0.0", "::"):
        hosts.append(f"[{host}]" if ":" in host else host)
    hosts += config.get_optional_string_array("backend.django.allowedHosts") or []
    return list(dict.fromkeys(hosts))


def django_settings(backend: Any, *, base_dir: Path, backend_path: str) -> dict[str, Any]:
    """Every Django setting the backend needs, derived from its app-config."""
    env = environ.Env()
    environ.Env.read_env(base_dir / ".env", overwrite=False)
    config = backend.get_service(core_services.root_config)
    production = is_production()

    secret_key = env.str("DJANGO_SECRET_KEY", default="") or config.get_optional_string(
        "backend.django.secretKey"
    )
    if not secret_key:
        if production:
            raise ImproperlyConfigured(
                "No secret key: set DJANGO_SECRET_KEY (or backend.django.secretKey) in production"
            )
        secret_key = DEV_SECRET_KEY

    databases, _manager = django_databases(config, backend.plugin_ids, base_dir=base_dir)
    cors = cors_settings(config)
    middleware = [
        "backstage_core.http.middleware.SecurityHeadersMiddleware",
        "django.middleware.gzip.GZipMiddleware",
        "backstage_core.http.middleware.ConditionalGetMiddleware",
        *(["corsheaders.middleware.CorsMiddleware"] if cors is not None else []),
        "backstage_core.http.middleware.PluginChainMiddleware",
        # Django's own, for the admin and other Django views; plugin APIs pass them by.
        "backstage_core.http.middleware.SessionMiddleware",
        "backstage_core.http.middleware.CsrfViewMiddleware",
        "backstage_core.http.middleware.AuthenticationMiddleware",
        "backstage_core.http.middleware.MessageMiddleware",
    ]
    apps = [*CORE_APPS, *(["corsheaders"] if cors is not None else []), *backend.django_apps]
    if scheduler_worker(config) == "django-q":
        apps.append("django_q")  # its tables, admin pages and cluster: only when it runs tasks

    settings: dict[str, Any] = {
        "BACKSTAGE_BACKEND": backend_path,
        "BACKSTAGE_MODE": mode(),
        "SECRET_KEY": secret_key,
        "DEBUG": env.bool("DJANGO_DEBUG", default=is_development()),
        "ALLOWED_HOSTS": _allowed_hosts(config),
        "INSTALLED_APPS": list(dict.fromkeys(apps)),
        "MIDDLEWARE": middleware,
        "DATABASES": databases,
        "DATABASE_ROUTERS": ["backstage_core.db.PluginDatabaseRouter"],
        "CACHES": {"default": cache_settings(config)},
        "LOGGING": logging_settings(config, production=production),
        "TEMPLATES": [
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "DIRS": [],
                "APP_DIRS": True,
                "OPTIONS": {
                    "context_processors": [
                        "django.template.context_processors.request",
                        "django.contrib.auth.context_processors.auth",
                        "django.contrib.messages.context_processors.messages",
                    ]
                },
            }
        ],
        "REST_FRAMEWORK": {
            "EXCEPTION_HANDLER": "backstage_core.http.errors.drf_exception_handler",
            "DEFAULT_AUTHENTICATION_CLASSES": [],
            "DEFAULT_PERMISSION_CLASSES": [],
            "UNAUTHENTICATED_USER": None,
            "DEFAULT_PARSER_CLASSES": ["backstage_core.http.parsers.JSONParser"],
            "DEFAULT_CONTENT_NEGOTIATION_CLASS": "backstage_core.http.renderers.ContentNegotiation",
            "DEFAULT_RENDERER_CLASSES": [
                "backstage_core.http.renderers.JSONRenderer",
                "rest_framework.renderers.BrowsableAPIRenderer",
            ],
        },
        "DATA_UPLOAD_MAX_MEMORY_SIZE": MAX_BODY_BYTES,
        "STATIC_URL": "static/",
        "STATIC_ROOT": str(base_dir / "staticfiles"),
        "USE_TZ": True,
        "TIME_ZONE": "UTC",
        "LANGUAGE_CODE": "en-us",
        "USE_I18N": True,
        "DEFAULT_AUTO_FIELD": "django.db.models.BigAutoField",
        "X_FRAME_OPTIONS": "SAMEORIGIN",
        # Partial indexes (`Index(condition=...)`, as the todo plugin's) are plain indexes on
        # MySQL and MariaDB, which have none: Django creates them without the condition. Every
        # query still finds its rows; that index is only bigger there.
        "SILENCED_SYSTEM_CHECKS": ["models.W037"],
        "SECURE_REFERRER_POLICY": "no-referrer",
        "CSRF_TRUSTED_ORIGINS": _trusted_origins(config),
    }
    if cors is not None:
        settings.update(cors)
    settings["Q_CLUSTER"] = django_q_settings(config)
    return settings


def scheduler_worker(config: Any) -> str:
    """``backend.scheduler.worker``: ``embedded`` (default) or ``django-q``."""
    return config.get_optional_string("backend.scheduler.worker") or "embedded"


def django_q_settings(config: Any) -> dict[str, Any]:
    """django-q2's cluster, which runs global task runs when ``backend.scheduler.worker: django-q``."""
    import os

    section = config.get_optional_config("backend.scheduler.djangoQ")
    workers = section.get_optional_number("workers") if section else None
    return {
        "name": "backstage",
        "orm": "default",
        "workers": int(workers or len(os.sched_getaffinity(0))),
        "timeout": 24 * 3600,  # the longest a run may take; each run carries its own, shorter one
        "retry": 7 * 24 * 3600,  # longer than any task's timeout: a run is never handed out twice
        "max_attempts": 1,
        "ack_failures": True,
        "catch_up": False,
        "save_limit": 500,
        "label": "Scheduled task runs",
        "poll": 0.1,
    }


def _trusted_origins(config: Any) -> list[str]:
    base = urlparse(config.get_optional_string("backend.baseUrl") or "")
    return [f"{base.scheme}://{base.netloc}"] if base.scheme and base.netloc else []
