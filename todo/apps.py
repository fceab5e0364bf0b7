"""The todo plugin's Django app."""

from django.apps import AppConfig


class TodoConfig(AppConfig):
    name = "todo"
    verbose_name = "Todos"
    default_auto_field = "django.db.models.BigAutoField"
