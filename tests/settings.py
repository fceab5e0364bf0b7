"""Test settings: the project's settings, derived from the test backend and its config."""

import os
from pathlib import Path

from backstage_core.conf import django_settings
from tests.backend import backend

os.environ.setdefault("DJANGO_ENV", "test")  # Backstage's tests run with NODE_ENV=test
BASE_DIR = Path(__file__).resolve().parent.parent

globals().update(django_settings(backend, base_dir=BASE_DIR, backend_path="tests.backend:backend"))

ROOT_URLCONF = "tests.urls"

# The test plugins alpha and beta share a table name on purpose (in separate databases).
SILENCED_SYSTEM_CHECKS = [*globals()["SILENCED_SYSTEM_CHECKS"], "models.W035"]
