"""The auth plugin: signs user tokens and publishes the keys that verify them.

    backend.add("backstage_core.plugins.auth")

Like Backstage's auth backend with its guest provider (``auth.providers.guest``), the only one
included: in development it signs tokens for a guest user, elsewhere only when
``dangerouslyAllowOutsideDevelopment`` is set. ``manage.py issue_token`` signs one for scripts.
"""

from backstage_core.plugins.auth.plugin import auth_plugin

default = auth_plugin

__all__ = ["auth_plugin", "default"]
