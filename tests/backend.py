"""The backend the test settings are derived from: the project's plugins plus the test plugins."""

from pathlib import Path

from backstage_core import config_factory, create_backend

backend = create_backend(
    services=[
        config_factory(argv=["--config", str(Path(__file__).with_name("app-config.test.yaml"))])
    ]
)
backend.add("tests.plugins.alpha.plugin")
backend.add("tests.plugins.beta.plugin")
