import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.project.settings")

from backstage_core.http.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
