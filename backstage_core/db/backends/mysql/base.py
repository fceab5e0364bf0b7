"""MySQL and MariaDB through PyMySQL, with connections from the process-wide budget.

Django's MySQL backend is written for mysqlclient, a C extension that needs MySQL's headers to
build; PyMySQL is the pure-Python driver with the same interface, installed in its place.
"""

from __future__ import annotations

from typing import Any

import pymysql

pymysql.version_info = (2, 2, 7, "final", 0)  # the mysqlclient version Django checks for
pymysql.install_as_MySQLdb()

from django.db.backends.mysql.base import DatabaseWrapper as MySQLWrapper  # noqa: E402

from backstage_core.db.backends.pooled import PooledConnectionMixin  # noqa: E402


class DatabaseWrapper(PooledConnectionMixin, MySQLWrapper):
    def _raw_usable(self, connection: Any) -> bool:
        try:
            connection.ping(reconnect=False)
        except self.Database.Error:
            return False
        return True

    def _raw_reusable(self, connection: Any) -> bool:
        return bool(connection.open) and not self.errors_occurred
