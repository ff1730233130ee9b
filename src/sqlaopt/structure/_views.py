"""``MaterializedView``: a view declared from a SQLAlchemy ``select()``, on every database.

PostgreSQL gets a real ``MATERIALIZED VIEW`` and ``REFRESH MATERIALIZED VIEW CONCURRENTLY``
(readers are never blocked; it needs a unique index on plain columns without ``WHERE``).
SQLite and MySQL/MariaDB have no materialized views: the view is a table of the same name
filled by ``INSERT ... SELECT`` of the same query, and a refresh replaces its rows in one
transaction (readers of an MVCC database keep seeing the old rows until the commit).
"""

from __future__ import annotations

import datetime as dt
import time
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Float,
    Index,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    event,
    insert,
    inspect,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import CompileError
from sqlalchemy.schema import CreateIndex, CreateTable
from sqlalchemy.sql.elements import ClauseElement, ColumnClause, Label
from sqlalchemy.sql.selectable import SelectBase
from sqlalchemy.types import NullType, TypeEngine

from .._bind import Bind, connection_for
from .._names import did_you_mean
from ..indexes._dialects import validate_dialect
from ..indexes._render import offline_dialect
from . import _refreshes
from ._common import dialect_family, name_within_limit, quote, transaction, utc_now, valid_name
from ._errors import ReadOnlyViewError, StructureError

__all__ = ["MaterializedView", "Refresh", "compile_literal"]

MARK = "sqlaopt.structure"


@dataclass(frozen=True)
class Refresh:
    """What :meth:`MaterializedView.refresh` did."""

    name: str
    refreshed_at: dt.datetime
    """UTC time the refresh started: the view's data is at least this fresh."""
    seconds: float
    concurrently: bool
    """True when readers were never blocked: ``REFRESH ... CONCURRENTLY`` on PostgreSQL, the
    replace-in-one-transaction refresh on other databases."""


def compile_literal(element: ClauseElement, dialect: Dialect) -> str:
    """``element`` as SQL for ``dialect`` with every parameter written in (DDL has none)."""
    try:
        return str(element.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    except (CompileError, NotImplementedError) as error:
        raise StructureError(
            f"the query cannot be written as {dialect.name} SQL with its values inlined "
            f"(a view has no parameters): {error}"
        ) from error


def _as_dialect(dialect: str | Dialect) -> Dialect:
    if isinstance(dialect, str):
        try:
            return offline_dialect(validate_dialect(dialect))
        except ValueError as error:
            raise StructureError(str(error)) from None
    return dialect


class MaterializedView:
    """A materialized view declared from a ``select()``; see docs/structure.md.

    ``query`` is any SQLAlchemy ``select()`` whose columns all have names (label the
    expressions); its values are written into the view's SQL. ``unique`` names the columns
    of the unique index that ``REFRESH ... CONCURRENTLY`` needs and the ORM class uses as
    its primary key; pass ``None`` for a view without one (refresh it with
    ``concurrently=False``). ``indexes`` maps further index names to their columns.
    """

    def __init__(
        self,
        name: str,
        query: SelectBase,
        *,
        unique: Sequence[str] | None,
        indexes: Mapping[str, Sequence[str]] | None = None,
        doc: str = "",
    ) -> None:
        self.name = valid_name(name, "materialized view")
        self.query = query
        self.doc = doc
        self.table = Table(self.name, MetaData(), *_columns(self.name, query), info={MARK: self})
        self.unique: tuple[str, ...] | None = None
        if unique is not None:
            self.unique = self._known(unique, "unique")
            Index(name_within_limit(f"{self.name}_key"), *self._columns_of(self.unique),
                  unique=True)
        for index_name, columns in (indexes or {}).items():
            known = self._known(columns, index_name)
            Index(valid_name(index_name, "index"), *self._columns_of(known))
        self._classes: weakref.WeakKeyDictionary[type, type] = weakref.WeakKeyDictionary()

    def _known(self, columns: Iterable[str], what: str) -> tuple[str, ...]:
        names = tuple(columns)
        if not names:
            raise StructureError(f"{self.name}: {what} needs at least one column")
        for column in names:
            if column not in self.table.c:
                raise StructureError(
                    f"{self.name}: {what} names {column!r}, which the query does not select"
                    f"{did_you_mean(column, self.table.c.keys())}; columns: "
                    f"{', '.join(self.table.c.keys())}"
                )
        return names

    def _columns_of(self, names: Iterable[str]) -> list[Column[Any]]:
        return [self.table.c[name] for name in names]

    def __repr__(self) -> str:
        return f"<MaterializedView {self.name} unique={self.unique}>"

    # --- DDL -----------------------------------------------------------------------------

    def ddl(self, dialect: str | Dialect = "postgresql", *, with_data: bool = True) -> list[str]:
        """The statements that create the view on ``dialect`` (``postgresql``, ``sqlite``,
        ``mysql``, ``mariadb`` or a SQLAlchemy dialect), one per item, without ``;``.
        ``with_data=False`` creates it empty (PostgreSQL: ``WITH NO DATA``, unreadable until
        the first refresh)."""
        sa_dialect = _as_dialect(dialect)
        select_sql = compile_literal(self.query, sa_dialect)
        if sa_dialect.name == "postgresql":
            data = "WITH DATA" if with_data else "WITH NO DATA"
            statements = [
                f"CREATE MATERIALIZED VIEW IF NOT EXISTS {quote(sa_dialect, self.name)} AS\n"
                f"{select_sql}\n{data}"
            ]
            statements += self._index_ddl(self.table, sa_dialect)
            return statements
        table = self._fallback_table(sa_dialect)
        statements = [str(CreateTable(table).compile(dialect=sa_dialect)).strip()]
        statements += self._index_ddl(table, sa_dialect)
        if with_data:
            statements.append(self._fill_sql(table, sa_dialect))
        return statements

    def drop_ddl(self, dialect: str | Dialect = "postgresql") -> list[str]:
        """The statement that drops the view (its indexes go with it)."""
        sa_dialect = _as_dialect(dialect)
        kind = "MATERIALIZED VIEW" if sa_dialect.name == "postgresql" else "TABLE"
        return [f"DROP {kind} IF EXISTS {quote(sa_dialect, self.name)}"]

    def _index_ddl(self, table: Table, dialect: Dialect) -> list[str]:
        exists = dialect.name != "mysql" or getattr(dialect, "is_mariadb", False)
        return [
            str(CreateIndex(index, if_not_exists=exists).compile(dialect=dialect)).strip()
            for index in sorted(table.indexes, key=lambda i: (not i.unique, str(i.name)))
        ]

    def _fallback_table(self, dialect: Dialect) -> Table:
        """The table that stands in for the view where there are no materialized views."""
        copy = self.table.to_metadata(MetaData())
        if dialect_family(dialect) == "mysql":
            for column in copy.c:
                column.type = _mysql_storable(column.type)
        return copy

    def _fill_sql(self, table: Table, dialect: Dialect) -> str:
        fill = insert(table).from_select(list(table.c.keys()), self.query)
        return compile_literal(fill, dialect)

    # --- against a database --------------------------------------------------------------

    def exists(self, bind: Bind) -> bool:
        """Whether the view (or its stand-in table) exists on ``bind``'s database."""
        with connection_for(bind) as conn:
            return self._kind(conn) is not None

    def _kind(self, conn: Connection) -> str | None:
        """``"m"`` (populated materialized view), ``"m-"`` (never populated), ``"table"``
        (another database's stand-in) or None when absent."""
        if conn.dialect.name == "postgresql":
            row = conn.execute(
                text(
                    "SELECT c.relkind, c.relispopulated FROM pg_class c "
                    "WHERE c.oid = to_regclass(:name)"
                ),
                {"name": quote(conn.dialect, self.name)},
            ).first()
            if row is None:
                return None
            if row[0] != "m":
                raise StructureError(
                    f"{self.name!r} exists but is not a materialized view (relkind {row[0]!r})"
                )
            return "m" if row[1] else "m-"
        return "table" if inspect(conn).has_table(self.name) else None

    def create(self, bind: Bind, *, with_data: bool = True) -> bool:
        """Create the view with its indexes and its ``sqlaopt_refreshes`` row; False (and
        nothing done) when it already exists. One transaction where the database allows
        (MySQL/MariaDB commit each DDL statement)."""
        with transaction(bind) as conn:
            if self._kind(conn) is not None:
                return False
            _refreshes.ensure_table(conn)
            started, began = utc_now(), time.perf_counter()
            for statement in self.ddl(conn.dialect, with_data=with_data):
                conn.exec_driver_sql(statement)
            seconds = time.perf_counter() - began if with_data else None
            _refreshes.record(conn, self.name, started if with_data else None, seconds)
        return True

    def drop(self, bind: Bind) -> None:
        """Drop the view (if it exists) and forget its refresh time."""
        with transaction(bind) as conn:
            for statement in self.drop_ddl(conn.dialect):
                conn.exec_driver_sql(statement)
            _refreshes.forget(conn, self.name)

    def refresh(self, bind: Bind, *, concurrently: bool = True) -> Refresh:
        """Recompute the view's rows and record the time.

        PostgreSQL, ``concurrently=True``: ``REFRESH MATERIALIZED VIEW CONCURRENTLY``, which
        never blocks readers; it needs a unique index on plain columns without ``WHERE``
        (:class:`StructureError` otherwise; pass ``concurrently=False`` for a plain refresh,
        which blocks readers while it runs). A view never populated (``with_data=False``)
        gets a plain refresh, since PostgreSQL cannot refresh it concurrently.
        Other databases: delete and re-insert the rows in one transaction.
        """
        with transaction(bind) as conn:
            return self._refresh(conn, concurrently)

    def _refresh(self, conn: Connection, concurrently: bool) -> Refresh:
        kind = self._kind(conn)
        if kind is None:
            raise StructureError(
                f"materialized view {self.name!r} does not exist on this database: create it "
                "first (view.create(bind), or op.create_materialized_view in a migration)"
            )
        started, began = utc_now(), time.perf_counter()
        if kind == "table":
            conn.execute(self.table.delete())
            conn.exec_driver_sql(self._fill_sql(self.table, conn.dialect))
            used = True
        else:
            used = concurrently and kind == "m"
            if used and not self._has_refresh_key(conn):
                raise StructureError(
                    f"REFRESH MATERIALIZED VIEW CONCURRENTLY {self.name} needs a unique index "
                    "on plain columns without WHERE, and the view has none: declare "
                    "unique=[...] (and re-create it), or refresh with concurrently=False, "
                    "which blocks readers while it runs"
                )
            keyword = " CONCURRENTLY" if used else ""
            conn.exec_driver_sql(
                f"REFRESH MATERIALIZED VIEW{keyword} {quote(conn.dialect, self.name)}"
            )
        seconds = time.perf_counter() - began
        _refreshes.ensure_table(conn)
        _refreshes.record(conn, self.name, started, seconds)
        return Refresh(self.name, started.replace(tzinfo=dt.timezone.utc), seconds, used)

    def _has_refresh_key(self, conn: Connection) -> bool:
        found = conn.execute(
            text(
                "SELECT 1 FROM pg_index i WHERE i.indrelid = to_regclass(:name) "
                "AND i.indisunique AND i.indisvalid AND i.indpred IS NULL "
                "AND i.indexprs IS NULL"
            ),
            {"name": quote(conn.dialect, self.name)},
        ).first()
        return found is not None

    def last_refreshed(self, bind: Bind) -> dt.datetime | None:
        """When the last refresh started (aware, UTC), or None if never refreshed."""
        with connection_for(bind) as conn:
            if not inspect(conn).has_table(_refreshes.REFRESHES.name):
                return None
            value = _refreshes.read(conn, self.name)
        return None if value is None else value.replace(tzinfo=dt.timezone.utc)

    def refresh_if_older(
        self, bind: Bind, max_age: dt.timedelta, *, concurrently: bool = True
    ) -> Refresh | None:
        """Refresh when the view was never refreshed or its last refresh started more than
        ``max_age`` ago; return the :class:`Refresh`, or None when it was fresh enough.

        Safe to call from many workers at once: the view's ``sqlaopt_refreshes`` row is
        locked first and the age read again under the lock, so one worker refreshes and the
        others, once it commits, find the view fresh.
        """
        if max_age < dt.timedelta(0):
            raise StructureError(f"max_age must not be negative, got {max_age}")
        with transaction(bind) as conn:
            _refreshes.ensure_table(conn)
            _refreshes.ensure_row(conn, self.name)
            last = _refreshes.read(conn, self.name, lock=True)
            if last is not None and utc_now() - last <= max_age:
                return None
            return self._refresh(conn, concurrently)

    # --- ORM -------------------------------------------------------------------------------

    def orm_class(self, base: type[Any], name: str | None = None) -> type[Any]:
        """A read-only mapped class of the view on declarative ``base`` (made once per base).

        Its primary key is the ``unique`` columns (every column without them). Queries work
        as on any mapped class; a flush that would insert, update or delete one of its rows
        raises :class:`ReadOnlyViewError`. The view is not added to ``base.metadata``, so
        ``create_all()`` and Alembic autogenerate leave it alone.
        """
        existing = self._classes.get(base)
        if existing is not None:
            return existing
        key = self.unique or tuple(self.table.c.keys())
        namespace = {
            "__table__": self.table,
            "__mapper_args__": {"primary_key": [self.table.c[c] for c in key]},
            "__doc__": self.doc or f"Read-only rows of the materialized view {self.name}.",
        }
        mapped = type(name or _class_name(self.name), (base,), namespace)
        for operation in ("before_insert", "before_update", "before_delete"):
            event.listen(mapped, operation, _refuse_write(self.name, operation))
        self._classes[base] = mapped
        return mapped


def _refuse_write(view: str, operation: str) -> Any:
    done = {"before_insert": "inserted", "before_update": "updated", "before_delete": "deleted"}

    def refuse(mapper: Any, connection: Any, target: Any) -> None:
        raise ReadOnlyViewError(
            f"{view} is a materialized view: its rows cannot be {done[operation]}; change "
            "the tables it reads and refresh it"
        )

    return refuse


def _class_name(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_") if part)


def _columns(view: str, query: SelectBase) -> list[Column[Any]]:
    columns: list[Column[Any]] = []
    for element in query.selected_columns:
        name = getattr(element, "name", None)
        if not isinstance(element, (Label, ColumnClause)) or not isinstance(name, str):
            raise StructureError(
                f"{view}: every selected column needs a name; label {element} "
                "(e.g. func.count(x).label('total'))"
            )
        if isinstance(element.type, NullType):
            raise StructureError(
                f"{view}: column {name!r} has no SQL type (a function SQLAlchemy does not "
                "know); give it one, e.g. func.f(x, type_=Date), so every database can store it"
            )
        if any(c.name == name for c in columns):
            raise StructureError(f"{view}: two selected columns are named {name!r}")
        columns.append(Column(name, element.type))
    return columns


def _mysql_storable(type_: TypeEngine[Any]) -> TypeEngine[Any]:
    """A type MySQL/MariaDB can store the query's values in without losing any: VARCHAR
    needs a length; a bare NUMERIC would be DECIMAL(10,0) there, and a sum or an average
    outgrows its input's precision and scale, so decimals get DECIMAL(38, 10) or wider."""
    if isinstance(type_, String) and not isinstance(type_, Text) and type_.length is None:
        return Text()
    if isinstance(type_, Numeric) and not isinstance(type_, Float):
        return Numeric(38, max(type_.scale or 0, 10))
    return type_
