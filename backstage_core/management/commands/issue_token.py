"""``manage.py issue_token user:default/jane``: print a user token, for scripts and curl.

    TOKEN=$(python manage.py issue_token user:default/jane --ownership group:default/team-a)
    curl -H "Authorization: Bearer $TOKEN" http://localhost:7007/api/todo/todos

Signed by the auth plugin with a key it publishes in its database, so a running backend on the
same configuration verifies it. The user's ownership refs (themselves, and ``--ownership``) are
recorded as a sign-in would record them.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from backstage_core.runtime import get_default_backend
from backstage_core.services.definitions import core_services


class Command(BaseCommand):
    help = "Prints a user token signed by the auth plugin, for the given user entity ref."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("user_entity_ref", help="The user, e.g. user:default/jane")
        parser.add_argument(
            "--ownership",
            action="append",
            default=[],
            metavar="ENTITY_REF",
            help="An entity ref the user owns through (a group); may be repeated",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        from django.db import connections

        from backstage_core.plugins.auth.plugin import build_token_factory
        from backstage_core.plugins.auth.tokens import MemoryKeyStore, parse_entity_ref
        from backstage_core.services.logger import LoggerService

        ref = options["user_entity_ref"]
        try:
            parse_entity_ref(ref)
        except ValueError as error:
            raise CommandError(str(error)) from error
        backend = get_default_backend()
        if "auth" not in backend.plugin_ids:
            raise CommandError(
                "The auth plugin is not in the backend: add backend.add('backstage_core.plugins.auth')"
            )
        config = backend.get_service(core_services.root_config)
        database = backend.get_service(core_services.database, "auth")
        discovery = backend.get_service(core_services.discovery, "auth")
        connection = connections[database.alias]
        name = str(connection.settings_dict["NAME"])
        if connection.vendor == "sqlite" and (connection.is_in_memory_db() or "vfs=memdb" in name):
            raise CommandError(
                "The auth plugin's database is in memory, so no running backend could verify a "
                "token issued here: configure backend.database (a SQLite directory or PostgreSQL)"
            )
        logger = logging.getLogger("backstage.issue_token")
        logger.propagate = False
        if not logger.handlers:
            logger.addHandler(logging.StreamHandler(sys.stderr))
        logger.setLevel(logging.WARNING)
        factory = build_token_factory(config, database, discovery, LoggerService(logger))
        if isinstance(factory.key_store, MemoryKeyStore):
            raise CommandError(
                "auth.keyStore.provider is 'memory': a running backend could not verify a token "
                "issued here"
            )
        ownership = list(dict.fromkeys([ref, *options["ownership"]]))
        self.stdout.write(factory.issue_token({"sub": ref, "ent": ownership}))
