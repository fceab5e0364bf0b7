from django.apps import AppConfig


class BetaConfig(AppConfig):
    name = "tests.plugins.beta"
    label = "beta"
