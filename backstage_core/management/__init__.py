"""Management commands, and ``execute_from_command_line`` that knows ``--config``."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from backstage_core.config.loader import strip_config_args

__all__ = ["execute_from_command_line"]


def execute_from_command_line(argv: Sequence[str] | None = None) -> None:
    """Django's ``execute_from_command_line``, accepting ``--config <file>`` anywhere (repeatable).

    The config arguments stay in ``sys.argv`` for the config loader (and for the autoreloader's
    restarts); Django's parser is given the rest.
    """
    arguments = list(sys.argv if argv is None else argv)
    if len(arguments) > 1 and arguments[1] == "serve":
        # The production server needs no Django in the launcher: start it before Django loads.
        from backstage_core.server import main

        main(arguments[2:])
        return
    from django.core.management import execute_from_command_line as django_execute

    django_execute(strip_config_args(arguments))
