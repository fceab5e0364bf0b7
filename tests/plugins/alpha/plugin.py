"""Plugin 'alpha': notes in its own table named `notes` (see tests.plugins.notes)."""

from tests.plugins.notes import notes_plugin

default = notes_plugin("alpha", "tests.plugins.alpha")
