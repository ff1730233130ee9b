"""Whether a statement about to run will see the latest committed data.

An entry may be stored only from data at least as new as the versions read before the query
(and served only where the application would see the latest data anyway). That holds for
every statement under READ COMMITTED, READ UNCOMMITTED and autocommit, where each statement
reads the latest committed rows; under REPEATABLE READ and SERIALIZABLE (MySQL and MariaDB's
default) it holds only when no database transaction is open yet, so this statement starts the
snapshot. Drivers that say whether a transaction is open: psycopg 3 and 2, sqlite3/aiosqlite,
asyncpg; with others, such statements run uncached.
"""

from __future__ import annotations

from sqlalchemy import Connection

__all__ = ["autocommit", "fresh", "isolation_level"]

_LATEST_EACH_STATEMENT = frozenset({"READ COMMITTED", "READ UNCOMMITTED", "AUTOCOMMIT"})


def isolation_level(connection: Connection) -> str | None:
    """The connection's isolation level as configured through SQLAlchemy (no round trip)."""
    level = connection.get_execution_options().get("isolation_level")
    if level is None:
        dialect = connection.dialect
        # Both are set once the dialect has initialised on its first connection.
        level = (getattr(dialect, "_on_connect_isolation_level", None)
                 or getattr(dialect, "default_isolation_level", None))
    return level.upper().replace("_", " ") if isinstance(level, str) else None


def autocommit(connection: Connection) -> bool:
    return isolation_level(connection) == "AUTOCOMMIT"


def fresh(connection: Connection) -> bool:
    """Whether the next statement on ``connection`` reads the latest committed data."""
    if isolation_level(connection) in _LATEST_EACH_STATEMENT:
        return True
    return _no_open_transaction(connection.connection.driver_connection)


def _no_open_transaction(driver: object) -> bool:
    status = getattr(getattr(driver, "info", None), "transaction_status", None)
    if status is not None:  # psycopg 3: IDLE = 0
        return int(status) == 0
    flag = getattr(driver, "in_transaction", None)  # sqlite3, aiosqlite
    if isinstance(flag, bool):
        return not flag
    for method in ("is_in_transaction", "get_transaction_status"):  # asyncpg, psycopg2
        probe = getattr(driver, method, None)
        if callable(probe):
            return not probe()
    return False
