"""Which tables a statement reads, and which it writes.

Reads come from the compiled statement's tree (FROM lists, joins, subqueries, CTEs, columns'
tables, and for ORM queries the statement the ORM built, with its joined eager loads); a
``text()`` fragment that could name other tables makes them unknown. Writes come from the
compiled DML's target table (plus the tables the MetaData declares ``ON DELETE`` / ``ON
UPDATE`` actions into), or, for ``text()`` and driver SQL, from a small parser of the leading
INSERT / UPDATE / DELETE / TRUNCATE / MERGE; anything it cannot read is a write to every
table (:data:`ALL`). Both are worked out once per compiled statement or SQL string.

Tables are named ``name`` or ``schema.name``, lower case, with the dialect's default schema
dropped and ``schema_translate_map`` applied, so a Table, a mapped class and a ``text()``
statement agree on the name.
"""

from __future__ import annotations

import re
import threading
import weakref
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, inspect
from sqlalchemy.engine import ExecutionContext
from sqlalchemy.exc import NoInspectionAvailable
from sqlalchemy.sql import visitors
from sqlalchemy.sql.elements import ColumnClause, TextClause
from sqlalchemy.sql.selectable import TableClause

from ._errors import CacheError

__all__ = [
    "ALL",
    "Pair",
    "Reads",
    "declared",
    "qualify",
    "reads",
    "text_reads",
    "text_writes",
    "writes",
]

ALL = "*"
"""Stands for every table: an unknown write, and the epoch every entry also depends on."""

Pair = tuple[str | None, str]
"""(schema or None, table name) before qualification."""

_ALL_PAIR: frozenset[Pair] = frozenset({(None, ALL)})
_CASCADING = {"CASCADE", "SET NULL", "SET DEFAULT"}
_MAX_STRINGS = 4096


@dataclass(frozen=True)
class Reads:
    """What a SELECT reads: its tables, whether that list is complete (a ``text()`` fragment
    or literal column that may name other tables makes it incomplete) and whether it locks."""

    tables: frozenset[Pair]
    complete: bool
    locking: bool


def qualify(pairs: Iterable[Pair], context: ExecutionContext) -> frozenset[str]:
    """Final table names for ``pairs`` on the context's connection."""
    pairs = pairs if isinstance(pairs, frozenset) else frozenset(pairs)
    translate: Mapping[str | None, str | None] | None = context.execution_options.get(
        "schema_translate_map")
    default = context.dialect.default_schema_name
    if translate:
        return _qualify(pairs, translate, default)
    key = (pairs, default)
    found = _qualified.get(key)
    if found is None:
        found = _qualify(pairs, None, default)
        with _lock:
            if len(_qualified) >= _MAX_STRINGS:
                _qualified.clear()
            _qualified[key] = found
    return found


def _qualify(pairs: frozenset[Pair], translate: Mapping[str | None, str | None] | None,
             default: str | None) -> frozenset[str]:
    default = default.lower() if default else None
    names = set()
    for schema, name in pairs:
        if name == ALL:
            names.add(ALL)
            continue
        if translate and schema in translate:
            schema = translate[schema]
        if schema is not None and schema.lower() == default:
            schema = None
        names.add(name.lower() if schema is None else f"{schema.lower()}.{name.lower()}")
    return frozenset(names)


_qualified: dict[tuple[frozenset[Pair], str | None], frozenset[str]] = {}


# ----------------------------------------------------------------------------------- reads

_reads: weakref.WeakKeyDictionary[Any, Reads] = weakref.WeakKeyDictionary()
_lock = threading.Lock()
# A text fragment that may name a table: a subquery, a FROM or a JOIN inside raw SQL.
_NAMES_TABLES = re.compile(r"\b(select|from|join)\b", re.IGNORECASE)


def reads(compiled: Any) -> Reads:
    """The tables a compiled SELECT reads (cached per compiled statement)."""
    found = _reads.get(compiled)
    if found is None:
        found = _walk_reads(compiled)
        with _lock:
            _reads[compiled] = found
    return found


def _roots(compiled: Any) -> list[Any]:
    roots = [compiled.statement]
    built = getattr(getattr(compiled, "compile_state", None), "statement", None)
    if built is not None and built is not compiled.statement:
        roots.append(built)  # the ORM's own statement: joined eager loads live only here
    return roots


def _walk_reads(compiled: Any) -> Reads:
    tables: set[Pair] = set()
    complete, locking = True, False
    for root in _roots(compiled):
        locking = locking or getattr(root, "_for_update_arg", None) is not None
        for element in visitors.iterate(root):
            if isinstance(element, TableClause):
                tables.add(_pair(element))
            elif isinstance(element, ColumnClause):
                if element.is_literal and _NAMES_TABLES.search(element.name):
                    complete = False
                if isinstance(element.table, TableClause):
                    tables.add(_pair(element.table))
            elif isinstance(element, TextClause) and _NAMES_TABLES.search(element.text):
                complete = False
    return Reads(frozenset(tables), complete, locking)


def _pair(table: TableClause) -> Pair:
    return (getattr(table, "schema", None), table.name)


# ---------------------------------------------------------------------------------- writes

_writes: weakref.WeakKeyDictionary[Any, frozenset[Pair]] = weakref.WeakKeyDictionary()
_strings: dict[str, frozenset[Pair] | None] = {}
_UNSEEN: Any = object()


def writes(context: ExecutionContext) -> frozenset[Pair]:
    """The tables a compiled INSERT / UPDATE / DELETE writes (with MetaData cascades)."""
    compiled = context.compiled
    found = _writes.get(compiled)
    if found is None:
        found = _compiled_writes(compiled, context.dialect.name)
        with _lock:
            _writes[compiled] = found
    return found


def _compiled_writes(compiled: Any, dialect: str) -> frozenset[Pair]:
    state: Any = getattr(compiled, "compile_state", None)
    target = getattr(state, "dml_table", None)
    if not isinstance(target, TableClause):
        return _ALL_PAIR
    written = [target]
    if state.isupdate and dialect in ("mysql", "mariadb"):
        # MySQL's multi-table UPDATE can set columns of every table it names.
        written += [t for t in getattr(state, "_extra_froms", ()) if isinstance(t, TableClause)]
    action = "ondelete" if state.isdelete else "onupdate" if state.isupdate else None
    pairs = {_pair(t) for t in written}
    if action is not None:
        pairs |= {_pair(t) for t in _cascades(written, action)}
    return frozenset(pairs)


def _cascades(tables: list[TableClause], action: str) -> Iterator[Table]:
    """Tables whose rows the database changes through ``action`` foreign keys to ``tables``."""
    seen: set[Any] = set()
    pending = [t for t in tables if isinstance(t, Table)]
    while pending:
        table = pending.pop()
        for other in table.metadata.tables.values():
            if other in seen:
                continue
            for fk in other.foreign_keys:
                if fk.references(table) and (getattr(fk, action) or "").upper() in _CASCADING:
                    seen.add(other)
                    yield other
                    if (getattr(fk, action) or "").upper() == "CASCADE":
                        pending.append(other)
                    break


def text_writes(sql: str, dialect: str) -> frozenset[Pair] | None:
    """The tables a textual statement writes: None for a read (or no data change), the
    parsed targets for a simple INSERT / UPDATE / DELETE / TRUNCATE / MERGE, otherwise
    :data:`ALL`."""
    key = f"{dialect}\0{sql}"
    seen: frozenset[Pair] | None = _strings.get(key, _UNSEEN)
    if seen is not _UNSEEN:
        return seen
    found = _parse_writes(sql)
    with _lock:
        if len(_strings) >= _MAX_STRINGS:
            _strings.clear()
        _strings[key] = found
    return found


_IDENT = r'(?:"(?:[^"]|"")+"|`[^`]+`|\[[^\]]+\]|[A-Za-z_][\w$]*)'
_NAME = rf"{_IDENT}(?:\s*\.\s*{_IDENT})?"
_ALIAS = rf"(?:\s+(?:AS\s+)?{_IDENT})?"
_TARGETS = [
    re.compile(rf"INSERT\s+(?:(?:OR\s+\w+|IGNORE|LOW_PRIORITY|DELAYED|HIGH_PRIORITY)\s+)*"
               rf"INTO\s+({_NAME})", re.I),
    re.compile(rf"REPLACE\s+(?:(?:LOW_PRIORITY|DELAYED)\s+)?INTO\s+({_NAME})", re.I),
    re.compile(rf"UPDATE\s+(?:(?:ONLY|LOW_PRIORITY|IGNORE|OR\s+\w+)\s+)*({_NAME}){_ALIAS}"
               rf"\s+SET\b", re.I),
    re.compile(rf"DELETE\s+(?:(?:LOW_PRIORITY|QUICK|IGNORE)\s+)*FROM\s+(?:ONLY\s+)?({_NAME})"
               rf"{_ALIAS}\s*(?:$|;|\b(?:WHERE|RETURNING|ORDER|LIMIT|USING)\b)", re.I),
    re.compile(rf"MERGE\s+INTO\s+({_NAME})", re.I),
]
_TRUNCATE = re.compile(rf"TRUNCATE\s+(?:TABLE\s+)?((?:ONLY\s+)?{_NAME}"
                       rf"(?:\s*,\s*(?:ONLY\s+)?{_NAME})*)\s*;?\s*$", re.I)
_NO_DATA_CHANGE = frozenset({
    "SELECT", "VALUES", "TABLE", "SHOW", "DESCRIBE", "DESC", "PRAGMA", "SET", "RESET",
    "BEGIN", "START", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE", "LOCK", "UNLOCK",
    "LISTEN", "UNLISTEN", "NOTIFY", "DECLARE", "FETCH", "CLOSE", "MOVE", "DEALLOCATE",
    "DISCARD", "ANALYZE", "ANALYSE", "VACUUM", "CHECKPOINT", "PREPARE",
})
_LEADING = re.compile(r"(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/|\()*", re.S)
_LITERALS = re.compile(r"'(?:[^']|'')*'|\$(\w*)\$.*?\$\1\$", re.S)
_DML_WORD = re.compile(r"\b(INSERT|UPDATE|DELETE|MERGE|TRUNCATE)\b", re.I)
_FOR_UPDATE = re.compile(r"\bFOR\s+(?:NO\s+KEY\s+)?UPDATE\b", re.I)
_MORE_STATEMENTS = re.compile(r";\s*\S")


def _parse_writes(sql: str) -> frozenset[Pair] | None:
    body = sql[_LEADING.match(sql).end():]  # type: ignore[union-attr]  # always matches
    plain = _LITERALS.sub("''", body)
    if _MORE_STATEMENTS.search(plain):
        return _ALL_PAIR
    first = plain.split(None, 1)[0].upper() if plain.strip() else ""
    if first in _NO_DATA_CHANGE:
        return None
    if first == "WITH":
        return _ALL_PAIR if _DML_WORD.search(_FOR_UPDATE.sub("", plain)) else None
    if first == "EXPLAIN":
        return _ALL_PAIR if re.search(r"\bANALY[SZ]E\b", plain, re.I) else None
    truncate = _TRUNCATE.match(plain)
    if truncate:
        if re.search(r"\bCASCADE\s*;?\s*$", plain, re.I):
            return _ALL_PAIR
        return frozenset(_split_name(re.sub(r"(?i)^ONLY\s+", "", part.strip()))
                         for part in truncate.group(1).split(","))
    for pattern in _TARGETS:
        match = pattern.match(plain)
        if match:
            return frozenset({_split_name(match.group(1))})
    return _ALL_PAIR


_READS_FROM = re.compile(r"\b(FROM|JOIN)\b", re.I)


def text_reads(sql: str) -> frozenset[Pair] | None:
    """The tables a textual read names: none when it has no FROM or JOIN (``SELECT 1``,
    ``SHOW ...``, a dialect's ``select current_schema()``), otherwise unknown (None)."""
    return None if _READS_FROM.search(_LITERALS.sub("''", sql)) else frozenset()


def _split_name(name: str) -> Pair:
    parts = [_unquote(p.strip()) for p in re.findall(_IDENT, name)]
    return (parts[0], parts[1]) if len(parts) == 2 else (None, parts[0])


def _unquote(ident: str) -> str:
    if ident[0] in "\"`[":
        return ident[1:-1].replace('""', '"')
    return ident


# ---------------------------------------------------------------------------- declarations


def declared(items: object, option: str) -> frozenset[Pair]:
    """Tables named by the application (``sqlaopt_tables``, :func:`invalidate`): strings
    (``"name"`` or ``"schema.name"``), Table objects or mapped classes."""
    if isinstance(items, (str, Table)) or not isinstance(items, Iterable):
        items = (items,)
    pairs: set[Pair] = set()
    for item in items:
        if isinstance(item, str) and item.strip():
            pairs.add((None, ALL) if item.strip() == ALL else _split_name(item.strip()))
        elif isinstance(item, Table):
            pairs.add(_pair(item))
        else:
            pairs |= {_pair(t) for t in _mapped_tables(item, option)}
    return frozenset(pairs)


def _mapped_tables(item: object, option: str) -> list[TableClause]:
    try:
        mapper = inspect(item).mapper if not isinstance(item, type) else inspect(item)
        return [t for t in mapper.tables if isinstance(t, TableClause)]
    except (NoInspectionAvailable, AttributeError):
        raise CacheError(
            f"{option}: {item!r} is not a table; name tables with strings ('payments', "
            "'schema.payments'), Table objects or mapped classes"
        ) from None
