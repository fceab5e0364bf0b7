"""The backend the test settings are derived from: the project's plugins plus the test plugins.

Every plugin added in settings/backend.py is added here too, so its app, models and tests come along.
"""

from pathlib import Path

from backstage_core import BackendFeature, ServiceFactory, config_factory, create_backend
from settings.backend import backend as project_backend

TEST_CONFIG = Path(__file__).with_name("app-config.test.yaml")

backend = create_backend(services=[config_factory(argv=["--config", str(TEST_CONFIG)])])
for feature in project_backend.features:
    if isinstance(feature, BackendFeature) and not isinstance(feature, ServiceFactory):
        backend.add(feature)
backend.add("tests.plugins.alpha.plugin")
backend.add("tests.plugins.beta.plugin")
