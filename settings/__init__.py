"""Django settings, derived from app-config.yaml by the backend (see backstage_core.conf)."""

from pathlib import Path

from backstage_core.conf import django_settings
from settings.backend import backend

BASE_DIR = Path(__file__).resolve().parent.parent

globals().update(
    django_settings(backend, base_dir=BASE_DIR, backend_path="settings.backend:backend")
)

ROOT_URLCONF = "settings.urls"
WSGI_APPLICATION = "settings.wsgi.application"
