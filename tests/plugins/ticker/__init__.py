"""A test plugin with scheduled tasks that record each run (for tests of real processes)."""
