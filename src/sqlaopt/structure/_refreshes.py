"""The small table that records when each materialized view was last refreshed."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Float,
    MetaData,
    String,
    Table,
    inspect,
    select,
    update,
)
from sqlalchemy.dialects import mysql, postgresql, sqlite

from ._common import dialect_family

__all__ = ["REFRESHES", "ensure_row", "ensure_table", "forget", "read", "record"]

_PRECISE = DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")

REFRESHES = Table(
    "sqlaopt_refreshes",
    MetaData(),
    Column("name", String(63), primary_key=True),
    Column("refreshed_at", _PRECISE, nullable=True, comment="UTC; NULL: never refreshed"),
    Column("seconds", Float, nullable=True),
)
"""``sqlaopt_refreshes(name, refreshed_at, seconds)``: one row per materialized view, the UTC
time its last refresh started (its data is at least that fresh) and how long it took."""


def ensure_table(conn: Connection) -> None:
    REFRESHES.create(conn, checkfirst=True)


def _upsert(conn: Connection, values: dict[str, Any], update_columns: tuple[str, ...]) -> None:
    family = dialect_family(conn.dialect)
    statement: Any
    if family == "mysql":
        statement = mysql.insert(REFRESHES).values(values)
        if update_columns:
            statement = statement.on_duplicate_key_update(
                {c: statement.inserted[c] for c in update_columns}
            )
        else:
            statement = statement.prefix_with("IGNORE")
    else:
        dialect_insert = postgresql.insert if family == "postgresql" else sqlite.insert
        statement = dialect_insert(REFRESHES).values(values)
        if update_columns:
            statement = statement.on_conflict_do_update(
                index_elements=["name"], set_={c: statement.excluded[c] for c in update_columns}
            )
        else:
            statement = statement.on_conflict_do_nothing(index_elements=["name"])
    conn.execute(statement)


def ensure_row(conn: Connection, name: str) -> None:
    """The view's row exists (never refreshed if it was missing)."""
    _upsert(conn, {"name": name, "refreshed_at": None, "seconds": None}, ())


def record(conn: Connection, name: str, started: dt.datetime | None, seconds: float | None) -> None:
    _upsert(conn, {"name": name, "refreshed_at": started, "seconds": seconds},
            ("refreshed_at", "seconds"))


def read(conn: Connection, name: str, *, lock: bool = False) -> dt.datetime | None:
    """When ``name`` was last refreshed (naive UTC), or None. ``lock`` holds the view's row
    until the transaction ends, so one refresher at a time decides whether to refresh (a
    no-op UPDATE on SQLite, whose locking is per database)."""
    if lock and conn.dialect.name == "sqlite":
        conn.execute(update(REFRESHES).where(REFRESHES.c.name == name).values(name=name))
    query = select(REFRESHES.c.refreshed_at).where(REFRESHES.c.name == name)
    if lock and conn.dialect.name != "sqlite":
        query = query.with_for_update()
    value = conn.scalar(query)
    return value if isinstance(value, dt.datetime) else None


def forget(conn: Connection, name: str) -> None:
    if inspect(conn).has_table(REFRESHES.name):
        conn.execute(REFRESHES.delete().where(REFRESHES.c.name == name))
