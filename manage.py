#!/usr/bin/env python
"""Django's command-line utility for this backend. Accepts ``--config <file>`` (repeatable)."""

import gc
import os
import sys


def main() -> None:
    if sys.argv[1:2] == ["serve"]:
        gc.disable()  # while the server loads everything once; it collects and freezes it after
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")
    from backstage_core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
