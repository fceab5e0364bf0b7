"""The auth plugin's tables, in its own database: Backstage's ``signing_keys`` and ``user_info``."""

from django.db import models


class SigningKey(models.Model):
    """The public half of a key that signs user tokens; listed in the JWKS while tokens live."""

    kid = models.CharField(max_length=255, primary_key=True)
    created_at = models.DateTimeField(auto_now_add=True)
    key = models.TextField(help_text="The public JWK, as JSON")

    class Meta:
        db_table = "signing_keys"
        ordering = ["created_at"]

    def __str__(self) -> str:
        return self.kid


class UserInfo(models.Model):
    """The claims a user was signed in with (their ownership refs), for ``/v1/userinfo``."""

    user_entity_ref = models.CharField(max_length=255, primary_key=True)
    user_info = models.TextField(help_text='{"claims": {"sub": ..., "ent": [...]}}, as JSON')
    updated_at = models.DateTimeField(auto_now=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "user_info"
        verbose_name = "user info"
        verbose_name_plural = "user info"

    def __str__(self) -> str:
        return self.user_entity_ref
