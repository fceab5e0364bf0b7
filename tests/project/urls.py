from backstage_core.http.urls import backend_urlpatterns
from tests.project.backend import backend

urlpatterns = backend_urlpatterns(backend)
