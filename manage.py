#!/usr/bin/env python
"""Django's command-line utility for this backend. Accepts ``--config <file>`` (repeatable)."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")
    from backstage_core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
