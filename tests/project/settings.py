"""Settings of the test project run in real processes (manage.py runserver, migrate)."""

from pathlib import Path

from backstage_core.conf import django_settings
from tests.project.backend import backend

BASE_DIR = Path(__file__).resolve().parents[2]

globals().update(
    django_settings(backend, base_dir=BASE_DIR, backend_path="tests.project.backend:backend")
)

ROOT_URLCONF = "tests.project.urls"

# The test plugins alpha and beta share a table name on purpose (in separate databases).
SILENCED_SYSTEM_CHECKS = [*globals()["SILENCED_SYSTEM_CHECKS"], "models.W035"]
WSGI_APPLICATION = "tests.project.wsgi.application"
