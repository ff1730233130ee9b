"""The declarative spec: IndexSpec, ExclusionSpec, key-part expressions and Spec.

Everything here is plain, immutable data validated on construction: a malformed entry raises
:class:`IndexSpecError` where it is written, not later when a database rejects the DDL.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, overload

from sqlalchemy.sql.elements import ColumnElement

from .._names import did_you_mean
from ._errors import IndexSpecError
from ._expressions import (
    DATE_TRUNC_UNITS,
    indexed_date,
    indexed_date_trunc,
    indexed_tsrange,
)
from ._named import NamedSequence
from ._predicates import Condition, Predicate, coerce_predicate

__all__ = [
    "INDEX_METHODS",
    "MAX_NAME_LENGTH",
    "DateOf",
    "DateTrunc",
    "Entry",
    "ExclusionSpec",
    "Expression",
    "IndexSpec",
    "KeyPart",
    "Spec",
    "TsRange",
    "date",
    "date_trunc",
    "part_columns",
    "part_sql",
    "part_text",
    "rename_part",
    "tsrange",
    "validate_name",
]

#: PostgreSQL truncates identifiers to 63 bytes (NAMEDATALEN - 1); MySQL allows 64.
MAX_NAME_LENGTH = 63
#: Lower-case, unquoted identifiers: every database stores them exactly as written.
_NAME = re.compile(r"[a-z_][a-z0-9_]*\Z")
#: The access methods an :class:`IndexSpec` may use.
INDEX_METHODS = ("btree", "gist", "brin", "hash")
# The methods PostgreSQL can build an INCLUDE list for (among INDEX_METHODS).
_INCLUDE_METHODS = ("btree", "gist")
_EXCLUSION_OPERATORS = ("=", "<>", "&&", "@>", "<@", "-|-")


def validate_name(name: object, what: str = "index") -> str:
    """Return ``name`` if it is a valid entry name, else raise :class:`IndexSpecError`.

    Valid: lower-case letters, digits and ``_``, not starting with a digit, at most
    :data:`MAX_NAME_LENGTH` characters (longer names are truncated by PostgreSQL, so two long
    names could collide silently).
    """
    if not isinstance(name, str) or not name:
        raise IndexSpecError(f"{what} name must be a non-empty string, not {name!r}")
    if len(name) > MAX_NAME_LENGTH:
        raise IndexSpecError(
            f"{what} name {name!r} is {len(name)} characters; PostgreSQL keeps only "
            f"{MAX_NAME_LENGTH}, so it would be truncated (and could collide)"
        )
    if not _NAME.match(name):
        raise IndexSpecError(
            f"{what} name {name!r} must be lower-case letters, digits and '_' (not starting "
            "with a digit), so that every database stores it unquoted, as written"
        )
    return name


def _column_name(name: object, where: str) -> str:
    if not isinstance(name, str) or not name.strip() or name != name.strip():
        raise IndexSpecError(f"{where}: a column name must be a non-empty string, not {name!r}")
    return name


# --- key-part expressions ----------------------------------------------------------------


class Expression(ABC):
    """Base of the portable key-part expressions (:func:`date`, :func:`date_trunc`,
    :func:`tsrange`)."""

    #: A range value (GiST has a default operator class for it); scalars need btree_gist.
    is_range = False

    @abstractmethod
    def columns(self) -> tuple[str, ...]:
        """The column names the expression reads, in order."""

    @abstractmethod
    def renamed(self, name: Callable[[str], str]) -> Expression:
        """The same expression with each column name mapped through ``name``."""

    @abstractmethod
    def sql(self, columns: Mapping[str, ColumnElement[Any]]) -> ColumnElement[Any]:
        """The SQLAlchemy element, compiled per dialect by :mod:`._expressions`."""


@dataclass(frozen=True)
class DateOf(Expression):
    """``date(column)``; see :func:`date`."""

    column: str

    def __post_init__(self) -> None:
        _column_name(self.column, "date()")

    def columns(self) -> tuple[str, ...]:
        """The column names read, in order."""
        return (self.column,)

    def renamed(self, name: Callable[[str], str]) -> DateOf:
        """The same expression with its columns mapped through ``name``."""
        return DateOf(name(self.column))

    def sql(self, columns: Mapping[str, ColumnElement[Any]]) -> ColumnElement[Any]:
        """The SQLAlchemy element (compiled per dialect)."""
        return indexed_date(columns[self.column])

    def __str__(self) -> str:
        return f"date({self.column})"


@dataclass(frozen=True)
class DateTrunc(Expression):
    """``date_trunc(unit, column)``; see :func:`date_trunc`."""

    unit: str
    column: str

    def __post_init__(self) -> None:
        if self.unit not in DATE_TRUNC_UNITS:
            hint = did_you_mean(str(self.unit), DATE_TRUNC_UNITS)
            raise IndexSpecError(
                f"unknown date_trunc unit {self.unit!r}{hint}; "
                f"use one of {', '.join(DATE_TRUNC_UNITS)}"
            )
        _column_name(self.column, "date_trunc()")

    def columns(self) -> tuple[str, ...]:
        """The column names read, in order."""
        return (self.column,)

    def renamed(self, name: Callable[[str], str]) -> DateTrunc:
        """The same expression with its columns mapped through ``name``."""
        return DateTrunc(self.unit, name(self.column))

    def sql(self, columns: Mapping[str, ColumnElement[Any]]) -> ColumnElement[Any]:
        """The SQLAlchemy element (compiled per dialect)."""
        return indexed_date_trunc(self.unit, columns[self.column])

    def __str__(self) -> str:
        return f"date_trunc('{self.unit}', {self.column})"


@dataclass(frozen=True)
class TsRange(Expression):
    """``tsrange(start, end, bounds)``; see :func:`tsrange`."""

    start: str
    end: str
    bounds: str = "[)"
    is_range = True

    def __post_init__(self) -> None:
        _column_name(self.start, "tsrange()")
        _column_name(self.end, "tsrange()")
        if self.bounds not in ("[)", "[]", "()", "(]"):
            raise IndexSpecError(
                f"tsrange bounds must be '[)', '[]', '()' or '(]', not {self.bounds!r}"
            )

    def columns(self) -> tuple[str, ...]:
        """The column names read, in order."""
        return (self.start, self.end)

    def renamed(self, name: Callable[[str], str]) -> TsRange:
        """The same expression with its columns mapped through ``name``."""
        return TsRange(name(self.start), name(self.end), self.bounds)

    def sql(self, columns: Mapping[str, ColumnElement[Any]]) -> ColumnElement[Any]:
        """The SQLAlchemy element (compiled per dialect)."""
        return indexed_tsrange(columns[self.start], columns[self.end], self.bounds)

    def __str__(self) -> str:
        return f"tsrange({self.start}, {self.end}, '{self.bounds}')"


def date(column: str) -> DateOf:
    """Key part ``date(column)``.

    On a ``DateTime(timezone=True)`` column PostgreSQL rejects ``date()`` in an index (not
    IMMUTABLE); the spec then indexes ``(column AT TIME ZONE 'UTC')::date`` automatically.
    Query with :class:`sqlaopt.indexes.indexed_date` to get the same expression.
    """
    return DateOf(column)


def date_trunc(unit: str, column: str) -> DateTrunc:
    """Key part ``date_trunc(unit, column)``, ``unit`` in ``minute hour day week month year``.

    Timezone-aware columns are indexed as ``date_trunc(unit, column AT TIME ZONE 'UTC')`` on
    PostgreSQL; SQLite gets an equivalent ``datetime()`` form. Query with
    :class:`sqlaopt.indexes.indexed_date_trunc`.
    """
    return DateTrunc(unit, column)


def tsrange(start: str, end: str, bounds: str = "[)") -> TsRange:
    """Key part ``tsrange(start, end, bounds)`` (PostgreSQL only; ``tstzrange`` for timezone-aware
    columns). ``'[)'`` makes back-to-back slots not overlap."""
    return TsRange(start, end, bounds)


#: A key part: a column name or a portable expression.
KeyPart = str | Expression


def part_columns(part: KeyPart) -> tuple[str, ...]:
    """The column names a key part reads."""
    return (part,) if isinstance(part, str) else part.columns()


def rename_part(part: KeyPart, name: Callable[[str], str]) -> KeyPart:
    """The key part with its column names mapped through ``name``."""
    return name(part) if isinstance(part, str) else part.renamed(name)


def part_sql(part: KeyPart, columns: Mapping[str, ColumnElement[Any]]) -> ColumnElement[Any]:
    """The key part as a SQLAlchemy element over ``columns``."""
    return columns[part] if isinstance(part, str) else part.sql(columns)


def part_text(part: KeyPart) -> str:
    """The portable spelling of a key part, as the docs and results show it."""
    return part if isinstance(part, str) else str(part)


def _key_parts(parts: object, where: str) -> tuple[KeyPart, ...]:
    if isinstance(parts, (str, Expression)):
        parts = (parts,)
    if not isinstance(parts, Iterable):
        raise IndexSpecError(f"{where}: key parts must be a sequence, not {parts!r}")
    result = tuple(parts)
    if not result:
        raise IndexSpecError(f"{where}: at least one key part is needed")
    for part in result:
        if isinstance(part, str):
            _column_name(part, where)
        elif not isinstance(part, Expression):
            raise IndexSpecError(
                f"{where}: a key part is a column name or date()/date_trunc()/tsrange(), "
                f"not {part!r}"
            )
    texts = [part_text(part) for part in result]
    duplicates = sorted({text for text in texts if texts.count(text) > 1})
    if duplicates:
        raise IndexSpecError(f"{where}: key part {duplicates[0]} appears twice")
    return result


# --- entries -----------------------------------------------------------------------------


@dataclass(frozen=True)
class IndexSpec:
    """One index: where it goes, what it keys on, which rows it covers.

    ``columns`` holds the key parts in order: column names or :func:`date`,
    :func:`date_trunc`, :func:`tsrange`. ``where`` makes it partial (see
    :func:`sqlaopt.indexes.eq` and friends, or the mapping shorthand
    ``{"status": "completed"}``). ``using`` is the access method, ``include`` adds covering
    (non-key) columns, ``unique`` makes it a unique index. ``section`` and ``note`` say where
    in the report the entry comes from and what was corrected.
    """

    name: str
    table: str
    columns: Sequence[KeyPart]
    where: Predicate = None
    using: str = "btree"
    include: Sequence[str] = ()
    unique: bool = False
    section: str = ""
    note: str = ""

    def __post_init__(self) -> None:
        validate_name(self.name)
        _column_name(self.table, f"{self.name}: table")
        where = f"index {self.name}"
        set_ = object.__setattr__  # frozen: normalise the inputs once, here
        set_(self, "columns", _key_parts(self.columns, where))
        set_(self, "where", coerce_predicate(self.where))
        include = (self.include,) if isinstance(self.include, str) else tuple(self.include)
        set_(self, "include", tuple(_column_name(c, where) for c in include))
        self._check_method(where)

    def _check_method(self, where: str) -> None:
        if self.using not in INDEX_METHODS:
            raise IndexSpecError(
                f"{where}: unknown access method {self.using!r}"
                f"{did_you_mean(str(self.using), INDEX_METHODS)}; use one of {INDEX_METHODS}"
            )
        if self.unique and self.using != "btree":
            raise IndexSpecError(f"{where}: only btree indexes can be unique, not {self.using}")
        if self.using == "hash" and len(self.columns) != 1:
            raise IndexSpecError(f"{where}: a hash index has exactly one key part")
        if self.include and self.using not in _INCLUDE_METHODS:
            raise IndexSpecError(f"{where}: {self.using} indexes cannot INCLUDE columns")
        keys = {part for part in self.key_parts if isinstance(part, str)}
        overlap = sorted(keys.intersection(self.include))
        if overlap:
            raise IndexSpecError(f"{where}: {overlap[0]} is both a key column and included")
        if any(isinstance(p, TsRange) for p in self.key_parts) and self.using == "btree":
            raise IndexSpecError(
                f"{where}: a tsrange() key part needs using='gist' (overlap search)"
            )

    @property
    def key_parts(self) -> tuple[KeyPart, ...]:
        """``columns`` as the normalised tuple."""
        return tuple(self.columns)

    @property
    def conditions(self) -> tuple[Condition, ...]:
        """``where`` as the normalised tuple of conditions (ANDed; empty for a full index)."""
        return coerce_predicate(self.where)

    def referenced_columns(self) -> tuple[str, ...]:
        """Every column name the entry reads: key parts, included columns, predicate."""
        names = [c for part in self.key_parts for c in part_columns(part)]
        names += list(self.include) + [c.column for c in self.conditions]
        return tuple(dict.fromkeys(names))

    def renamed(self, table: str, name: Callable[[str], str]) -> IndexSpec:
        """The entry on ``table`` with each column name mapped through ``name``."""
        return replace(
            self,
            table=table,
            columns=tuple(rename_part(p, name) for p in self.key_parts),
            where=tuple(c.renamed(name(c.column)) for c in self.conditions),
            include=tuple(name(c) for c in self.include),
        )

    def describe(self) -> str:
        """One line: ``table (parts) [INCLUDE (...)] [WHERE ...]``."""
        method = f" USING {self.using}" if self.using != "btree" else ""
        text = f"{self.table}{method} ({', '.join(part_text(p) for p in self.key_parts)})"
        if self.include:
            text += f" INCLUDE ({', '.join(self.include)})"
        if self.conditions:
            text += " WHERE " + " AND ".join(str(c) for c in self.conditions)
        return ("UNIQUE " if self.unique else "") + text


@dataclass(frozen=True)
class ExclusionSpec:
    """A PostgreSQL ``EXCLUDE`` constraint: no two rows (matching ``where``) may have every
    element pairwise matching its operator.

    ``elements`` pairs key parts with operators, e.g.
    ``[("barber_id", "="), (tsrange("start_time", "end_time"), "&&")]``; plain columns compared
    with ``=`` under GiST need the ``btree_gist`` extension, which the spec creates first.
    """

    name: str
    table: str
    elements: Sequence[tuple[KeyPart, str]]
    where: Predicate = None
    using: str = "gist"
    section: str = ""
    note: str = ""

    def __post_init__(self) -> None:
        validate_name(self.name, "constraint")
        _column_name(self.table, f"{self.name}: table")
        where = f"constraint {self.name}"
        elements = tuple(self.elements)
        for element in elements:
            if not (isinstance(element, tuple) and len(element) == 2):
                raise IndexSpecError(
                    f"{where}: each element is (key part, operator), not {element!r}"
                )
            if element[1] not in _EXCLUSION_OPERATORS:
                raise IndexSpecError(
                    f"{where}: unknown operator {element[1]!r}; use one of {_EXCLUSION_OPERATORS}"
                )
        _key_parts([part for part, _ in elements], where)
        object.__setattr__(self, "elements", elements)
        object.__setattr__(self, "where", coerce_predicate(self.where))
        if self.using != "gist":
            raise IndexSpecError(
                f"{where}: exclusion constraints here use gist, not {self.using!r}"
            )

    @property
    def key_parts(self) -> tuple[KeyPart, ...]:
        """The element key parts, in order."""
        return tuple(part for part, _ in self.elements)

    @property
    def operators(self) -> tuple[str, ...]:
        """The element operators, in order."""
        return tuple(op for _, op in self.elements)

    @property
    def conditions(self) -> tuple[Condition, ...]:
        """``where`` as the normalised tuple of conditions."""
        return coerce_predicate(self.where)

    @property
    def unique(self) -> bool:
        """Always False: exclusion is enforced by the constraint, not a unique index."""
        return False

    @property
    def include(self) -> tuple[str, ...]:
        """Always empty."""
        return ()

    def referenced_columns(self) -> tuple[str, ...]:
        """Every column name the constraint reads."""
        names = [c for part in self.key_parts for c in part_columns(part)]
        names += [c.column for c in self.conditions]
        return tuple(dict.fromkeys(names))

    def renamed(self, table: str, name: Callable[[str], str]) -> ExclusionSpec:
        """The constraint on ``table`` with each column name mapped through ``name``."""
        return replace(
            self,
            table=table,
            elements=tuple((rename_part(p, name), op) for p, op in self.elements),
            where=tuple(c.renamed(name(c.column)) for c in self.conditions),
        )

    def describe(self) -> str:
        """One line: ``table EXCLUDE USING gist (part WITH op, ...) [WHERE ...]``."""
        body = ", ".join(f"{part_text(p)} WITH {op}" for p, op in self.elements)
        text = f"{self.table} EXCLUDE USING {self.using} ({body})"
        if self.conditions:
            text += " WHERE " + " AND ".join(str(c) for c in self.conditions)
        return text


#: A spec entry.
Entry = IndexSpec | ExclusionSpec


@dataclass(frozen=True)
class Spec(NamedSequence[Entry]):
    """An ordered, validated collection of entries; index it by position or by entry name.

    Names are unique across the spec, and no GiST index may duplicate an exclusion
    constraint's own index (the constraint already builds it).
    """

    entries: tuple[Entry, ...] = field(default=())

    def __init__(self, entries: Iterable[Entry] = ()) -> None:
        items = tuple(entries)
        for item in items:
            if not isinstance(item, (IndexSpec, ExclusionSpec)):
                raise IndexSpecError(f"a spec holds IndexSpec/ExclusionSpec entries, not {item!r}")
        _check_unique_names(items)
        _check_exclusion_duplicates(items)
        object.__setattr__(self, "entries", items)

    @overload
    def __getitem__(self, key: int) -> Entry: ...
    @overload
    def __getitem__(self, key: str) -> Entry: ...
    @overload
    def __getitem__(self, key: slice) -> Spec: ...
    def __getitem__(self, key: int | str | slice) -> Entry | Spec:
        if isinstance(key, slice):
            return Spec(self.entries[key])
        return super().__getitem__(key)

    def _items(self) -> tuple[Entry, ...]:
        return self.entries

    def __contains__(self, item: object) -> bool:
        if isinstance(item, str):
            return item in self.names
        return item in self.entries

    def __add__(self, other: Spec) -> Spec:
        """Both specs' entries, this one's first (names must stay unique)."""
        if not isinstance(other, Spec):
            return NotImplemented
        return Spec((*self.entries, *other.entries))

    def only(self, *names: str) -> Spec:
        """The entries with these names (in spec order)."""
        self._check_known(names)
        return Spec(e for e in self.entries if e.name in names)

    def without(self, *names: str) -> Spec:
        """The spec minus the entries with these names."""
        self._check_known(names)
        return Spec(e for e in self.entries if e.name not in names)

    def _check_known(self, names: Iterable[str]) -> None:
        for name in names:
            if name not in self.names:
                raise IndexSpecError(f"no entry named {name!r}{did_you_mean(name, self.names)}")


def _check_unique_names(entries: Sequence[Entry]) -> None:
    seen: dict[str, Entry] = {}
    for entry in entries:
        if entry.name in seen:
            raise IndexSpecError(
                f"the name {entry.name!r} is used twice ({seen[entry.name].describe()} and "
                f"{entry.describe()}); index names share one namespace per schema"
            )
        seen[entry.name] = entry


def _check_exclusion_duplicates(entries: Sequence[Entry]) -> None:
    exclusions = [e for e in entries if isinstance(e, ExclusionSpec)]
    for entry in entries:
        if not isinstance(entry, IndexSpec) or entry.using != "gist":
            continue
        for exclusion in exclusions:
            same = (
                exclusion.table == entry.table
                and exclusion.key_parts == entry.key_parts
                and set(exclusion.conditions) == set(entry.conditions)
            )
            if same:
                raise IndexSpecError(
                    f"{entry.name} duplicates the GiST index that exclusion constraint "
                    f"{exclusion.name} already builds; leave it out"
                )


def as_spec(spec: Spec | Iterable[Entry]) -> Spec:
    """``spec`` as a validated :class:`Spec`."""
    return spec if isinstance(spec, Spec) else Spec(spec)
