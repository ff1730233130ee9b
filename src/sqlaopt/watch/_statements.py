"""``slow_statements()``: the statements the database spent its time on, from its own counters.

PostgreSQL: the ``pg_stat_statements`` view of the current database. Its time columns depend
on the extension version, not the server version (a database upgraded in place keeps its old
extension version until ``ALTER EXTENSION ... UPDATE``): ``total_time``/``mean_time`` up to
1.7 (PostgreSQL 12), ``total_exec_time``/``mean_exec_time`` from 1.8 (PostgreSQL 13; 14
ships 1.9, 15 and 16 ship 1.10, 17 ships 1.11). From 1.9 only top-level statements are
read (with ``track = all`` a function's inner statements are counted inside their caller).

MariaDB/MySQL: ``performance_schema.events_statements_summary_by_digest`` rows of the
current schema (timers are in picoseconds).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Connection, text

from .._bind import Bind, connection_for
from .._names import did_you_mean
from ._errors import NotEnabledError, WatchError
from ._format import Tabular, milliseconds, rows_table, shorten
from ._normalize import normalize
from ._server import Extension, kind, mysql_variable, require_pg_extension
from ._tooling import tooling

__all__ = ["ORDERS", "SlowStatements", "StatementStat", "pg_time_columns", "slow_statements"]

Order = Literal["total", "mean", "calls", "rows"]
#: What :func:`slow_statements` can sort by.
ORDERS: tuple[str, ...] = ("total", "mean", "calls", "rows")


@dataclass(frozen=True)
class StatementStat:
    """One statement shape and what the database counted for it.

    ``text`` is the normalised statement (see :func:`normalize`); ``sql`` the text the
    database reports (PostgreSQL's runs with ``$1`` parameters: ``PREPARE`` takes it).
    ``total_ms`` and ``mean_ms`` are execution times, ``rows`` rows returned or changed.
    Entries whose normalised text is the same (an ``IN`` list of another length, another
    user) are merged.
    """

    text: str
    sql: str
    calls: int
    total_ms: float
    mean_ms: float
    rows: int
    id: str


@dataclass(frozen=True)
class SlowStatements(Tabular):
    """The top statements of the current database, by ``order_by``; ``since`` is when the
    counters were last reset, when the server says."""

    source: str
    order_by: str
    statements: tuple[StatementStat, ...]
    since: dt.datetime | None = None

    def table(self, width: int = 90) -> str:
        """A plain-text table, statements cut to ``width`` characters."""
        header = ("total", "mean", "calls", "rows", "statement")
        rows = [
            (milliseconds(s.total_ms), milliseconds(s.mean_ms), f"{s.calls:,}", f"{s.rows:,}",
             shorten(s.text, width))
            for s in self.statements
        ]
        since = f", since {self.since:%Y-%m-%d %H:%M}" if self.since else ""
        return f"slow statements ({self.source}, by {self.order_by} time{since}):\n" + rows_table(
            header, rows
        )



@tooling
def slow_statements(bind: Bind, *, order_by: str = "total", limit: int = 20) -> SlowStatements:
    """The ``limit`` statements of the current database with the most ``order_by``
    (``total`` time, ``mean`` time, ``calls`` or ``rows``).

    PostgreSQL needs ``pg_stat_statements`` (preloaded, and created in this database);
    MariaDB/MySQL need ``performance_schema = ON``. Otherwise :class:`NotEnabledError` says
    how to enable it. Reads only; never resets anything.
    """
    if order_by not in ORDERS:
        raise WatchError(
            f"order_by={order_by!r} is not one of {', '.join(ORDERS)}"
            f"{did_you_mean(str(order_by), ORDERS)}"
        )
    if not isinstance(limit, int) or limit < 1:
        raise WatchError(f"limit must be a positive int, not {limit!r}")
    with connection_for(bind) as conn:
        server = kind(conn)
        if server == "postgresql":
            return _postgresql(conn, order_by, limit)
        if server in ("mysql", "mariadb"):
            return _performance_schema(conn, order_by, limit)
        raise NotEnabledError(
            f"{server} keeps no statement statistics",
            "Count statements in the application instead: sqlaopt.count_queries()",
        )


def pg_time_columns(version: str) -> tuple[str, str]:
    """The total and mean execution time columns of ``pg_stat_statements`` ``version``."""
    return ("total_exec_time", "mean_exec_time") if _version(version) >= (1, 8) else (
        "total_time", "mean_time")


def _version(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def _postgresql(conn: Connection, order_by: str, limit: int) -> SlowStatements:
    extension = require_pg_extension(
        conn, "pg_stat_statements", preload=True, purpose="Reading slow statements"
    )
    total, _mean = pg_time_columns(extension.version)  # means are recomputed after merging
    toplevel = " AND toplevel" if _version(extension.version) >= (1, 9) else ""
    query = text(
        f"SELECT queryid::text AS id, query, calls, {total} AS total_ms, rows AS row_count "
        f"FROM {extension.qualified(conn, 'pg_stat_statements')} "
        "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
        f"{toplevel} AND query IS NOT NULL"
    )
    rows = [dict(row) for row in conn.execute(query).mappings()]
    source = f"pg_stat_statements {extension.version}"
    return SlowStatements(source, order_by, _top(rows, order_by, limit), _pg_since(conn, extension))


def _pg_since(conn: Connection, extension: Extension) -> dt.datetime | None:
    if _version(extension.version) < (1, 9):
        return None  # pg_stat_statements_info arrived in 1.9
    info = extension.qualified(conn, "pg_stat_statements_info")
    value = conn.execute(text(f"SELECT stats_reset FROM {info}")).scalar()
    return value if isinstance(value, dt.datetime) else None


_DIGESTS = text(
    "SELECT DIGEST AS id, DIGEST_TEXT AS query, COUNT_STAR AS calls, "
    "SUM_TIMER_WAIT / 1e9 AS total_ms, SUM_ROWS_SENT + SUM_ROWS_AFFECTED AS row_count "
    "FROM performance_schema.events_statements_summary_by_digest "
    "WHERE SCHEMA_NAME = DATABASE() AND DIGEST_TEXT IS NOT NULL"
)


def _performance_schema(conn: Connection, order_by: str, limit: int) -> SlowStatements:
    require_performance_schema(conn, "Reading slow statements")
    rows = [dict(row) for row in conn.execute(_DIGESTS).mappings()]
    return SlowStatements("performance_schema", order_by, _top(rows, order_by, limit))


def require_performance_schema(conn: Connection, purpose: str) -> None:
    """:class:`NotEnabledError` unless ``performance_schema`` is on with digests enabled."""
    if (mysql_variable(conn, "performance_schema") or "OFF").upper() != "ON":
        raise NotEnabledError(
            f"{purpose} needs performance_schema, which is OFF on this server",
            "To enable it: add performance_schema = ON under [mysqld] in the server's "
            "configuration (Debian: /etc/mysql/mariadb.conf.d/99-performance-schema.cnf) and "
            "restart the server; it cannot be switched on at runtime",
        )
    consumer = conn.execute(text(
        "SELECT ENABLED FROM performance_schema.setup_consumers WHERE NAME = 'statements_digest'"
    )).scalar()
    if str(consumer).upper() != "YES":
        raise NotEnabledError(
            f"{purpose} needs the statements_digest consumer, which is disabled",
            "To enable it: UPDATE performance_schema.setup_consumers SET ENABLED = 'YES' "
            "WHERE NAME = 'statements_digest'",
        )


def _top(rows: Iterable[dict[str, Any]], order_by: str, limit: int) -> tuple[StatementStat, ...]:
    merged: dict[str, dict[str, Any]] = {}
    for row in rows:
        shape = normalize(str(row["query"]))
        entry = merged.setdefault(
            shape, {"calls": 0, "total": 0.0, "rows": 0, "best": -1.0, "sql": "", "id": ""}
        )
        total = float(row["total_ms"] or 0)
        entry["calls"] += int(row["calls"] or 0)
        entry["total"] += total
        entry["rows"] += int(row["row_count"] or 0)
        if total > entry["best"]:  # show the text and id of the entry that cost the most
            entry.update(best=total, sql=str(row["query"]), id=str(row["id"]))
    stats = [
        StatementStat(
            text=shape,
            sql=e["sql"],
            calls=e["calls"],
            total_ms=e["total"],
            mean_ms=e["total"] / e["calls"] if e["calls"] else 0.0,
            rows=e["rows"],
            id=e["id"],
        )
        for shape, e in merged.items()
    ]
    key = {"total": "total_ms", "mean": "mean_ms", "calls": "calls", "rows": "rows"}[order_by]
    stats.sort(key=lambda s: (-getattr(s, key), s.text))
    return tuple(stats[:limit])
