"""The backend system as a Django app: its management commands, router and middleware."""

import importlib.util
import sys

from django.apps import AppConfig


class BackstageCoreConfig(AppConfig):
    name = "backstage_core"
    verbose_name = "Backstage backend system"

    def ready(self) -> None:
        _import_drf_compat()


def _import_drf_compat() -> None:
    """Import DRF's compat module without the optional packages it would load for nothing.

    - ``django.contrib.postgres.fields`` when no database is PostgreSQL: DRF would otherwise load
      psycopg (about 50 ms and 8 MB per process) only to map ArrayField and HStoreField, which no
      model can use without PostgreSQL.
    - ``pygments`` when Markdown is not installed: DRF highlights only the code blocks of Markdown
      view descriptions with it (and puts the styles for them in every browsable API page), so
      without Markdown it would import 44 modules (pygments and the ``importlib.metadata`` it
      loads; 5-9 ms of every start) for styles nothing uses. pytest brings pygments into a
      development environment.

    Nothing else is affected: both import normally afterwards, for whoever uses them.
    """
    from django.conf import settings

    if "rest_framework.compat" in sys.modules:
        return
    skipped = []
    engines = {entry.get("ENGINE", "") for entry in settings.DATABASES.values()}
    if not any("postgres" in engine for engine in engines):
        skipped.append("django.contrib.postgres.fields")
    if importlib.util.find_spec("markdown") is None:
        skipped.append("pygments")
    skipped = [name for name in skipped if name not in sys.modules]
    for name in skipped:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        import rest_framework.compat  # noqa: F401
    finally:
        for name in skipped:
            del sys.modules[name]
