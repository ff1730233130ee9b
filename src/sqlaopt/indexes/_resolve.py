"""Fitting spec entries to a real schema: renames, missing tables and columns, column types.

Resolution never mutates anything; it turns each entry into the definition that would be
attached (with the target's names) or into the reason it cannot be, so that
:func:`~sqlaopt.indexes.apply` can refuse before touching a single table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

from sqlalchemy import Date, DateTime, MetaData, Table

from .._names import did_you_mean
from ._errors import IndexSpecError
from ._expressions import is_timezone_aware
from ._spec import DateOf, DateTrunc, Entry, ExclusionSpec, Spec, TsRange, part_columns

__all__ = ["OnMissing", "Renames", "Resolution", "find_table", "resolve"]

OnMissing = Literal["error", "warn", "skip"]


@dataclass(frozen=True)
class Renames:
    """The ``rename=`` mapping, checked against the spec: ``"table"`` keys rename tables,
    ``"table.column"`` keys rename columns (both in the spec's, i.e. the report's, names)."""

    tables: Mapping[str, str] = field(default_factory=dict)
    columns: Mapping[tuple[str, str], str] = field(default_factory=dict)

    @classmethod
    def parse(cls, rename: Mapping[str, str] | None, spec: Spec) -> Renames:
        """Validate ``rename`` against ``spec``; a key that matches nothing is an error (it is
        almost always a typo that would otherwise leave the old name in place)."""
        tables: dict[str, str] = {}
        columns: dict[tuple[str, str], str] = {}
        known_tables = {entry.table for entry in spec}
        known_columns = {f"{e.table}.{c}" for e in spec for c in e.referenced_columns()}
        for key, value in (rename or {}).items():
            if not isinstance(value, str) or not value:
                raise IndexSpecError(f"rename[{key!r}] must be a non-empty name, not {value!r}")
            if "." in key:
                if key not in known_columns:
                    raise IndexSpecError(
                        f"rename key {key!r} is not a column the spec uses"
                        f"{did_you_mean(key, known_columns)}"
                    )
                table, column = key.split(".", 1)
                columns[(table, column)] = value
            elif key in known_tables:
                tables[key] = value
            else:
                raise IndexSpecError(
                    f"rename key {key!r} is not a table the spec uses"
                    f"{did_you_mean(key, known_tables)}; rename columns as 'table.column'"
                )
        return cls(tables, columns)

    def table(self, name: str) -> str:
        """The target's name for the spec's table ``name``."""
        return self.tables.get(name, name)

    def column(self, table: str, name: str) -> str:
        """The target's name for column ``name`` of the spec's table ``table``."""
        return self.columns.get((table, name), name)


@dataclass(frozen=True)
class Resolution:
    """One entry fitted to the target: ``entry`` is what would be attached (None when it
    cannot be), ``changes`` what was adapted, ``problems`` what is missing."""

    original: Entry
    table: Table | None
    entry: Entry | None
    changes: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()
    reason: str | None = None


def find_table(metadata: MetaData, name: str) -> Table | None:
    """The table called ``name`` (a key like ``schema.name``, or a unique plain name)."""
    if name in metadata.tables:
        return metadata.tables[name]
    matches = [table for table in metadata.tables.values() if table.name == name]
    return matches[0] if len(matches) == 1 else None


def resolve(
    entry: Entry, metadata: MetaData, renames: Renames, on_missing: OnMissing
) -> Resolution:
    """Fit ``entry`` to ``metadata``; raises :class:`IndexSpecError` only for type errors
    (those are bugs in the spec, whatever ``on_missing`` says)."""
    table_name = renames.table(entry.table)
    changes = [f"table {entry.table} is {table_name} (rename)"] if table_name != entry.table else []
    table = find_table(metadata, table_name)
    if table is None:
        tables = sorted(t.name for t in metadata.tables.values())
        problem = (
            f"no table {table_name!r} in the target{did_you_mean(table_name, tables)} "
            f"(tables: {', '.join(tables) or 'none'})"
        )
        return Resolution(entry, None, None, problems=(problem,), reason=problem)
    renamed = entry.renamed(table.name, lambda column: renames.column(entry.table, column))
    changes += [
        f"{entry.table}.{old} is {new} (rename)"
        for old in entry.referenced_columns()
        if (new := renames.column(entry.table, old)) != old
    ]
    existing = list(table.c.keys())
    missing = [c for c in renamed.referenced_columns() if c not in table.c]
    problems = tuple(
        f"table {table.name!r} has no column {column!r}{did_you_mean(column, existing)} "
        f"(columns: {', '.join(existing)})"
        for column in missing
    )
    if missing and on_missing == "error":
        return Resolution(entry, table, None, tuple(changes), problems, problems[0])
    if missing:
        return _fit(entry, renamed, table, missing, changes, problems)
    _check_types(renamed, table)
    return Resolution(entry, table, renamed, tuple(changes))


def _fit(
    original: Entry,
    renamed: Entry,
    table: Table,
    missing: list[str],
    changes: list[str],
    problems: tuple[str, ...],
) -> Resolution:
    """What is left of an entry once its missing columns are left out, if anything sensible.

    A non-unique index keeps the left prefix of its key before the first missing column (a
    b-tree on (a, b) serves every lookup the full key's (a, b) prefix served) and drops
    missing INCLUDE columns. A missing first key column, a missing predicate column, a unique
    index (a shorter key is a stricter constraint) and an exclusion constraint (its meaning
    would change) make the entry skipped.
    """

    def skipped(why: str) -> Resolution:
        return Resolution(original, table, None, tuple(changes), problems, f"{why}: {problems[0]}")

    if isinstance(renamed, ExclusionSpec):
        return skipped("an exclusion constraint cannot leave out a column")
    if renamed.unique:
        return skipped("a unique index cannot leave out a column")
    if any(c.column in missing for c in renamed.conditions):
        return skipped("its predicate reads a missing column")
    parts = renamed.key_parts
    cut = next((i for i, p in enumerate(parts) if set(part_columns(p)) & set(missing)), len(parts))
    if cut == 0:
        return skipped("its first key column is missing")
    kept_include = tuple(c for c in renamed.include if c not in missing)
    fitted = replace(renamed, columns=parts[:cut], include=kept_include)
    if cut < len(parts):
        changes.append(
            f"{', '.join(missing)} not on {table.name}: key cut to its left prefix "
            f"({', '.join(str(p) for p in parts[:cut])})"
        )
    if kept_include != renamed.include:
        changes.append(f"included columns missing from {table.name} dropped")
    _check_types(fitted, table)
    return Resolution(original, table, fitted, tuple(changes), problems)


def _check_types(entry: Entry, table: Table) -> None:
    """Expressions need date/time columns: ``date(status)`` is a spec bug on any database."""
    for part in entry.key_parts:
        if isinstance(part, (DateOf, DateTrunc)):
            type_ = table.c[part.column].type
            if not isinstance(type_, (Date, DateTime)):
                raise IndexSpecError(
                    f"{entry.name}: {part} needs a date or timestamp column; "
                    f"{table.name}.{part.column} is {type_}"
                )
        if isinstance(part, TsRange):
            types = [table.c[part.start].type, table.c[part.end].type]
            if not all(isinstance(t, DateTime) for t in types):
                raise IndexSpecError(f"{entry.name}: {part} needs two timestamp columns")
            if is_timezone_aware(types[0]) != is_timezone_aware(types[1]):
                raise IndexSpecError(
                    f"{entry.name}: {part} mixes timestamp and timestamptz columns"
                )
