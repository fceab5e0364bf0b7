"""Django database wrappers whose server connections come from the process-wide budget.

A wrapper takes a connection from :func:`backstage_core.db.pool.budget` when Django connects and
gives it back when Django closes (at the end of each request, as ``CONN_MAX_AGE = 0`` has it), so
one process never holds more than ``backend.database.pool.max`` connections in all.
"""

from __future__ import annotations

from typing import Any

from backstage_core.db.pool import PoolSettings, PoolTimeout, budget

__all__ = ["POOL_KEY", "PooledConnectionMixin"]

POOL_KEY = "BACKSTAGE_POOL"


class PooledConnectionMixin:
    """Mix into a Django ``DatabaseWrapper`` before the engine's class."""

    settings_dict: dict[str, Any]
    connection: Any

    def _budget_key(self) -> str:
        s = self.settings_dict
        search_path = s["OPTIONS"].get("options", "")
        return f"{self.vendor}://{s.get('USER')}@{s.get('HOST')}:{s.get('PORT')}/{s.get('NAME')}?{search_path}"  # type: ignore[attr-defined]

    def _pool_settings(self) -> PoolSettings:
        return PoolSettings(**self.settings_dict.get(POOL_KEY, {}))

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        fresh = super().get_new_connection  # type: ignore[misc]
        try:
            connection = budget(self._pool_settings()).acquire(
                self._budget_key(),
                connect=lambda: fresh(conn_params),
                usable=self._raw_usable,
                close=self._raw_close,
            )
        except PoolTimeout as error:
            raise self.Database.OperationalError(f"connection timeout: {error}") from error  # type: ignore[attr-defined]
        self._after_checkout(connection)
        return connection

    def _after_checkout(self, connection: Any) -> None:
        """Per-wrapper state the engine sets when it opens a connection itself."""

    def _raw_usable(self, connection: Any) -> bool:
        raise NotImplementedError

    def _raw_reusable(self, connection: Any) -> bool:
        raise NotImplementedError

    @staticmethod
    def _raw_close(connection: Any) -> None:
        connection.close()

    def _close(self) -> None:
        if self.connection is None:
            return
        reusable = not getattr(self, "in_atomic_block", False) and self._raw_reusable(
            self.connection
        )
        budget().release(self._budget_key(), self.connection, reusable, self._raw_close)
