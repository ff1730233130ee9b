"""``index_health()``: every index with its size and use, and what to drop, rebuild or add.

Flags, each with its reason and the exact DDL to act on it (never run here):

- ``invalid``: a failed or interrupted ``CREATE INDEX CONCURRENTLY`` (PostgreSQL).
- ``duplicate``: the same key, method, operator classes, collations, predicate and INCLUDE
  list as another index; the one kept is the one backing a constraint, else the more used.
- ``redundant``: its key is a left prefix of another valid index's key (same method, same
  predicate, its INCLUDE columns within the other's columns); unique and constraint indexes
  are never redundant (they enforce something).
- ``unused``: never scanned since the statistics were reset, over a window of at least
  ``min_window``; not backing a primary key, unique or exclusion constraint, not unique, and
  not created during the window (PostgreSQL knows that only with ``track_commit_timestamp =
  on``; otherwise the reason says the age is unknown).
- ``seq_scans``: a table of at least ``min_rows`` rows read mostly by sequential scans
  (PgHero's rule: index scans under 95% of all scans); the action is an index, which
  :func:`advise` works out from the statements.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Connection, text

from .._bind import Bind, connection_for
from ._errors import NotEnabledError, WatchError
from ._format import Tabular, duration, rows_table
from ._server import kind, mysql_variable, settings
from ._tooling import tooling

__all__ = ["IndexFinding", "IndexHealth", "IndexUsage", "index_health"]

FindingKind = Literal["invalid", "duplicate", "redundant", "unused", "seq_scans"]
#: PgHero's threshold: a table whose scans are under this share index scans reads too much.
INDEX_SCAN_SHARE = 0.95


@dataclass(frozen=True)
class IndexUsage:
    """One index: where, how big, how often scanned since the statistics were reset.

    ``constraint`` is ``p`` (primary key), ``u`` (unique constraint), ``x`` (exclusion) or
    None; ``scans`` is None when the server keeps no per-index counters; ``created`` is
    known on PostgreSQL with ``track_commit_timestamp = on`` only. ``parts`` are the key
    parts as the database spells them, ``include`` the covering columns.
    """

    schema: str
    table: str
    name: str
    method: str
    size_bytes: int
    scans: int | None
    unique: bool
    constraint: str | None
    valid: bool
    definition: str
    parts: tuple[str, ...] = ()
    include: tuple[str, ...] = ()
    predicate: str | None = None
    created: dt.datetime | None = None
    comparable: tuple[str, ...] = ()
    """Per key part, what must also match for two indexes to be interchangeable (operator
    class, collation, ordering); empty when the server has nothing beyond the name."""

    @property
    def enforces(self) -> bool:
        """True when dropping it would drop a guarantee (unique, constraint)."""
        return self.unique or self.constraint is not None


@dataclass(frozen=True)
class IndexFinding:
    """A flag on an index or table: ``kind``, why, and the DDL that acts on it."""

    kind: FindingKind
    table: str
    index: str | None
    reason: str
    ddl: tuple[str, ...] = ()
    size_bytes: int = 0


@dataclass(frozen=True)
class IndexHealth(Tabular):
    """The outcome of :func:`index_health`."""

    server: str
    stats_since: dt.datetime | None
    indexes: tuple[IndexUsage, ...]
    findings: tuple[IndexFinding, ...]
    notes: tuple[str, ...] = ()

    def flagged(self, kind: str) -> tuple[IndexFinding, ...]:
        """The findings of one kind."""
        return tuple(f for f in self.findings if f.kind == kind)

    def table(self) -> str:
        """Plain text: the indexes, then each finding with its DDL."""
        since = (f"{self.stats_since:%Y-%m-%d %H:%M}" if self.stats_since else
                 "never reset" if self.server == "postgresql" else "(none kept)")
        rows = [
            (f"{i.table}.{i.name}", _size(i.size_bytes), "-" if i.scans is None else f"{i.scans:,}",
             _role(i))
            for i in self.indexes
        ]
        lines = [f"index health ({self.server}, statistics since {since}):",
                 rows_table(("index", "size", "scans", "role"), rows), "", "findings:"]
        for finding in self.findings:
            where = finding.index or finding.table
            lines.append(f"  [{finding.kind}] {where}: {finding.reason}")
            lines += [f"      {statement}" for statement in finding.ddl]
        if not self.findings:
            lines.append("  (none)")
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)



def _size(size: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024  # type: ignore[assignment]
    return f"{size} B"


def _role(index: IndexUsage) -> str:
    role = {"p": "primary key", "u": "unique constraint", "x": "exclusion constraint"}
    text_ = role.get(index.constraint or "", "unique" if index.unique else "")
    return text_ if index.valid else f"{text_} INVALID".strip()


@tooling
def index_health(
    bind: Bind,
    *,
    min_window: dt.timedelta = dt.timedelta(days=7),
    min_rows: int = 10_000,
) -> IndexHealth:
    """Every index of the current database (PostgreSQL: every schema but the system ones;
    MariaDB/MySQL: the current schema) with its flags.

    ``min_window``: unused indexes are flagged only when the statistics cover at least this
    long. ``min_rows``: tables smaller than this are never flagged for sequential scans.
    Reads only.
    """
    if not isinstance(min_window, dt.timedelta) or min_window < dt.timedelta(0):
        raise WatchError(f"min_window must be a non-negative timedelta, not {min_window!r}")
    if not isinstance(min_rows, int) or min_rows < 0:
        raise WatchError(f"min_rows must be a non-negative int, not {min_rows!r}")
    with connection_for(bind) as conn:
        server = kind(conn)
        if server == "postgresql":
            return _postgresql(conn, min_window, min_rows)
        if server in ("mysql", "mariadb"):
            return _mysql(conn, server, min_window, min_rows)
    raise NotEnabledError(
        f"index_health() reads PostgreSQL, MariaDB and MySQL statistics, not {server}'s",
        "Check indexes against your spec instead: sqlaopt.indexes.check()",
    )


# --- flags shared by every server ------------------------------------------------------------


def findings_for(
    indexes: Sequence[IndexUsage], window_start: dt.datetime | None, now: dt.datetime,
    min_window: dt.timedelta, ddl: _Ddl,
) -> list[IndexFinding]:
    """The invalid, duplicate, redundant and unused flags of ``indexes``."""
    found: list[IndexFinding] = []
    flagged: set[tuple[str, str]] = set()

    def add(finding: IndexFinding, index: IndexUsage) -> None:
        found.append(finding)
        flagged.add((index.schema, index.name))

    for index in indexes:
        if not index.valid:
            cause = (" (a unique build fails on duplicate values: remove them first)"
                     if index.unique else "")
            add(IndexFinding("invalid", index.table, index.name,
                             "INVALID: a failed or interrupted CREATE INDEX CONCURRENTLY; it "
                             f"slows every write and serves no query. Rebuild it{cause}, or "
                             "drop it", ddl.rebuild(index), index.size_bytes), index)
    valid = [i for i in indexes if i.valid]
    for index, kept in _duplicates(valid):
        if (index.schema, index.name) not in flagged:
            add(IndexFinding("duplicate", index.table, index.name,
                             f"same definition as {kept.name}, which is kept"
                             f"{' (it backs a constraint)' if kept.enforces else ''}",
                             ddl.drop(index), index.size_bytes), index)
    # the wider index must be one that stays (not a duplicate about to be dropped)
    staying = [i for i in valid if (i.schema, i.name) not in flagged]
    for index, wider in _redundant(valid, staying):
        if (index.schema, index.name) not in flagged:
            add(IndexFinding("redundant", index.table, index.name,
                             f"its key ({', '.join(index.parts)}) is a left prefix of "
                             f"{wider.name} ({', '.join(wider.parts)}), which serves the same "
                             "lookups", ddl.drop(index), index.size_bytes), index)
    for index in valid:
        if (index.schema, index.name) in flagged:
            continue
        reason = unused_reason(index, window_start, now, min_window)
        if reason is not None:
            add(IndexFinding("unused", index.table, index.name, reason, ddl.drop(index),
                             index.size_bytes), index)
    return found


def unused_reason(
    index: IndexUsage, window_start: dt.datetime | None, now: dt.datetime,
    min_window: dt.timedelta,
) -> str | None:
    """Why ``index`` counts as unused, or None when it does not (or cannot be told)."""
    if index.scans != 0 or index.enforces:
        return None
    if window_start is not None and now - window_start < min_window:
        return None  # too short a window to call anything unused
    if index.created is not None and window_start is not None and index.created > window_start:
        return None  # built during the window: it has not had the whole window
    since = f"since {window_start:%Y-%m-%d}" if window_start else "since statistics began"
    reason = f"never scanned {since}; it backs no constraint"
    if index.created is None:
        reason += (
            "; its age is unknown (PostgreSQL records it only with track_commit_timestamp = "
            "on): make sure it existed for the whole window"
        )
    return reason


def _equivalence(index: IndexUsage) -> tuple[Any, ...]:
    return (index.schema, index.table, index.method, index.parts, index.comparable,
            index.predicate, frozenset(index.include))


def _keeper_rank(index: IndexUsage) -> tuple[Any, ...]:
    return (not index.constraint, not index.unique, -(index.scans or 0), index.name)


def _duplicates(indexes: Iterable[IndexUsage]) -> list[tuple[IndexUsage, IndexUsage]]:
    groups: dict[tuple[Any, ...], list[IndexUsage]] = {}
    for index in indexes:
        groups.setdefault(_equivalence(index), []).append(index)
    pairs = []
    for group in groups.values():
        ranked = sorted(group, key=_keeper_rank)
        pairs += [(extra, ranked[0]) for extra in ranked[1:] if not extra.constraint]
    return pairs


def _redundant(indexes: Sequence[IndexUsage],
               wider: Sequence[IndexUsage]) -> list[tuple[IndexUsage, IndexUsage]]:
    pairs = []
    for index in indexes:
        if index.enforces:
            continue
        for other in wider:
            if _is_left_prefix(index, other):
                pairs.append((index, other))
                break
    return pairs


def _is_left_prefix(index: IndexUsage, other: IndexUsage) -> bool:
    same_place = (index.schema, index.table, index.method, index.predicate) == (
        other.schema, other.table, other.method, other.predicate)
    if not same_place or other is index or len(index.parts) >= len(other.parts):
        return False
    size = len(index.parts)
    if other.parts[:size] != index.parts or other.comparable[:size] != index.comparable:
        return False
    return set(index.include) <= set(other.parts) | set(other.include)


# --- per-server DDL --------------------------------------------------------------------------


class _Ddl:
    """The statements that act on a flagged index, in the server's own spelling."""

    def __init__(self, conn: Connection, server: str) -> None:
        self.preparer = conn.dialect.identifier_preparer
        self.server = server

    def _name(self, index: IndexUsage) -> str:
        return f"{self.preparer.quote(index.schema)}.{self.preparer.quote(index.name)}"

    def drop(self, index: IndexUsage) -> tuple[str, ...]:
        if self.server == "postgresql":
            return (f"DROP INDEX CONCURRENTLY IF EXISTS {self._name(index)};",)
        table = f"{self.preparer.quote(index.table)}"
        return (f"ALTER TABLE {table} DROP INDEX {self.preparer.quote(index.name)}, "
                "ALGORITHM=INPLACE, LOCK=NONE;",)

    def rebuild(self, index: IndexUsage) -> tuple[str, ...]:
        return (f"REINDEX INDEX CONCURRENTLY {self._name(index)};",
                f"-- or, if nothing needs it: DROP INDEX CONCURRENTLY IF EXISTS "
                f"{self._name(index)};")


def seq_scan_finding(
    table: str, seq_scan: int, seq_rows: int, idx_scan: int, live_rows: int, min_rows: int
) -> IndexFinding | None:
    """The ``seq_scans`` flag for a table's counters, or None."""
    scans = seq_scan + idx_scan
    if live_rows < min_rows or seq_scan == 0 or idx_scan >= INDEX_SCAN_SHARE * scans:
        return None
    share = idx_scan / scans
    return IndexFinding(
        "seq_scans", table, None,
        f"{seq_scan:,} sequential scans read {seq_rows:,} rows ({seq_rows // seq_scan:,} a "
        f"scan) of its {live_rows:,}; index scans are {share:.0%} of its scans (PgHero "
        f"flags under {INDEX_SCAN_SHARE:.0%}). Find the index with sqlaopt.watch.advise() "
        "(sqlaopt db advise)",
    )


# --- PostgreSQL ------------------------------------------------------------------------------

_PG_INDEXES = text(
    """
    SELECT n.nspname AS schema_name, t.relname AS table_name, c.relname AS index_name,
           am.amname AS method, pg_relation_size(i.indexrelid) AS size_bytes,
           s.idx_scan AS scans, i.indisunique AS is_unique, i.indisvalid AS is_valid,
           con.contype AS constraint_type, pg_get_indexdef(i.indexrelid) AS definition,
           pg_get_expr(i.indpred, i.indrelid, true) AS predicate, i.indnkeyatts AS nkey,
           ARRAY(SELECT pg_get_indexdef(i.indexrelid, k, true)
                 FROM generate_series(1, i.indnatts) AS k ORDER BY k) AS parts,
           i.indclass::text AS classes, i.indcollation::text AS collations,
           i.indoption::text AS options, c.xmin::text AS created_xid
    FROM pg_index i
    JOIN pg_class c ON c.oid = i.indexrelid AND c.relkind = 'i'
    JOIN pg_class t ON t.oid = i.indrelid
    JOIN pg_namespace n ON n.oid = t.relnamespace
    JOIN pg_am am ON am.oid = c.relam
    LEFT JOIN pg_stat_user_indexes s ON s.indexrelid = i.indexrelid
    LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid
         AND con.contype IN ('p', 'u', 'x')
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
    ORDER BY n.nspname, t.relname, c.relname
    """
)
_PG_TABLES = text(
    """
    SELECT relname, seq_scan, seq_tup_read, COALESCE(idx_scan, 0) AS idx_scan, n_live_tup
    FROM pg_stat_user_tables ORDER BY schemaname, relname
    """
)


def _pg_index(row: Any, created: dt.datetime | None) -> IndexUsage:
    nkey = int(row["nkey"])
    parts = tuple(str(p) for p in row["parts"])
    per_part = list(zip(*(str(row[k]).split() for k in ("classes", "collations", "options")),
                        strict=False))
    return IndexUsage(
        schema=row["schema_name"], table=row["table_name"], name=row["index_name"],
        method=row["method"], size_bytes=int(row["size_bytes"]),
        scans=None if row["scans"] is None else int(row["scans"]),
        unique=bool(row["is_unique"]), constraint=row["constraint_type"],
        valid=bool(row["is_valid"]), definition=row["definition"],
        parts=parts[:nkey], include=parts[nkey:], predicate=row["predicate"],
        created=created, comparable=tuple(" ".join(p) for p in per_part[:nkey]),
    )


def _pg_created(conn: Connection, xids: Iterable[str], tracked: bool) -> dict[str, dt.datetime]:
    """Commit times of the transactions that created the indexes, when the server keeps them."""
    if not tracked:
        return {}
    found = {}
    for xid in set(xids):
        value = conn.execute(
            text("SELECT pg_xact_commit_timestamp(CAST(:xid AS xid))"), {"xid": xid}
        ).scalar()
        if isinstance(value, dt.datetime):
            found[xid] = value
    return found


def _postgresql(conn: Connection, min_window: dt.timedelta, min_rows: int) -> IndexHealth:
    rows = list(conn.execute(_PG_INDEXES).mappings())
    tracked = settings(conn, "track_commit_timestamp")["track_commit_timestamp"] == "on"
    created = _pg_created(conn, (str(r["created_xid"]) for r in rows), tracked)
    indexes = tuple(_pg_index(r, created.get(str(r["created_xid"]))) for r in rows)
    since, now = conn.execute(text(
        "SELECT stats_reset, now() FROM pg_stat_database WHERE datname = current_database()"
    )).one()
    findings = findings_for(indexes, since, now, min_window, _Ddl(conn, "postgresql"))
    for table in conn.execute(_PG_TABLES):
        flag = seq_scan_finding(table[0], int(table[1] or 0), int(table[2] or 0),
                                int(table[3] or 0), int(table[4] or 0), min_rows)
        if flag is not None:
            findings.append(flag)
    notes = _pg_notes(since, now, min_window, tracked)
    return IndexHealth("postgresql", since, indexes, tuple(findings), notes)


def _pg_notes(since: dt.datetime | None, now: dt.datetime, min_window: dt.timedelta,
              tracked: bool) -> tuple[str, ...]:
    notes = []
    if since is not None and now - since < min_window:
        notes.append(f"statistics were reset {duration(now - since)} ago, less than the "
                     f"{duration(min_window)} window: no index is called unused yet")
    if not tracked:
        notes.append("track_commit_timestamp is off: index ages are unknown")
    notes.append("counters are this server's own: on a replica, check the primary too")
    return tuple(notes)


# --- MariaDB / MySQL -------------------------------------------------------------------------

_MY_INDEXES = text(
    """
    SELECT s.TABLE_SCHEMA, s.TABLE_NAME, s.INDEX_NAME, s.INDEX_TYPE, s.NON_UNIQUE,
           s.COLUMN_NAME, s.SUB_PART, s.COLLATION
    FROM information_schema.STATISTICS s
    WHERE s.TABLE_SCHEMA = DATABASE()
    ORDER BY s.TABLE_NAME, s.INDEX_NAME, s.SEQ_IN_INDEX
    """
)
_MY_SIZES = text(
    "SELECT table_name, index_name, stat_value * @@innodb_page_size FROM mysql.innodb_index_stats "
    "WHERE database_name = DATABASE() AND stat_name = 'size'"
)
_MY_USAGE = text(
    "SELECT OBJECT_NAME, INDEX_NAME, COUNT_STAR FROM "
    "performance_schema.table_io_waits_summary_by_index_usage "
    "WHERE OBJECT_SCHEMA = DATABASE() AND INDEX_NAME IS NOT NULL"
)


def _mysql(conn: Connection, server: str, min_window: dt.timedelta, min_rows: int) -> IndexHealth:
    grouped: dict[tuple[str, str], list[Any]] = {}
    for row in conn.execute(_MY_INDEXES):
        grouped.setdefault((row[1], row[2]), []).append(row)
    sizes = {(r[0], r[1]): int(r[2] or 0) for r in conn.execute(_MY_SIZES)}
    on = (mysql_variable(conn, "performance_schema") or "OFF").upper() == "ON"
    usage = {(r[0], r[1]): int(r[2]) for r in conn.execute(_MY_USAGE)} if on else {}
    indexes = tuple(
        _my_index(rows, sizes.get(key, 0), usage.get(key) if on else None)
        for key, rows in grouped.items()
    )
    uptime = conn.execute(text("SHOW GLOBAL STATUS LIKE 'Uptime'")).one()
    now = conn.execute(text("SELECT NOW()")).scalar()
    assert isinstance(now, dt.datetime)
    since = now - dt.timedelta(seconds=int(uptime[1])) if on else None
    findings = findings_for(indexes, since, now, min_window, _Ddl(conn, server))
    if on:
        findings += _my_seq_scans(conn, min_rows)
    notes = () if on else (
        "performance_schema is OFF: no index usage or scan counters, so no unused or "
        "sequential-scan flags (duplicates and redundant indexes come from the catalog)",)
    return IndexHealth(server, since, indexes, tuple(findings), notes)


def _my_index(rows: list[Any], size: int, scans: int | None) -> IndexUsage:
    schema, table, name, method, non_unique = rows[0][:5]
    parts = tuple(str(r[5]) + (f"({r[6]})" if r[6] else "") for r in rows)
    unique = not bool(non_unique)
    return IndexUsage(
        schema=schema, table=table, name=name, method=str(method).lower(), size_bytes=size,
        scans=scans, unique=unique,
        constraint="p" if name == "PRIMARY" else "u" if unique else None, valid=True,
        definition=f"{'UNIQUE ' if unique else ''}INDEX {name} ON {table} ({', '.join(parts)})",
        parts=parts, comparable=tuple(str(r[7] or "") for r in rows),
    )


_MY_TABLE_SCANS = text(
    """
    SELECT u.OBJECT_NAME,
           SUM(CASE WHEN u.INDEX_NAME IS NULL THEN u.COUNT_READ ELSE 0 END) AS seq_rows,
           SUM(CASE WHEN u.INDEX_NAME IS NOT NULL THEN u.COUNT_READ ELSE 0 END) AS idx_rows,
           MAX(t.TABLE_ROWS) AS live_rows
    FROM performance_schema.table_io_waits_summary_by_index_usage u
    JOIN information_schema.TABLES t
      ON t.TABLE_SCHEMA = u.OBJECT_SCHEMA AND t.TABLE_NAME = u.OBJECT_NAME
    WHERE u.OBJECT_SCHEMA = DATABASE()
    GROUP BY u.OBJECT_NAME ORDER BY u.OBJECT_NAME
    """
)


def _my_seq_scans(conn: Connection, min_rows: int) -> list[IndexFinding]:
    """performance_schema counts rows, not scans: a table is flagged when rows read without
    an index are over 5% of the rows read (the share PgHero allows in scans)."""
    found = []
    for name, seq, indexed, live in conn.execute(_MY_TABLE_SCANS):
        seq_rows, idx_rows, live_rows = int(seq or 0), int(indexed or 0), int(live or 0)
        if live_rows < min_rows or seq_rows == 0 or idx_rows >= INDEX_SCAN_SHARE * (
                seq_rows + idx_rows):
            continue
        found.append(IndexFinding(
            "seq_scans", name, None,
            f"{seq_rows:,} rows read without an index (about {seq_rows // live_rows:,} full "
            f"reads of its {live_rows:,} rows), {idx_rows:,} through one. EXPLAIN the "
            "statements that read it (sqlaopt.watch.slow_statements() lists them)",
        ))
    return found
