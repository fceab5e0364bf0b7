from django.contrib import admin
from django.urls import path

from backstage_core.http.urls import backend_urlpatterns
from tests.backend import backend

urlpatterns = backend_urlpatterns(backend, extra=[path("admin/", admin.site.urls)])
