pytest_plugins = ["backstage_core.testing.pytest_plugin"]
