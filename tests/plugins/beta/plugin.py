"""Plugin 'beta': notes in its own table named `notes` (see tests.plugins.notes)."""

from tests.plugins.notes import notes_plugin

default = notes_plugin("beta", "tests.plugins.beta")
