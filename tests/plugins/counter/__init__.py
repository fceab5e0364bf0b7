"""A test plugin that uses the cache on every request (for tests of cache outages)."""
