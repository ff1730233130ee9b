"""Turning resolved entries into SQLAlchemy schema objects attached to a Table.

Each object carries its resolved entry in ``info`` (so a second :func:`~sqlaopt.indexes.apply`
recognises it) and a ``ddl_if`` gate that asks :func:`dialect_status` whether the dialect at
hand gets it, so ``metadata.create_all()`` follows exactly the same rules as
:func:`~sqlaopt.indexes.ddl`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import DDL, Constraint, Index, MetaData, Table, column, event
from sqlalchemy.dialects.postgresql import ExcludeConstraint
from sqlalchemy.sql.elements import ColumnElement

from ._dialects import dialect_key, dialect_status, needs_btree_gist
from ._predicates import predicate_sql
from ._spec import Entry, ExclusionSpec, IndexSpec, part_sql

__all__ = [
    "MARK",
    "SchemaObject",
    "build",
    "owned_entry",
    "owned_names",
    "private_copy",
    "schema_items",
]

#: Key under which applied objects (``info``) and metadata (``info``) carry sqlaopt's data.
MARK = "sqlaopt.indexes"

SchemaObject = Index | ExcludeConstraint

# One DDL object for every table, so event.contains() can tell whether it is already listening.
# (DDL's constructor is untyped in SQLAlchemy's stubs; called through Any.)
_make_ddl: Any = DDL
_BTREE_GIST = _make_ddl("CREATE EXTENSION IF NOT EXISTS btree_gist").execute_if(
    dialect="postgresql"
)


class _DialectGate:
    """The ``ddl_if`` callable: build the object only where :func:`dialect_status` allows."""

    def __init__(self, entry: Entry, table: Table) -> None:
        self.entry = entry
        self.table = table

    def __call__(
        self, ddl: Any, target: Any, bind: Any, tables: Any = None, state: Any = None, **kw: Any
    ) -> bool:
        # SQLAlchemy passes dialect=, compiler=, checkfirst= (and may add more): read one.
        key = dialect_key(kw["dialect"])
        return dialect_status(self.entry, self.table, key).status != "skipped"


def build(entry: Entry, table: Table, *, concurrently: bool = False) -> SchemaObject:
    """Attach the object for ``entry`` (resolved to ``table``'s names) to ``table``."""
    if isinstance(entry, ExclusionSpec):
        built: SchemaObject = _exclusion(entry, table)
    else:
        built = _index(entry, table, concurrently)
    built.ddl_if(callable_=_DialectGate(entry, table))
    if needs_btree_gist(entry) and not event.contains(table, "before_create", _BTREE_GIST):
        # create_all() then works on a fresh database: the extension precedes the table.
        event.listen(table, "before_create", _BTREE_GIST)
    return built


def _index(entry: IndexSpec, table: Table, concurrently: bool) -> Index:
    columns: dict[str, ColumnElement[Any]] = dict(table.c.items())
    options: dict[str, Any] = {}
    where = predicate_sql(entry.conditions, columns)
    if where is not None:
        # Both dialects that support partial indexes get the predicate; for MySQL the rules
        # report the full index as "adapted" (never a silent drop).
        options["postgresql_where"] = where
        options["sqlite_where"] = where
    if entry.using != "btree":
        options["postgresql_using"] = entry.using
    if entry.include:
        options["postgresql_include"] = list(entry.include)
    if concurrently:
        options["postgresql_concurrently"] = True
    index = Index(
        entry.name,
        *[part_sql(part, columns) for part in entry.key_parts],
        unique=entry.unique,
        info={MARK: entry},
        **options,
    )
    if index.table is None:  # only expressions: nothing told the Index its table
        table.append_constraint(index)
    return index


def _exclusion(entry: ExclusionSpec, table: Table) -> ExcludeConstraint:
    columns: dict[str, ColumnElement[Any]] = dict(table.c.items())
    # Unbound columns: PostgreSQL would otherwise get "WHERE (appointments.status IN ...)".
    unbound: dict[str, ColumnElement[Any]] = {c.name: column(c.name, c.type) for c in table.c}
    constraint = ExcludeConstraint(
        *[(part_sql(part, columns), op) for part, op in entry.elements],
        name=entry.name,
        using=entry.using,
        where=predicate_sql(entry.conditions, unbound),
    )
    constraint.info[MARK] = entry  # SQLAlchemy 2.0.25's ExcludeConstraint ignores info=
    table.append_constraint(constraint)
    return constraint


def owned_entry(item: Any) -> Entry | None:
    """The resolved entry an applied object was built from, or None for anything else."""
    info = getattr(item, "info", None)
    entry = info.get(MARK) if isinstance(info, dict) else None
    return entry if isinstance(entry, (IndexSpec, ExclusionSpec)) else None


def schema_items(table: Table) -> list[Index | Constraint]:
    """The table's indexes and constraints (the objects that carry names)."""
    return [*table.indexes, *table.constraints]


def owned_names(table: Table) -> set[str]:
    """Names of the objects :func:`~sqlaopt.indexes.apply` attached to ``table``."""
    return {str(item.name) for item in schema_items(table) if owned_entry(item) is not None}


def private_copy(metadata: MetaData) -> MetaData:
    """A copy of ``metadata``'s tables without anything sqlaopt attached, for rendering and
    comparing without touching the caller's objects."""
    naming: Any = metadata.naming_convention
    copy = MetaData(naming_convention=naming)
    for table in metadata.tables.values():
        owned = owned_names(table)
        twin = table.to_metadata(copy)
        for index in [i for i in twin.indexes if i.name in owned]:
            twin.indexes.discard(index)
        for constraint in [c for c in twin.constraints if c.name in owned]:
            twin.constraints.discard(constraint)
    return copy
