"""Alembic operations for materialized views: ``op.create_materialized_view(view)``,
``op.drop_materialized_view(view)`` and ``op.replace_materialized_view(view, replaces=old)``.

Import this module once where migrations run (``env.py``, or the revision file) to register
them. Each renders the view's statements for the migration's database (a materialized view
on PostgreSQL, a filled table elsewhere), works in offline (``--sql``) mode, records the
refresh time in ``sqlaopt_refreshes`` and is reversible (autogenerate's ``reverse()``).
A revision should hold the definition it was written for: a view imported from application
code changes when the code does, and an old revision would then create the new definition.
"""

from __future__ import annotations

from typing import Any

try:
    from alembic.operations import MigrateOperation, Operations
except ImportError as error:  # pragma: no cover - exercised only without alembic installed
    raise ImportError(
        "sqlaopt.structure.alembic needs Alembic: pip install 'sqlaopt[alembic]'"
    ) from error

from sqlalchemy import insert, literal_column, text
from sqlalchemy.schema import CreateTable
from sqlalchemy.sql.elements import ColumnElement

from ..indexes._dialects import dialect_key
from ..indexes._render import offline_dialect
from ._refreshes import REFRESHES
from ._views import MaterializedView, compile_literal

__all__ = [
    "CreateMaterializedViewOp",
    "DropMaterializedViewOp",
    "ReplaceMaterializedViewOp",
]

# The UTC time as each database writes it into a naive timestamp column.
_UTC_NOW = {
    "postgresql": "(now() AT TIME ZONE 'UTC')",
    "sqlite": "strftime('%Y-%m-%d %H:%M:%f', 'now')",
    "mysql": "UTC_TIMESTAMP(6)",
    "mariadb": "UTC_TIMESTAMP(6)",
}


@Operations.register_operation("create_materialized_view")
class CreateMaterializedViewOp(MigrateOperation):
    """Create a :class:`~sqlaopt.structure.MaterializedView` (with its indexes)."""

    def __init__(self, view: MaterializedView, *, with_data: bool = True) -> None:
        self.view = view
        self.with_data = with_data

    @classmethod
    def create_materialized_view(
        cls, operations: Operations, view: MaterializedView, *, with_data: bool = True
    ) -> Any:
        """``op.create_materialized_view(view, with_data=True)``."""
        return operations.invoke(cls(view, with_data=with_data))

    def reverse(self) -> DropMaterializedViewOp:
        return DropMaterializedViewOp(self.view)


@Operations.register_operation("drop_materialized_view")
class DropMaterializedViewOp(MigrateOperation):
    """Drop a :class:`~sqlaopt.structure.MaterializedView` and forget its refresh time."""

    def __init__(self, view: MaterializedView) -> None:
        self.view = view

    @classmethod
    def drop_materialized_view(cls, operations: Operations, view: MaterializedView) -> Any:
        """``op.drop_materialized_view(view)``."""
        return operations.invoke(cls(view))

    def reverse(self) -> CreateMaterializedViewOp:
        return CreateMaterializedViewOp(self.view)


@Operations.register_operation("replace_materialized_view")
class ReplaceMaterializedViewOp(MigrateOperation):
    """Replace ``replaces`` (the definition in the database) by ``view``: drop, then create."""

    def __init__(
        self, view: MaterializedView, *, replaces: MaterializedView, with_data: bool = True
    ) -> None:
        self.view = view
        self.replaces = replaces
        self.with_data = with_data

    @classmethod
    def replace_materialized_view(
        cls,
        operations: Operations,
        view: MaterializedView,
        *,
        replaces: MaterializedView,
        with_data: bool = True,
    ) -> Any:
        """``op.replace_materialized_view(new_view, replaces=old_view)``."""
        return operations.invoke(cls(view, replaces=replaces, with_data=with_data))

    def reverse(self) -> ReplaceMaterializedViewOp:
        return ReplaceMaterializedViewOp(self.replaces, replaces=self.view)


def _run(operations: Operations, statement: str) -> None:
    # op.execute() parses ":name" as a parameter; the rendered SQL has none, so colons in
    # literals (times, casts) are escaped.
    operations.execute(text(statement.replace(":", "\\:")))


def _key(operations: Operations) -> str:
    return dialect_key(operations.get_context().dialect)


def _create(operations: Operations, view: MaterializedView, with_data: bool) -> None:
    key = _key(operations)
    for statement in view.ddl(key, with_data=with_data):
        _run(operations, statement)
    _remember(operations, view, key, refreshed=with_data)


def _drop(operations: Operations, view: MaterializedView) -> None:
    key = _key(operations)
    for statement in view.drop_ddl(key):
        _run(operations, statement)
    _remember(operations, view, key, refreshed=None)


def _remember(
    operations: Operations, view: MaterializedView, key: str, *, refreshed: bool | None
) -> None:
    """Write the view's ``sqlaopt_refreshes`` row (``refreshed``: now / never); ``None``
    deletes it."""
    dialect = offline_dialect(key)
    _run(operations, str(CreateTable(REFRESHES, if_not_exists=True).compile(dialect=dialect)))
    forget = REFRESHES.delete().where(REFRESHES.c.name == view.name)
    _run(operations, compile_literal(forget, dialect))
    if refreshed is not None:
        when: ColumnElement[Any] = literal_column(_UTC_NOW[key] if refreshed else "NULL")
        record = insert(REFRESHES).values(name=view.name, refreshed_at=when)
        _run(operations, compile_literal(record, dialect))


@Operations.implementation_for(CreateMaterializedViewOp)
def _create_view(operations: Operations, operation: CreateMaterializedViewOp) -> None:
    _create(operations, operation.view, operation.with_data)


@Operations.implementation_for(DropMaterializedViewOp)
def _drop_view(operations: Operations, operation: DropMaterializedViewOp) -> None:
    _drop(operations, operation.view)


@Operations.implementation_for(ReplaceMaterializedViewOp)
def _replace_view(operations: Operations, operation: ReplaceMaterializedViewOp) -> None:
    _drop(operations, operation.replaces)
    _create(operations, operation.view, operation.with_data)
