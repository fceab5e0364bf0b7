"""The auth plugin's Django app (label ``backstage_auth``: ``auth`` is Django's own)."""

from django.apps import AppConfig


class AuthBackendConfig(AppConfig):
    name = "backstage_core.plugins.auth"
    label = "backstage_auth"
    verbose_name = "Backstage auth"
    default_auto_field = "django.db.models.BigAutoField"
