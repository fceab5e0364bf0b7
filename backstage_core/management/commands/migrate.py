"""``manage.py migrate``: without ``--database``, migrates ``default`` and then every plugin's database.

Each plugin's apps are migrated on the plugin's own database (see ``PluginDatabaseRouter``);
``--database <pluginId>`` migrates one of them, as Django's command does.
"""

from __future__ import annotations

from typing import Any

from django.core.management.commands.migrate import Command as DjangoMigrate
from django.db import DEFAULT_DB_ALIAS

from backstage_core.runtime import get_default_backend
from backstage_core.services.database import migration_lock


class Command(DjangoMigrate):
    help = "Updates the default database and every plugin's database to their current migrations."

    def add_arguments(self, parser: Any) -> None:
        super().add_arguments(parser)
        parser.set_defaults(database=None)

    @staticmethod
    def _aliases(options: dict[str, Any]) -> list[str]:
        if options["database"] is not None:
            return [options["database"]]
        return [DEFAULT_DB_ALIAS, *get_default_backend().plugin_ids]

    def get_check_kwargs(self, options: dict[str, Any]) -> dict[str, Any]:
        return {**super().get_check_kwargs(options), "databases": self._aliases(options)}

    def execute(self, *args: Any, **options: Any) -> Any:
        """Create the PostgreSQL or MySQL databases that do not exist yet, before the system
        checks run: MySQL's connect to each database."""
        from backstage_core.services.database import shared_manager
        from backstage_core.services.definitions import core_services

        backend = get_default_backend()
        manager = shared_manager(backend.get_service(core_services.root_config))
        laid_out = {DEFAULT_DB_ALIAS, *backend.plugin_ids}
        for alias in self._aliases(options):
            if alias in laid_out:
                manager.ensure_exists(alias)
        return super().execute(*args, **options)

    def handle(self, *args: Any, **options: Any) -> None:
        from django.db import connections

        aliases = self._aliases(options)
        for alias in aliases:
            if len(aliases) > 1 and options["verbosity"] >= 1:
                self.stdout.write(self.style.MIGRATE_HEADING(f"Database '{alias}':"))
            with migration_lock(connections[alias]):
                super().handle(*args, **{**options, "database": alias})
