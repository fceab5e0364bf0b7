"""A project backend for tests that run real processes: config from --config, as the shipped one."""

from backstage_core import create_backend

backend = create_backend()
backend.add("backstage_core.plugins.auth")
backend.add("backstage_core.plugins.permission")
backend.add("todo")
backend.add("tests.plugins.alpha.plugin")
backend.add("tests.plugins.beta.plugin")
backend.add("tests.plugins.hooks.plugin")
backend.add("tests.plugins.counter.plugin")
backend.add("tests.plugins.ticker.plugin")
