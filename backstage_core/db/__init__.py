"""The database router: a plugin's models live in the plugin's own database alias.

    DATABASE_ROUTERS = ["backstage_core.db.PluginDatabaseRouter"]

Models of an app that belongs to a plugin are read, written and migrated on the alias named after
the plugin; every other app (Django's admin, auth, sessions) stays on ``default``. A project with
databases of its own puts its router before this one.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps

from backstage_core.wiring.backend import plugin_for_app

__all__ = ["PluginDatabaseRouter", "app_labels_for_plugin", "plugin_for_model"]


def plugin_for_model(model: Any) -> str | None:
    """The plugin id whose database holds ``model``, or None for Django's own apps."""
    return plugin_for_app(model._meta.app_config.name)


def app_labels_for_plugin(plugin_id: str) -> list[str]:
    """The labels of the installed Django apps that belong to ``plugin_id``."""
    return [c.label for c in apps.get_app_configs() if plugin_for_app(c.name) == plugin_id]


class PluginDatabaseRouter:
    """Routes each plugin's models to the plugin's alias; the first router with an opinion wins."""

    def db_for_read(self, model: Any, **hints: Any) -> str | None:
        return plugin_for_model(model)

    db_for_write = db_for_read

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool | None:
        first, second = plugin_for_model(type(obj1)), plugin_for_model(type(obj2))
        if first is None and second is None:
            return None
        return first == second

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool | None:
        try:
            app_config = apps.get_app_config(app_label)
        except LookupError:
            return None
        plugin_id = plugin_for_app(app_config.name)
        return db == (plugin_id or "default")
