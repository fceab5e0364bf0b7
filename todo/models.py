"""A todo, optionally about a catalog entity. Lives in the todo plugin's own database."""

import uuid

from django.db import models
from django.utils import timezone


class Todo(models.Model):
    TITLE_MAX_LENGTH = 1000
    ENTITY_REF_MAX_LENGTH = 255

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    title = models.CharField(max_length=TITLE_MAX_LENGTH)
    # NULL is "no entity" (the API leaves entityRef out); "" is a value a client may send.
    entity_ref = models.CharField(max_length=ENTITY_REF_MAX_LENGTH, null=True, blank=True)  # noqa: DJ001
    # Kept to the microsecond so that newest-first is creation order; the API shows milliseconds.
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    completed = models.BooleanField(default=False)
    # The user entity ref of whoever created it, when a user did (NULL for services and anonymous).
    created_by = models.CharField(max_length=ENTITY_REF_MAX_LENGTH, null=True, blank=True)  # noqa: DJ001

    class Meta:
        db_table = "todos"
        ordering = ["-created_at", "-id"]
        # Newest first, with the id as a deterministic tiebreak, is each index read backwards
        # (every engine here scans a B-tree either way). Ascending, a new todo goes at the right
        # edge of each index, where B-trees append cheaply; descending put it at the left edge,
        # where each split rebalances siblings (SQLite: 8.8 -> 6.4 pages written per insert).
        # The entity and creator indexes hold only the todos that have one: no query looks for
        # NULL there (`entity_ref = X` and `created_by IN (...)` rule it out), so a todo without
        # them writes two B-trees fewer (SQLite: 6.5 -> 5.2 pages per insert without a creator).
        # MySQL and MariaDB have no partial indexes: they index every row, as before.
        indexes = [
            # The list, and ?entityRef=.
            models.Index(fields=["created_at", "id"], name="todos_newest_first"),
            models.Index(
                fields=["entity_ref", "created_at", "id"],
                name="todos_entity_newest_first",
                condition=models.Q(entity_ref__isnull=False),
            ),
            # What permission conditions on the creator filter by.
            models.Index(
                fields=["created_by", "created_at", "id"],
                name="todos_creator_newest_first",
                condition=models.Q(created_by__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return self.title
