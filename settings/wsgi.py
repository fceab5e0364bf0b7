"""WSGI entry point: ``application`` serves the backend and starts it in the background."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")

from backstage_core.http.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
