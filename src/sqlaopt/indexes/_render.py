"""``ddl()``: the spec as separate, idempotent SQL statements for one dialect."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Index, String
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.dialects.postgresql import ExcludeConstraint
from sqlalchemy.engine import Dialect
from sqlalchemy.schema import AddConstraint, CreateIndex

from ._apply import Plan, PlanItem, plan
from ._dialects import needs_btree_gist, validate_dialect
from ._introspect import qualified_index
from ._report import REPORT
from ._spec import Entry, Spec

__all__ = [
    "BTREE_GIST",
    "create_statement",
    "ddl",
    "drop_statement",
    "literal",
    "offline_dialect",
    "plan_statements",
]

#: The statement that must precede GiST indexes and constraints on scalar columns.
BTREE_GIST = "CREATE EXTENSION IF NOT EXISTS btree_gist"


def offline_dialect(name: str) -> Dialect:
    """A SQLAlchemy dialect to render for ``name`` without a database.

    The ``named`` paramstyle keeps a ``%`` in a literal single: the text is for people and
    migration files, not for a pyformat driver (which would need it doubled).
    """
    factories: dict[str, Any] = {
        "postgresql": postgresql.dialect,
        "sqlite": sqlite.dialect,
        "mysql": mysql.dialect,
        "mariadb": mysql.dialect,
    }
    dialect: Any = factories[name](paramstyle="named")
    if name == "postgresql":
        # Unconnected, SQLAlchemy 2.0.x assumes standard_conforming_strings = off and doubles
        # backslashes in literals; servers have had it on by default since PostgreSQL 9.1,
        # where '\\' is two backslashes. (2.1 already renders them single.)
        dialect._backslash_escapes = False
    if name in ("mysql", "mariadb"):
        dialect.is_mariadb = name == "mariadb"
    return dialect  # type: ignore[no-any-return]


def ddl(
    spec: Spec | Iterable[Entry] = REPORT, dialect: str = "postgresql", target: object | None = None
) -> list[str]:
    """The statements that build ``spec`` on ``dialect``, one per list item, without ``;``.

    ``dialect`` is ``postgresql``, ``sqlite``, ``mysql`` or ``mariadb``; ``target`` is the
    model (MetaData or declarative base) whose tables and column types the spec is fitted to,
    the reference schema when None (a target :func:`apply` already ran on keeps that
    outcome: renames, skips). Each statement is idempotent where the database allows:
    PostgreSQL gets ``CREATE EXTENSION IF NOT EXISTS btree_gist`` first when needed,
    ``CREATE INDEX CONCURRENTLY IF NOT EXISTS`` (run each outside a transaction) and a guarded
    ``ALTER TABLE ... ADD CONSTRAINT`` for exclusion constraints; SQLite and MariaDB get
    ``CREATE INDEX IF NOT EXISTS``; MySQL, which has no such clause, a plain ``CREATE INDEX``.
    Entries a dialect does not support are left out (see :attr:`EntryResult.dialects`).

    Caution: ``IF NOT EXISTS`` keeps an INVALID index left by a failed concurrent build; use
    :func:`create`, which drops and rebuilds it.
    """
    key = validate_dialect(dialect)
    return plan_statements(plan(spec, target, concurrently=key == "postgresql"), key)


def plan_statements(fitted: Plan, key: str) -> list[str]:
    """The statements for every item of ``fitted`` that ``key`` supports, in a safe order:
    the extension, then indexes, then exclusion constraints (which lock the table)."""
    items = [item for item in fitted.items if item.status_on(key).status != "skipped"]
    dialect = offline_dialect(key)
    statements = []
    if key == "postgresql" and any(needs_btree_gist(_definition(i)) for i in items):
        statements.append(BTREE_GIST)
    statements += [create_statement(i, dialect, key) for i in items if isinstance(i.obj, Index)]
    statements += [
        create_statement(i, dialect, key) for i in items if isinstance(i.obj, ExcludeConstraint)
    ]
    return statements


def _definition(item: PlanItem) -> Entry:
    assert item.result.definition is not None
    return item.result.definition


def create_statement(item: PlanItem, dialect: Dialect, key: str) -> str:
    """The idempotent statement that builds one item on ``dialect``."""
    if isinstance(item.obj, ExcludeConstraint):
        return _guarded_constraint(item.obj, dialect)
    assert isinstance(item.obj, Index)
    # MySQL rejects CREATE INDEX IF NOT EXISTS; MariaDB, SQLite and PostgreSQL accept it.
    create = CreateIndex(item.obj, if_not_exists=key != "mysql")
    return str(create.compile(dialect=dialect)).strip()


def _guarded_constraint(constraint: ExcludeConstraint, dialect: Dialect) -> str:
    """``ADD CONSTRAINT`` has no ``IF NOT EXISTS``: a DO block makes it idempotent.

    Identifiers are quoted by the dialect's preparer and literals by its string literal
    rendering; the block's dollar quote gets a tag that occurs nowhere in its body, so no
    table name or predicate value (``$$`` included) can end it early.
    """
    add = str(AddConstraint(constraint).compile(dialect=dialect)).strip()
    table = dialect.identifier_preparer.format_table(constraint.table)
    name, regclass = literal(str(constraint.name), dialect), literal(table, dialect)
    body = (
        "BEGIN\n"
        f"    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = {name}"
        f" AND conrelid = CAST({regclass} AS regclass)) THEN\n"
        f"        {add};\n"
        "    END IF;\nEND"
    )
    tag = _dollar_tag(body)
    return f"DO {tag}\n{body}\n{tag}"


def literal(value: str, dialect: Dialect) -> str:
    """``value`` as a SQL string literal, escaped the way ``dialect`` reads it."""
    string: Any = String()  # literal_processor is untyped in SQLAlchemy's stubs
    render = string.literal_processor(dialect)
    return str(render(value))


def _dollar_tag(body: str) -> str:
    """``$sqlaopt$``, or ``$sqlaopt1$``, ... : the first tag that does not occur in ``body``."""
    tag, number = "$sqlaopt$", 0
    while tag in body:
        number += 1
        tag = f"$sqlaopt{number}$"
    return tag


def drop_statement(item: PlanItem, dialect: Dialect, key: str) -> str:
    """The statement that removes one item (CONCURRENTLY for PostgreSQL indexes)."""
    preparer = dialect.identifier_preparer
    assert item.obj is not None and item.table is not None
    raw = str(item.obj.name)
    name = preparer.quote(raw)
    if isinstance(item.obj, ExcludeConstraint):
        return f"ALTER TABLE {preparer.format_table(item.table)} DROP CONSTRAINT IF EXISTS {name}"
    if key == "postgresql":
        return f"DROP INDEX CONCURRENTLY IF EXISTS {qualified_index(dialect, raw, item.table)}"
    if key == "sqlite":
        return f"DROP INDEX IF EXISTS {name}"
    return f"DROP INDEX {name} ON {preparer.format_table(item.table)}"
