"""``manage.py startplugin <pluginId>``: a new backend plugin app, added to the backend.

Like ``yarn new`` → backend-plugin: it writes a Django app (plugin module, urls, a model with its
migration, admin, a test) and adds ``backend.add("<package>")`` to the project's backend module,
so its routes answer at ``/api/<pluginId>/`` on the next start.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError
from django.core.management.templates import TemplateCommand

from backstage_core.wiring.features import ID_PATTERN

TEMPLATE = Path(__file__).resolve().parents[1] / "templates" / "plugin"


class Command(TemplateCommand):
    help = "Creates a backend plugin app for the given plugin id and adds it to the backend."
    missing_args_message = "You must provide a plugin id."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("plugin_id", help="The plugin id, e.g. 'todo' or 'my-plugin'.")
        parser.add_argument(
            "directory", nargs="?", help="Where to create the app (default: ./<package>)."
        )
        parser.add_argument(
            "--no-register",
            action="store_true",
            help="Do not add the plugin to the backend module.",
        )

    def handle(self, **options: Any) -> None:
        plugin_id = options.pop("plugin_id")
        if not ID_PATTERN.fullmatch(plugin_id):
            raise CommandError(
                f"'{plugin_id}' is not a valid plugin id: letters, digits and single dashes, "
                f"starting with a letter"
            )
        package = plugin_id.replace("-", "_").lower()
        directory = options.pop("directory")
        if directory is not None:
            Path(directory).mkdir(parents=True, exist_ok=True)
        register = not options.pop("no_register")
        super().handle(
            "app",
            package,
            directory,
            template=str(TEMPLATE),
            extensions=["py"],
            files=[],
            plugin_id=plugin_id,
            **options,
        )
        if register:
            self._register(package)
        self.stdout.write(f"Created plugin '{plugin_id}' in {directory or package}/")

    def _register(self, package: str) -> None:
        module_name = settings.BACKSTAGE_BACKEND.partition(":")[0]
        spec = importlib.util.find_spec(module_name)
        if spec is None or spec.origin is None:
            raise CommandError(f"Can not find the backend module '{module_name}'")
        path = Path(spec.origin)
        line = f'backend.add("{package}")'
        text = path.read_text()
        if line not in text:
            path.write_text(text.rstrip("\n") + f"\n{line}\n")
            self.stdout.write(f"Added {line} to {path}")
