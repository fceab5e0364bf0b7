"""The backend system as a Django app: its management commands, router and middleware."""

import sys

from django.apps import AppConfig


class BackstageCoreConfig(AppConfig):
    name = "backstage_core"
    verbose_name = "Backstage backend system"

    def ready(self) -> None:
        _import_drf_without_postgres_fields()


def _import_drf_without_postgres_fields() -> None:
    """Import DRF's compat module without its optional PostgreSQL fields when no database is
    PostgreSQL: DRF would otherwise load psycopg (about 50 ms and 8 MB per process) only to map
    ArrayField and HStoreField, which no model can use without PostgreSQL. Nothing else is
    affected: ``django.contrib.postgres`` imports normally afterwards."""
    from django.conf import settings

    if "rest_framework.compat" in sys.modules or "django.contrib.postgres.fields" in sys.modules:
        return
    engines = {entry.get("ENGINE", "") for entry in settings.DATABASES.values()}
    if any("postgres" in engine for engine in engines):
        return
    sys.modules["django.contrib.postgres.fields"] = None  # type: ignore[assignment]
    try:
        import rest_framework.compat  # noqa: F401
    finally:
        del sys.modules["django.contrib.postgres.fields"]
