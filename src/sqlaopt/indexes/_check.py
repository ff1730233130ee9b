"""``check()``: compare the spec with a live database, entry by entry, plus redundant indexes."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Connection, Engine
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from .._bind import connection_for
from ._apply import Plan, PlanItem, format_table, plan
from ._dialects import dialect_key
from ._introspect import LiveIndex, LiveSchema, read_live
from ._named import NamedSequence
from ._predicates import Canonical, PredicateParseError, canonical, parse_predicate, predicate_sql
from ._render import offline_dialect
from ._report import REPORT
from ._spec import Entry, ExclusionSpec, IndexSpec, Spec, part_sql

__all__ = [
    "CheckResult",
    "EntryCheck",
    "RedundantIndex",
    "check",
    "check_plan",
    "fingerprint",
]

CheckStatus = Literal["present", "missing", "invalid", "different", "skipped"]


@dataclass(frozen=True)
class EntryCheck:
    """One entry against the database: ``present``, ``missing``, ``invalid`` (a failed
    concurrent build left it unusable), ``different`` (``detail`` says how) or ``skipped``
    (the entry does not apply to this database or schema; ``detail`` says why)."""

    name: str
    table: str
    status: CheckStatus
    detail: str = ""


@dataclass(frozen=True)
class RedundantIndex:
    """A live index that ``covered_by`` makes unnecessary: same table and access method, its
    key columns a left prefix of the spec entry's, no predicate the entry lacks. Unique,
    constraint and expression indexes are never reported."""

    name: str
    table: str
    columns: tuple[str, ...]
    covered_by: str

    def __str__(self) -> str:
        columns = ", ".join(self.columns)
        return f"{self.name} on {self.table} ({columns}) is covered by {self.covered_by}"


@dataclass(frozen=True)
class CheckResult(NamedSequence[EntryCheck]):
    """The outcome of :func:`check`: one :class:`EntryCheck` per spec entry, in spec order
    (index by position or name), and the redundant indexes found on the same tables."""

    dialect: str
    entries: tuple[EntryCheck, ...]
    redundant: tuple[RedundantIndex, ...] = ()

    def _items(self) -> tuple[EntryCheck, ...]:
        return self.entries

    @property
    def problems(self) -> tuple[EntryCheck, ...]:
        """The entries that are missing, invalid or different."""
        return tuple(e for e in self.entries if e.status in ("missing", "invalid", "different"))

    @property
    def ok(self) -> bool:
        """True when nothing is missing, invalid or different (redundant indexes are advice)."""
        return not self.problems

    def statuses(self) -> dict[str, str]:
        """``{entry name: status}``."""
        return {e.name: e.status for e in self.entries}

    def table(self) -> str:
        """A plain-text report: the entries, then any redundant indexes."""
        rows = [("entry", "table", "status", "detail")]
        rows += [(e.name, e.table, e.status, e.detail) for e in self.entries]
        text = format_table(rows)
        if self.redundant:
            text += "\n\nredundant indexes (covered by a spec entry):\n"
            text += "\n".join(f"  {r}" for r in self.redundant)
        return text

    def __str__(self) -> str:
        return self.table()


def check(
    bind: Engine | Connection | Session,
    spec: Spec | Iterable[Entry] = REPORT,
    target: object | None = None,
) -> CheckResult:
    """Compare ``spec`` (fitted to ``target``, the reference schema when None) with the
    database behind ``bind``.

    Each entry is ``present``, ``missing``, ``invalid`` (PostgreSQL ``indisvalid = false``),
    ``different`` (key parts, method, INCLUDE list, uniqueness or predicate differ; compared
    after normalising the database's own spelling, e.g. PostgreSQL's ``= ANY (ARRAY[...])``)
    or ``skipped`` (not built on this dialect). Indexes on the same tables that a spec entry
    makes redundant are listed in :attr:`CheckResult.redundant`. Reads only.
    """
    with connection_for(bind) as conn:
        return check_plan(conn, plan(spec, target))


def check_plan(conn: Connection, fitted: Plan) -> CheckResult:
    """:func:`check` for an already fitted spec, on an open connection."""
    key = dialect_key(conn.dialect)
    tables = list({id(i.table): i.table for i in fitted.items if i.table is not None}.values())
    live = read_live(conn, tables)
    # The expectation is rendered as SQL text, not for this driver (pyformat drivers get
    # '%' doubled, which the database never sees).
    dialect = offline_dialect(key)
    expected = {
        item.result.name: _expected(item, dialect)
        for item in fitted.items
        if item.obj is not None and item.status_on(key).status != "skipped"
    }
    entries = tuple(_check_item(item, live, expected, key) for item in fitted.items)
    return CheckResult(key, entries, _redundant(fitted, live, expected))


# --- what the spec expects, in comparable form ---------------------------------------------


@dataclass(frozen=True)
class _Expected:
    table: str
    method: str
    parts: tuple[str, ...]
    include: tuple[str, ...]
    predicate: Canonical | None
    unique: bool
    exclusion: bool
    operators: tuple[str, ...]


_LITERAL_CAST = re.compile(r"('(?:[^']|'')*')::(?:text|character varying|varchar|bpchar|unknown)\b")


def fingerprint(sql: str) -> str:
    """A key part reduced for comparison: lower case, no quoting, no whitespace or
    parentheses, no casts of string literals to text (PostgreSQL adds those)."""
    reduced = _LITERAL_CAST.sub(r"\1", sql.lower())
    return re.sub(r"[\s()\"`]", "", reduced)


def _compile(element: Any, dialect: Dialect) -> str:
    compiled = element.compile(
        dialect=dialect, compile_kwargs={"include_table": False, "literal_binds": True}
    )
    return str(compiled)


def _predicate(where: Any, dialect: Dialect) -> Canonical | None:
    if where is None:
        return None
    return canonical(parse_predicate(_compile(where, dialect)))


def _expected(item: PlanItem, dialect: Dialect) -> _Expected:
    entry, table = item.result.definition, item.table
    assert entry is not None and table is not None
    key = dialect_key(dialect)
    columns: dict[str, ColumnElement[Any]] = dict(table.c.items())
    parts = tuple(fingerprint(_compile(part_sql(p, columns), dialect)) for p in entry.key_parts)
    # MySQL and MariaDB build partial entries as full indexes (reported as adapted).
    partial = key in ("postgresql", "sqlite") and bool(entry.conditions)
    where = predicate_sql(entry.conditions, columns) if partial else None
    is_index = isinstance(entry, IndexSpec)
    return _Expected(
        table=table.name,
        method=entry.using if key == "postgresql" else "btree",
        parts=parts,
        include=tuple(entry.include) if key == "postgresql" else (),
        predicate=_predicate(where, dialect),
        unique=entry.unique,
        exclusion=not is_index,
        operators=entry.operators if isinstance(entry, ExclusionSpec) else (),
    )


# --- comparing -----------------------------------------------------------------------------


def _check_item(
    item: PlanItem, live: LiveSchema, expected: dict[str, _Expected], key: str
) -> EntryCheck:
    name, table = item.result.name, item.result.table
    status = item.status_on(key)
    if name not in expected:
        return EntryCheck(name, table, "skipped", status.detail)
    found = live.indexes.get(name)
    if found is None:
        detail = "" if table in live.tables else f"table {table} does not exist"
        return EntryCheck(name, table, "missing", detail)
    if not found.valid:
        return EntryCheck(
            name, table, "invalid", "INVALID (a failed or interrupted concurrent build)"
        )
    differences = _differences(expected[name], found)
    if differences:
        return EntryCheck(name, table, "different", "; ".join(differences))
    return EntryCheck(name, table, "present")


def _live_predicate(found: LiveIndex) -> Canonical | str | None:
    if found.predicate is None:
        return None
    try:
        return canonical(parse_predicate(found.predicate))
    except PredicateParseError:
        return found.predicate  # not comparable: reported as its text


def _differences(want: _Expected, found: LiveIndex) -> list[str]:
    out = []
    if found.table != want.table:
        out.append(f"on table {found.table}, not {want.table}")
    if want.exclusion != (found.constraint == "x"):
        out.append(
            "an exclusion constraint is expected"
            if want.exclusion
            else "it is an exclusion constraint"
        )
    if found.method != want.method:
        out.append(f"method {found.method}, expected {want.method}")
    parts = tuple(fingerprint(p) for p in found.parts)
    if parts != want.parts:
        out.append(f"key ({', '.join(found.parts)}) differs from the spec's")
    if tuple(fingerprint(c) for c in found.include) != tuple(fingerprint(c) for c in want.include):
        out.append(f"INCLUDE ({', '.join(found.include)}), expected ({', '.join(want.include)})")
    if found.unique != want.unique:
        out.append("unique" if found.unique else "not unique")
    if want.operators and found.operators != want.operators:
        out.append(f"operators {', '.join(found.operators)}, expected {', '.join(want.operators)}")
    predicate = _live_predicate(found)
    if predicate != want.predicate:
        out.append(f"predicate {found.predicate or 'none'} differs from the spec's")
    return out


def _redundant(
    fitted: Plan, live: LiveSchema, expected: dict[str, _Expected]
) -> tuple[RedundantIndex, ...]:
    names = {item.result.name for item in fitted.items}
    found = []
    for index in live.indexes.values():
        if index.name in names or index.unique or index.constraint or not index.valid:
            continue
        if not all(index.plain):
            continue  # expression indexes: equivalence is not decidable here
        cover = _covering_entry(index, expected)
        if cover is not None:
            found.append(RedundantIndex(index.name, index.table, index.parts, cover))
    return tuple(sorted(found, key=lambda r: (r.table, r.name)))


def _covering_entry(index: LiveIndex, expected: dict[str, _Expected]) -> str | None:
    parts = tuple(fingerprint(p) for p in index.parts)
    predicate = _live_predicate(index)
    for name, want in expected.items():
        if want.exclusion or want.table != index.table or want.method != index.method:
            continue
        if want.parts[: len(parts)] != parts:
            continue
        # A partial entry cannot replace a full index; a partial index needs the same predicate.
        if want.predicate != predicate:
            continue
        covered = set(want.parts) | {fingerprint(c) for c in want.include}
        if {fingerprint(c) for c in index.include} <= covered:
            return name
    return None
