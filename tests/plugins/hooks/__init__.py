"""A test plugin whose lifecycle hooks write to ``hooks.file`` (for tests of real processes)."""
