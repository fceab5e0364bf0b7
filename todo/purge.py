"""Deleting completed todos past an age, in batches, stopping when the task is aborted."""

from datetime import timedelta
from typing import Any

from django.utils import timezone

from todo.models import Todo

BATCH = 500


def purge_completed(older_than: timedelta, signal: Any = None) -> int:
    """Delete completed todos created before now - ``older_than``; returns how many."""
    cutoff = timezone.now() - older_than
    deleted = 0
    while signal is None or not signal.aborted:
        batch = list(
            Todo.objects.filter(completed=True, created_at__lt=cutoff).values_list("pk", flat=True)[
                :BATCH
            ]
        )
        if not batch:
            break
        deleted += Todo.objects.filter(pk__in=batch).delete()[0]
    return deleted
