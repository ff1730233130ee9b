"""Per-dialect rules: what each database gets for an entry, and why.

One function, :func:`dialect_status`, decides for every consumer: the ``ddl_if`` gate on the
attached objects (so ``create_all`` follows it), :func:`~sqlaopt.indexes.ddl`,
:func:`~sqlaopt.indexes.check`, :func:`~sqlaopt.indexes.create` and the result tables. An entry
is never handed to SQLAlchemy for a dialect that would silently drop part of it (a
``postgresql_where`` ignored by MySQL, an INCLUDE list ignored by SQLite): it is either adapted
on purpose and reported, or skipped with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Table
from sqlalchemy.engine import Dialect

from .._names import did_you_mean
from ._errors import IndexSpecError
from ._expressions import is_timezone_aware
from ._spec import DateOf, DateTrunc, Entry, ExclusionSpec, Expression, IndexSpec, TsRange

__all__ = [
    "DIALECTS",
    "DialectStatus",
    "dialect_key",
    "dialect_status",
    "needs_btree_gist",
    "validate_dialect",
]

#: The dialects the rules cover. ``mariadb`` is the MySQL dialect talking to MariaDB.
DIALECTS = ("postgresql", "sqlite", "mysql", "mariadb")

Status = Literal["applied", "adapted", "skipped"]


@dataclass(frozen=True)
class DialectStatus:
    """What one dialect gets for one entry: ``applied`` as declared, ``adapted`` (``detail``
    says what changed and why) or ``skipped`` (``detail`` says why)."""

    status: Status
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.status}: {self.detail}" if self.detail else self.status


def validate_dialect(name: str) -> str:
    """``name`` if it is one of :data:`DIALECTS`, else :class:`IndexSpecError`."""
    if name not in DIALECTS:
        raise IndexSpecError(
            f"unknown dialect {name!r}{did_you_mean(name, DIALECTS)}; use one of "
            f"{', '.join(DIALECTS)}"
        )
    return name


def dialect_key(dialect: Dialect) -> str:
    """The rule set for a SQLAlchemy dialect: MariaDB is told apart from MySQL."""
    if dialect.name in ("mysql", "mariadb"):
        return "mariadb" if getattr(dialect, "is_mariadb", False) else "mysql"
    return dialect.name


def needs_btree_gist(entry: Entry) -> bool:
    """True when a GiST index or constraint keys on a scalar (GiST has no default operator
    class for integers or text without the btree_gist extension)."""
    if isinstance(entry, IndexSpec) and entry.using != "gist":
        return False
    return any(not (isinstance(p, Expression) and p.is_range) for p in entry.key_parts)


def dialect_status(entry: Entry, table: Table, dialect: str) -> DialectStatus:
    """The status of ``entry`` (already resolved to ``table``'s names) on ``dialect``."""
    if isinstance(entry, ExclusionSpec):
        return _exclusion_status(entry, table, dialect)
    if dialect == "postgresql":
        return _postgresql(entry, table)
    if dialect == "sqlite":
        return _sqlite(entry)
    if dialect in ("mysql", "mariadb"):
        return _mysql_family(entry, dialect)
    return DialectStatus("skipped", f"sqlaopt.indexes has no rules for the {dialect} dialect")


def _timezone_notes(entry: Entry, table: Table) -> list[str]:
    notes = []
    for part in entry.key_parts:
        if isinstance(part, (DateOf, DateTrunc)) and is_timezone_aware(table.c[part.column].type):
            helper = "indexed_date" if isinstance(part, DateOf) else "indexed_date_trunc"
            notes.append(
                f"{part.column} is timestamptz, on which {part} is not IMMUTABLE: indexed "
                f"at UTC ({part.column} AT TIME ZONE 'UTC'); query with {helper}()"
            )
        if isinstance(part, TsRange) and is_timezone_aware(table.c[part.start].type):
            notes.append(
                f"{part.start}/{part.end} are timestamptz: tstzrange() instead of tsrange()"
            )
    return notes


def _postgresql(entry: Entry, table: Table) -> DialectStatus:
    adaptations = _timezone_notes(entry, table)
    notes = list(adaptations)
    if needs_btree_gist(entry):
        notes.append("needs the btree_gist extension (created first)")
    return DialectStatus("adapted" if adaptations else "applied", "; ".join(notes))


def _sqlite(entry: IndexSpec) -> DialectStatus:
    if entry.using != "btree":
        return DialectStatus(
            "skipped", f"SQLite has only b-tree indexes; a {entry.using} index cannot be built"
        )
    if entry.include:
        return DialectStatus("skipped", "SQLite has no INCLUDE (covering) columns")
    if any(isinstance(p, TsRange) for p in entry.key_parts):
        return DialectStatus("skipped", "SQLite has no range types")
    if any(isinstance(p, DateTrunc) for p in entry.key_parts):
        return DialectStatus("applied", "date_trunc() rendered with SQLite's datetime()")
    return DialectStatus("applied")


def _mysql_family(entry: IndexSpec, dialect: str) -> DialectStatus:
    name = "MariaDB" if dialect == "mariadb" else "MySQL"
    if entry.using != "btree":
        return DialectStatus("skipped", f"InnoDB builds only b-tree indexes, not {entry.using}")
    if entry.include:
        return DialectStatus("skipped", f"{name} has no INCLUDE (covering) columns")
    expressions = [p for p in entry.key_parts if isinstance(p, Expression)]
    if expressions and dialect == "mariadb":
        return DialectStatus(
            "skipped",
            f"MariaDB rejects expression key parts such as {expressions[0]} (error 1064); "
            "index a VIRTUAL generated column holding the expression instead",
        )
    unsupported = [p for p in expressions if not isinstance(p, DateOf)]
    if unsupported:
        return DialectStatus("skipped", f"MySQL has no {unsupported[0]} function")
    if entry.conditions and entry.unique:
        return DialectStatus(
            "skipped",
            f"{name} has no partial indexes, and a full UNIQUE index would be a stricter "
            "constraint than the partial one",
        )
    if entry.conditions:
        where = " AND ".join(str(c) for c in entry.conditions)
        return DialectStatus(
            "adapted",
            f"{name} has no partial indexes: built as a full index (without WHERE {where})",
        )
    if expressions:
        return DialectStatus("applied", "functional key part: needs MySQL 8.0.13 or later")
    return DialectStatus("applied")


def _exclusion_status(entry: ExclusionSpec, table: Table, dialect: str) -> DialectStatus:
    if dialect != "postgresql":
        return DialectStatus(
            "skipped",
            "exclusion constraints exist only in PostgreSQL; serialise bookings in the "
            "application instead (e.g. SELECT ... FOR UPDATE on the barber's row)",
        )
    return _postgresql(entry, table)
