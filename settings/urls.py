"""URL configuration: the backend's generated routes (health, /api/<pluginId>/...) and the admin."""

from django.contrib import admin
from django.urls import path

from backstage_core.http.urls import backend_urlpatterns
from settings.backend import backend

urlpatterns = backend_urlpatterns(backend, extra=[path("admin/", admin.site.urls)])
