"""Plugins that come with the backend system: ``auth`` (user tokens) and ``permission``."""
