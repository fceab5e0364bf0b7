"""``manage.py serve``: the production server (granian, one worker per core); see
:mod:`backstage_core.server`. ``manage.py`` runs it before setting Django up; this command is
what ``django-admin`` and ``call_command`` find."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Runs the backend on granian, a multi-process production server."
    requires_system_checks: list[str] = []

    def run_from_argv(self, argv: list[str]) -> None:
        from backstage_core.server import main

        main(argv[2:])

    def handle(self, *args: Any, **options: Any) -> None:
        from backstage_core.server import main

        main(list(args))
