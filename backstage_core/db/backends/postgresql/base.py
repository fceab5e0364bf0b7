"""PostgreSQL (psycopg 3) with connections from the process-wide budget."""

from __future__ import annotations

import contextlib
import os
import select
from typing import Any

from django.db.backends.postgresql.base import DatabaseWrapper as PostgresWrapper
from django.db.backends.postgresql.psycopg_any import IsolationLevel

from backstage_core.db.backends.pooled import PooledConnectionMixin


class DatabaseWrapper(PooledConnectionMixin, PostgresWrapper):
    def _after_checkout(self, connection: Any) -> None:
        level = self.settings_dict["OPTIONS"].get("isolation_level")
        self.isolation_level = (
            IsolationLevel(level) if level is not None else IsolationLevel.READ_COMMITTED
        )

    def _raw_usable(self, connection: Any) -> bool:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
        except self.Database.Error:
            return False
        return True

    @staticmethod
    def _raw_close(connection: Any) -> None:
        """Close, and wait (up to a second) until the server has let the connection go.

        PostgreSQL ends a backend a moment after the client says goodbye; until then it still counts
        against ``max_connections``. Waiting for the server to close its end keeps the number of
        server connections within the budget, not just the number of client ones.
        """
        try:
            watch = os.dup(connection.pgconn.socket)
        except Exception:  # already closed or broken: nothing to wait for
            connection.close()
            return
        try:
            connection.close()
            if select.select([watch], [], [], 1.0)[0]:
                with contextlib.suppress(OSError):
                    os.read(watch, 1)
        finally:
            os.close(watch)

    def _raw_reusable(self, connection: Any) -> bool:
        from psycopg.pq import TransactionStatus

        return (
            not connection.closed and connection.info.transaction_status == TransactionStatus.IDLE
        )
