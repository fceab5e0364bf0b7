"""Tables the backend system keeps in each plugin's own database (not in ``default``)."""

from django.db import models


class SchedulerTask(models.Model):
    """A scheduled task's row in a plugin's database: Backstage's ``backstage_backend_tasks__tasks``.

    Unmanaged: the scheduler creates the table in each plugin's database when it first needs it,
    and always queries it with ``.using(<plugin alias>)``.
    """

    id = models.CharField(max_length=255, primary_key=True)
    settings_json = models.TextField()
    next_run_start_at = models.DateTimeField(null=True)
    current_run_ticket = models.CharField(max_length=64, null=True)  # noqa: DJ001 - NULL is "not running"
    current_run_started_at = models.DateTimeField(null=True)
    current_run_expires_at = models.DateTimeField(null=True)
    last_run_error_json = models.TextField(null=True)  # noqa: DJ001 - NULL is "no error"
    last_run_ended_at = models.DateTimeField(null=True)

    class Meta:
        managed = False
        db_table = "backstage_backend_tasks__tasks"

    def __str__(self) -> str:
        return self.id


class PluginPublicKey(models.Model):
    """A public key a plugin signs its plugin-to-plugin tokens with: ``backstage_backend_public_keys__keys``.

    Unmanaged, like :class:`SchedulerTask`: created in each plugin's database on first use. The
    private half never leaves the process that made it.
    """

    id = models.CharField(max_length=255, primary_key=True)
    key = models.TextField()
    expires_at = models.CharField(max_length=64)

    class Meta:
        managed = False
        db_table = "backstage_backend_public_keys__keys"

    def __str__(self) -> str:
        return self.id
