"""``MaintainedAggregates``: denormalised aggregates kept exact by the database's own triggers.

Every change to a source row (insert, delete, an update of a column an aggregate reads) first
removes the old row's contribution, then adds the new row's, inside the writer's
transaction. Each step is a single-row, atomic statement (``UPDATE ... SET c = c + 1``, an
upsert), so concurrent writers queue on row locks instead of overwriting each other:

* :class:`DistinctCount` keeps a count per (owner, value) in a side table; the owner's column
  moves when a count goes 0 → 1 or 1 → 0 (a distinct count cannot be decremented without
  knowing the multiplicity).
* :class:`Latest` raises the owner's column with ``c < new``; removing the row holding the
  maximum recomputes it after locking the owner row (a separate statement, so on PostgreSQL it
  reads a snapshot taken after the lock: a concurrent, committed insert is never missed).
* :class:`MonthlyTotal` adds to a (owner, month) row of its own table. A total for *the
  current* month cannot be a column: it changes at midnight on the 1st with no write.

PostgreSQL gets one PL/pgSQL trigger function; SQLite three triggers whose statements carry
the conditions in their ``WHERE``; MySQL/MariaDB three triggers with ``IF`` blocks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Date,
    Integer,
    MetaData,
    Numeric,
    Table,
    and_,
    column,
    except_,
    func,
    inspect,
    literal_column,
    select,
    table,
    true,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import TypeEngine

from .._bind import Bind, connection_for
from .._names import did_you_mean
from ..indexes import Condition
from ..indexes._predicates import Predicate, coerce_predicate
from ..sql import date_bucket
from ._common import dialect_family, name_within_limit, quote, transaction, valid_name
from ._errors import StructureError
from ._views import compile_literal

__all__ = [
    "AggregateCheck",
    "DistinctCount",
    "Latest",
    "MaintainedAggregates",
    "MonthlyTotal",
    "Verification",
]


class _Filtered:
    """``where`` normalised to a tuple of conditions (hashable, compared by value)."""

    where: Predicate

    def __post_init__(self) -> None:
        object.__setattr__(self, "where", coerce_predicate(self.where))


@dataclass(frozen=True)
class DistinctCount(_Filtered):
    """Owner column ``column`` = the number of distinct non-NULL ``of`` values among the
    owner's source rows matching ``where`` (e.g. a barber's clients)."""

    column: str
    of: str
    where: Predicate = None


@dataclass(frozen=True)
class Latest(_Filtered):
    """Owner column ``column`` = the largest ``of`` among the owner's source rows matching
    ``where`` (e.g. a barber's last booking), NULL when there is none."""

    column: str
    of: str
    where: Predicate = None


@dataclass(frozen=True)
class MonthlyTotal(_Filtered):
    """Table ``table`` (``owner_id``, ``month``, ``total``, ``rows``) = per owner and calendar
    month of ``by``, the sum of ``of`` and the number of source rows matching ``where``."""

    table: str
    of: str
    by: str
    where: Predicate = None


Aggregate = DistinctCount | Latest | MonthlyTotal


@dataclass(frozen=True)
class AggregateCheck:
    """One aggregate compared with the live data: ``mismatches`` rows differ."""

    name: str
    mismatches: int
    examples: tuple[tuple[Any, ...], ...] = ()
    """Up to five differing rows: (owner id, ...stored..., ...live...) or the side-table rows
    present on one side only."""

    @property
    def ok(self) -> bool:
        return self.mismatches == 0


@dataclass(frozen=True)
class Verification:
    """The outcome of :meth:`MaintainedAggregates.verify`."""

    checks: tuple[AggregateCheck, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def __str__(self) -> str:
        return "\n".join(
            f"{c.name}: {'ok' if c.ok else f'{c.mismatches} mismatches, e.g. {c.examples[:2]}'}"
            for c in self.checks
        )


class MaintainedAggregates:
    """Aggregates of ``source`` rows per owner (``source.<key>`` references ``owner``'s
    primary key), kept exact by triggers; see docs/structure.md.

    :meth:`install` adds the owner columns that are missing, creates the side tables and
    triggers and fills everything (:meth:`rebuild`); :meth:`verify` compares every stored
    value with the live aggregate; :meth:`uninstall` removes triggers and side tables.
    """

    def __init__(
        self, source: Table, key: str, owner: Table, aggregates: Sequence[Aggregate]
    ) -> None:
        self.source, self.owner, self.key = source, owner, key
        _known(source, key, "key")
        owner_key = [c.name for c in owner.primary_key.columns]
        if len(owner_key) != 1:
            raise StructureError(f"{owner.name} needs a one-column primary key")
        self.owner_key = owner_key[0]
        self.aggregates = tuple(aggregates)
        if not self.aggregates:
            raise StructureError("declare at least one aggregate")
        for aggregate in self.aggregates:
            self._validate(aggregate)
        self.name = name_within_limit(f"{source.name}_maintain_{owner.name}")
        self._metadata = MetaData()
        self.side_tables = {a: self._side_table(a) for a in self.aggregates if _has_side(a)}

    def _validate(self, aggregate: Aggregate) -> None:
        if not isinstance(aggregate, (DistinctCount, Latest, MonthlyTotal)):
            raise StructureError(
                f"an aggregate is DistinctCount, Latest or MonthlyTotal, not {aggregate!r}"
            )
        _known(self.source, aggregate.of, type(aggregate).__name__)
        for condition in coerce_predicate(aggregate.where):
            _known(self.source, condition.column, "where")
        if isinstance(aggregate, MonthlyTotal):
            _known(self.source, aggregate.by, "MonthlyTotal.by")
            valid_name(aggregate.table, "table")
        else:
            valid_name(aggregate.column, "column")

    def __repr__(self) -> str:
        return f"<MaintainedAggregates {self.source.name} -> {self.owner.name}>"

    # --- schema --------------------------------------------------------------------------

    def _side_table(self, aggregate: Aggregate) -> Table:
        owner_id = Column("owner_id", self.source.c[self.key].type, primary_key=True,
                          autoincrement=False)
        if isinstance(aggregate, DistinctCount):
            name = name_within_limit(f"{self.owner.name}_{aggregate.column}_values")
            return Table(
                name, self._metadata, owner_id,
                Column("value", self.source.c[aggregate.of].type, primary_key=True,
                       autoincrement=False),
                Column("n", Integer, nullable=False),
            )
        assert isinstance(aggregate, MonthlyTotal)
        return Table(
            aggregate.table, self._metadata, owner_id,
            Column("month", Date, primary_key=True),
            Column("total", Numeric(38, _scale(self.source.c[aggregate.of].type)),
                   nullable=False),
            Column("rows", BigInteger, nullable=False),
        )

    def _owner_columns(self) -> list[Column[Any]]:
        columns: list[Column[Any]] = []
        for aggregate in self.aggregates:
            if isinstance(aggregate, DistinctCount):
                columns.append(Column(aggregate.column, Integer, nullable=False,
                                      server_default="0"))
            elif isinstance(aggregate, Latest):
                columns.append(Column(aggregate.column, self.source.c[aggregate.of].type))
        return columns

    def install(self, bind: Bind) -> None:
        """Add the missing owner columns, create the side tables and triggers, then
        :meth:`rebuild`. Running it again replaces the triggers. On MySQL/MariaDB each DDL
        statement commits on its own."""
        with transaction(bind) as conn:
            present = {c["name"] for c in inspect(conn).get_columns(self.owner.name)}
            for owner_column in self._owner_columns():
                if owner_column.name not in present:
                    conn.exec_driver_sql(_add_column(conn.dialect, self.owner.name, owner_column))
            for side in self.side_tables.values():
                side.create(conn, checkfirst=True)
            triggers = [*self.drop_trigger_ddl(conn.dialect), *self.trigger_ddl(conn.dialect)]
            for statement in triggers:
                conn.exec_driver_sql(statement)
            self._rebuild(conn)

    def uninstall(self, bind: Bind) -> None:
        """Drop the triggers and side tables (the owner columns and their values stay)."""
        with transaction(bind) as conn:
            for statement in self.drop_trigger_ddl(conn.dialect):
                conn.exec_driver_sql(statement)
            for side in self.side_tables.values():
                side.drop(conn, checkfirst=True)

    # --- triggers ------------------------------------------------------------------------

    def trigger_ddl(self, dialect: Dialect) -> list[str]:
        """The statements that create the triggers on ``dialect``."""
        return _TriggerWriter(self, dialect).create()

    def drop_trigger_ddl(self, dialect: Dialect) -> list[str]:
        return _TriggerWriter(self, dialect).drop()

    # --- checking and rebuilding -----------------------------------------------------------

    def verify(self, bind: Bind) -> Verification:
        """Compare every stored aggregate with the live aggregate of the source rows."""
        with connection_for(bind) as conn:
            return Verification(tuple(self._check(conn, a) for a in self.aggregates))

    def rebuild(self, bind: Bind) -> None:
        """Recompute every stored aggregate from the source rows, in one transaction that
        blocks writers of the source table while it runs (PostgreSQL: ``LOCK TABLE ... IN
        SHARE MODE``; MySQL/MariaDB: a locking read of the rows)."""
        with transaction(bind) as conn:
            self._rebuild(conn)

    def _owner(self, *names: str) -> Any:
        return table(self.owner.name, column(self.owner_key), *(column(n) for n in names))

    def _matching(self, aggregate: Aggregate) -> ColumnElement[bool]:
        conditions = [c.sql(self.source.c[c.column]) for c in coerce_predicate(aggregate.where)]
        return and_(self.source.c[self.key].isnot(None), true(), *conditions)

    def _live(self, aggregate: Aggregate) -> Any:
        """The live aggregate per owner (and value or month) as a subquery."""
        source, key = self.source, self.source.c[self.key].label("owner_id")
        matching = self._matching(aggregate)
        if isinstance(aggregate, DistinctCount):
            of = source.c[aggregate.of]
            return (select(key, of.label("value"), func.count().label("n"))
                    .where(matching, of.isnot(None)).group_by(key, of))
        if isinstance(aggregate, Latest):
            return select(key, func.max(source.c[aggregate.of]).label("latest")).where(
                matching).group_by(key)
        month = date_bucket("month", source.c[aggregate.by]).label("month")
        return select(
            key, month, func.coalesce(func.sum(source.c[aggregate.of]), 0).label("total"),
            func.count().label("rows"),
        ).where(matching).group_by(key, month)

    def _check(self, conn: Connection, aggregate: Aggregate) -> AggregateCheck:
        if isinstance(aggregate, (DistinctCount, MonthlyTotal)):
            side = self.side_tables[aggregate]
            stored: Any = select(*side.c)
            live = self._live(aggregate)
            if isinstance(aggregate, MonthlyTotal):
                # SQLite sums NUMERIC as floats: compare to the column's scale.
                stored, live = _rounded(stored, side), _rounded(live.subquery(), side)
            differing = [*conn.execute(except_(stored, live)), *conn.execute(except_(live, stored))]
            if isinstance(aggregate, DistinctCount):
                differing += self._owner_differences(conn, aggregate)
            return AggregateCheck(_label(aggregate), len(differing), tuple(
                tuple(r) for r in differing[:5]))
        return self._latest_check(conn, aggregate)

    def _owner_differences(self, conn: Connection, aggregate: DistinctCount) -> list[Any]:
        live = self._live(aggregate).subquery()
        counted = (select(live.c.owner_id, func.count().label("n"))
                   .group_by(live.c.owner_id).subquery())
        owner = self._owner(aggregate.column)
        value = func.coalesce(counted.c.n, 0)
        return list(conn.execute(
            select(owner.c[self.owner_key], owner.c[aggregate.column], value)
            .select_from(owner.outerjoin(counted, counted.c.owner_id == owner.c[self.owner_key]))
            .where(owner.c[aggregate.column].is_distinct_from(value))
        ))

    def _latest_check(self, conn: Connection, aggregate: Latest) -> AggregateCheck:
        live = self._live(aggregate).subquery()
        owner = self._owner(aggregate.column)
        rows = list(conn.execute(
            select(owner.c[self.owner_key], owner.c[aggregate.column], live.c.latest)
            .select_from(owner.outerjoin(live, live.c.owner_id == owner.c[self.owner_key]))
            .where(owner.c[aggregate.column].is_distinct_from(live.c.latest))
        ))
        return AggregateCheck(_label(aggregate), len(rows), tuple(tuple(r) for r in rows[:5]))

    def _rebuild(self, conn: Connection) -> None:
        family = dialect_family(conn.dialect)
        source = quote(conn.dialect, self.source.name)
        if family == "postgresql":
            conn.exec_driver_sql(f"LOCK TABLE {source} IN SHARE MODE")
        elif family == "mysql":
            conn.exec_driver_sql(f"SELECT count(*) FROM {source} LOCK IN SHARE MODE")
        for aggregate in self.aggregates:
            if aggregate in self.side_tables:
                side = self.side_tables[aggregate]
                conn.execute(side.delete())
                conn.execute(side.insert().from_select(list(side.c.keys()), self._live(aggregate)))
            if isinstance(aggregate, (DistinctCount, Latest)):
                conn.execute(self._owner_update(aggregate))

    def _owner_update(self, aggregate: DistinctCount | Latest) -> Any:
        owner = self._owner(aggregate.column)
        owner_id = owner.c[self.owner_key]
        if isinstance(aggregate, DistinctCount):
            side = self.side_tables[aggregate]
            value: Any = (select(func.count()).where(side.c.owner_id == owner_id)
                          .scalar_subquery())
        else:
            value = (select(func.max(self.source.c[aggregate.of]))
                     .where(self._matching(aggregate), self.source.c[self.key] == owner_id)
                     .scalar_subquery())
        return owner.update().values({aggregate.column: value})


def _rounded(rows: Any, side: Table) -> Any:
    columns = rows.selected_columns if hasattr(rows, "selected_columns") else rows.c
    scale = _scale(side.c.total.type)
    return select(columns.owner_id, columns.month,
                  func.round(columns.total, scale).label("total"), columns.rows)


def _known(source: Table, name: str, what: str) -> None:
    if name not in source.c:
        raise StructureError(
            f"{what}: {source.name} has no column {name!r}{did_you_mean(name, source.c.keys())}"
        )


def _has_side(aggregate: Aggregate) -> bool:
    return isinstance(aggregate, (DistinctCount, MonthlyTotal))


def _label(aggregate: Aggregate) -> str:
    if isinstance(aggregate, MonthlyTotal):
        return aggregate.table
    return aggregate.column


def _scale(type_: TypeEngine[Any]) -> int:
    scale = getattr(type_, "scale", None)
    return scale if isinstance(scale, int) else 10


def _add_column(dialect: Dialect, owner: str, new: Column[Any]) -> str:
    sql = f"ALTER TABLE {quote(dialect, owner)} ADD COLUMN {quote(dialect, new.name)} "
    sql += new.type.compile(dialect=dialect)
    if new.server_default is not None:
        sql += f" DEFAULT {new.server_default.arg} NOT NULL"  # type: ignore[attr-defined]
    return sql


# --- trigger text ----------------------------------------------------------------------------


class _TriggerWriter:
    """Renders the triggers of one :class:`MaintainedAggregates` for one dialect."""

    def __init__(self, maintained: MaintainedAggregates, dialect: Dialect) -> None:
        self.m = maintained
        self.dialect = dialect
        self.family = dialect_family(dialect)
        if self.family not in ("postgresql", "sqlite", "mysql"):
            raise StructureError(
                f"maintained aggregates have triggers for PostgreSQL, SQLite and MySQL/MariaDB, "
                f"not for {dialect.name}; keep the values with verify() and rebuild() instead"
            )
        self.q: Callable[[str], str] = lambda name: quote(dialect, name)

    # Names: one function and trigger on PostgreSQL, three triggers elsewhere.
    def _trigger(self, event: str) -> str:
        return name_within_limit(f"{self.m.name}_{event[:3].lower()}")

    def watched(self) -> list[str]:
        """The source columns whose change can change an aggregate."""
        names = [self.m.key]
        for a in self.m.aggregates:
            names += [a.of, *(c.column for c in coerce_predicate(a.where))]
            if isinstance(a, MonthlyTotal):
                names.append(a.by)
        return list(dict.fromkeys(names))

    def drop(self) -> list[str]:
        source = self.q(self.m.source.name)
        if self.family == "postgresql":
            return [f"DROP TRIGGER IF EXISTS {self.q(self.m.name)} ON {source}",
                    f"DROP FUNCTION IF EXISTS {self.q(self.m.name)}()"]
        return [f"DROP TRIGGER IF EXISTS {self.q(self._trigger(e))}"
                for e in ("INSERT", "UPDATE", "DELETE")]

    def create(self) -> list[str]:
        if self.family == "postgresql":
            return self._postgresql()
        return [self._row_trigger(event) for event in ("INSERT", "UPDATE", "DELETE")]

    def _postgresql(self) -> list[str]:
        body = "BEGIN\n"
        body += f"    IF TG_OP <> 'INSERT' AND {self.guard('OLD')} THEN\n"
        body += self._block("OLD", remove=True, indent=8)
        body += "    END IF;\n"
        body += f"    IF TG_OP <> 'DELETE' AND {self.guard('NEW')} THEN\n"
        body += self._block("NEW", remove=False, indent=8)
        body += "    END IF;\n    RETURN NULL;\nEND"
        columns = ", ".join(self.q(c) for c in self.watched())
        return [
            f"CREATE OR REPLACE FUNCTION {self.q(self.m.name)}() RETURNS trigger "
            f"LANGUAGE plpgsql AS $maintain$\n{body}\n$maintain$",
            f"CREATE TRIGGER {self.q(self.m.name)} AFTER INSERT OR DELETE OR UPDATE OF "
            f"{columns} ON {self.q(self.m.source.name)} FOR EACH ROW EXECUTE FUNCTION "
            f"{self.q(self.m.name)}()",
        ]

    def _row_trigger(self, event: str) -> str:
        rows = {"INSERT": [("NEW", False)], "DELETE": [("OLD", True)],
                "UPDATE": [("OLD", True), ("NEW", False)]}[event]
        name, source = self.q(self._trigger(event)), self.q(self.m.source.name)
        head = f"CREATE TRIGGER {name} AFTER {event} ON {source} FOR EACH ROW\nBEGIN\n"
        if self.family == "sqlite":
            body = "".join(self._block(row, remove=remove, indent=4) for row, remove in rows)
            return head + body + "END"
        body = "    DECLARE locked INTEGER;\n" if any(r for _, r in rows) else ""
        if event == "UPDATE":
            same = " AND ".join(f"OLD.{self.q(c)} <=> NEW.{self.q(c)}" for c in self.watched())
            body += f"    IF NOT ({same}) THEN\n"
        for row, remove in rows:
            block = self._block(row, remove=remove, indent=8)
            body += f"    IF {self.guard(row)} THEN\n{block}    END IF;\n"
        if event == "UPDATE":
            body += "    END IF;\n"
        return head + body + "END"

    # --- conditions and statements -------------------------------------------------------

    def ref(self, row: str, name: str) -> ColumnElement[Any]:
        return literal_column(f"{row}.{self.q(name)}", self.m.source.c[name].type)

    def guard(self, row: str) -> str:
        """The owner key is set (each aggregate adds its own ``where``)."""
        return f"({row}.{self.q(self.m.key)} IS NOT NULL)"

    def _where(self, row: str, aggregate: Aggregate) -> str:
        conditions: list[Condition] = list(coerce_predicate(aggregate.where))
        parts = [compile_literal(c.sql(self.ref(row, c.column)), self.dialect) for c in conditions]
        if isinstance(aggregate, DistinctCount):
            parts.append(f"{row}.{self.q(aggregate.of)} IS NOT NULL")
        return " AND ".join(f"({p})" for p in parts) or "TRUE"

    def _block(self, row: str, *, remove: bool, indent: int) -> str:
        lines = []
        for aggregate in self.m.aggregates:
            where = self._where(row, aggregate)
            statements = self._statements(row, aggregate, remove)
            if self.family == "sqlite":
                guard = f"{self.guard(row)} AND {where}"
                lines += [s.replace("{guard}", guard) + ";" for s in statements]
            else:
                body = [s.replace(" AND ({guard})", "").replace(" WHERE ({guard})", "") + ";"
                        for s in statements]
                lines.append(f"IF {where} THEN")
                lines += ["    " + s for s in body]
                lines.append("END IF;")
        pad = " " * indent
        return "".join(f"{pad}{line}\n" for line in lines)

    def _statements(self, row: str, aggregate: Aggregate, remove: bool) -> list[str]:
        if isinstance(aggregate, DistinctCount):
            return self._distinct(row, aggregate, remove)
        if isinstance(aggregate, Latest):
            return self._latest(row, aggregate, remove)
        return self._monthly(row, aggregate, remove)

    def _owner_where(self, row: str) -> str:
        return f"{self.q(self.m.owner_key)} = {row}.{self.q(self.m.key)}"

    def _upsert(self, side: Table, values: Sequence[str], keys: Sequence[str],
                changes: dict[str, str]) -> str:
        """``INSERT INTO side SELECT values WHERE guard`` adding ``changes`` on a conflict."""
        columns = ", ".join(self.q(c.name) for c in side.c)
        head = f"INSERT INTO {self.q(side.name)} ({columns}) SELECT {', '.join(values)}"
        if self.family == "mysql":
            update = ", ".join(f"{self.q(c)} = {self.q(c)} + {v}" for c, v in changes.items())
            return f"{head} FROM DUAL WHERE ({{guard}}) ON DUPLICATE KEY UPDATE {update}"
        table_name = self.q(side.name)
        update = ", ".join(
            f"{self.q(c)} = {table_name}.{self.q(c)} + {v}" for c, v in changes.items())
        conflict = ", ".join(self.q(k) for k in keys)
        return f"{head} WHERE ({{guard}}) ON CONFLICT ({conflict}) DO UPDATE SET {update}"

    def _distinct(self, row: str, aggregate: DistinctCount, remove: bool) -> list[str]:
        side = self.m.side_tables[aggregate]
        q, owner, column = self.q, self.q(self.m.owner.name), self.q(aggregate.column)
        key, value = f"{row}.{q(self.m.key)}", f"{row}.{q(aggregate.of)}"
        match = f"{q('owner_id')} = {key} AND {q('value')} = {value}"
        count = f"(SELECT {q('n')} FROM {q(side.name)} WHERE {match})"
        if not remove:
            return [
                self._upsert(side, [key, value, "1"], ["owner_id", "value"], {"n": "1"}),
                f"UPDATE {owner} SET {column} = {column} + 1 WHERE {self._owner_where(row)} "
                f"AND {count} = 1 AND ({{guard}})",
            ]
        return [
            f"UPDATE {q(side.name)} SET {q('n')} = {q('n')} - 1 WHERE {match} AND ({{guard}})",
            f"UPDATE {owner} SET {column} = {column} - 1 WHERE {self._owner_where(row)} "
            f"AND {count} = 0 AND ({{guard}})",
            f"DELETE FROM {q(side.name)} WHERE {match} AND {q('n')} = 0 AND ({{guard}})",
        ]

    def _latest(self, row: str, aggregate: Latest, remove: bool) -> list[str]:
        q, owner, column = self.q, self.q(self.m.owner.name), self.q(aggregate.column)
        value = f"{row}.{q(aggregate.of)}"
        if not remove:
            return [
                f"UPDATE {owner} SET {column} = {value} WHERE {self._owner_where(row)} "
                f"AND ({column} IS NULL OR {column} < {value}) AND ({{guard}})"
            ]
        source = self.m.source
        conditions = [c.sql(source.c[c.column]) for c in coerce_predicate(aggregate.where)]
        latest = compile_literal(
            select(func.max(source.c[aggregate.of])).where(
                source.c[self.m.key] == literal_column(f"{row}.{q(self.m.key)}"), *conditions),
            self.dialect,
        )
        recompute = (
            f"UPDATE {owner} SET {column} = ({latest}) WHERE {self._owner_where(row)} "
            f"AND ({column} IS NULL OR {column} <= {value}) AND ({{guard}})"
        )
        lock = self._lock_owner(row)
        return [lock, recompute] if lock else [recompute]

    def _lock_owner(self, row: str) -> str | None:
        """Lock the owner row before a recompute, in its own statement: the recompute then
        reads data committed by writers that held the lock (PostgreSQL READ COMMITTED takes
        a snapshot per statement; InnoDB's subquery in UPDATE is a locking read)."""
        owner, where = self.q(self.m.owner.name), self._owner_where(row)
        if self.family == "postgresql":
            return f"PERFORM 1 FROM {owner} WHERE {where} FOR UPDATE"
        if self.family == "mysql":
            return f"SELECT 1 INTO locked FROM {owner} WHERE {where} FOR UPDATE"
        return None

    def _monthly(self, row: str, aggregate: MonthlyTotal, remove: bool) -> list[str]:
        side = self.m.side_tables[aggregate]
        q = self.q
        key = f"{row}.{q(self.m.key)}"
        month = compile_literal(date_bucket("month", self.ref(row, aggregate.by)), self.dialect)
        amount = f"COALESCE({row}.{q(aggregate.of)}, 0)"
        if not remove:
            return [self._upsert(side, [key, month, amount, "1"], ["owner_id", "month"],
                                 {"total": amount, "rows": "1"})]
        match = f"{q('owner_id')} = {key} AND {q('month')} = {month}"
        return [
            f"UPDATE {q(side.name)} SET {q('total')} = {q('total')} - {amount}, "
            f"{q('rows')} = {q('rows')} - 1 WHERE {match} AND ({{guard}})",
            f"DELETE FROM {q(side.name)} WHERE {match} AND {q('rows')} = 0 AND ({{guard}})",
        ]
