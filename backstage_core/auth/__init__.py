"""Tokens: keys, the user, plugin and external-access token handlers, and JWKS.

The services plugins use are ``backstage_core.services.auth``, ``http_auth``, ``user_info`` and
``identity``.
"""
