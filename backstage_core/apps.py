"""The backend system as a Django app: its management commands, router and middleware."""

from django.apps import AppConfig


class BackstageCoreConfig(AppConfig):
    name = "backstage_core"
    verbose_name = "Backstage backend system"
