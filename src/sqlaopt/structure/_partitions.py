"""``MonthlyPartitions``: a table range-partitioned by month on a timestamp column (PostgreSQL).

The parent's primary key gains the partition column (PostgreSQL requires every unique
constraint of a partitioned table to include it). Indexes declared on the model and entries
of an index spec (:mod:`sqlaopt.indexes`) are created on the parent, so every partition, the
default one and future ones, gets them. Exclusion constraints cannot exist on a partitioned
table; each partition gets its own, and a *month guard* covers pairs of rows in different
months (see :class:`MonthlyPartitions` and docs/structure.md for the proof).
"""

from __future__ import annotations

import datetime as dt
import json
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    CheckConstraint,
    Column,
    Connection,
    DateTime,
    Engine,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    UniqueConstraint,
    func,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ExcludeConstraint
from sqlalchemy.exc import SAWarning
from sqlalchemy.schema import AddConstraint, CreateIndex, CreateTable
from sqlalchemy.sql.elements import quoted_name

from .._bind import Bind, connection_for
from .._names import did_you_mean
from ..explain import _walk, explain, explain_executed
from ..indexes import ExclusionSpec, IndexSpec, Spec, TsRange, apply
from ..indexes._build import owned_entry, private_copy
from ..indexes._render import BTREE_GIST, offline_dialect
from ._common import (
    LOCK_NAMESPACE,
    lock_key,
    name_within_limit,
    quote,
    require_postgresql,
    transaction,
)
from ._errors import StructureError
from ._months import Partition, add_months, live_partitions, month_of

if TYPE_CHECKING:
    from ._migrate import MigrationProgress, MigrationResult

__all__ = ["MonthlyPartitions", "Partition", "scanned_partitions"]

_DIALECT = offline_dialect("postgresql")

Entry = IndexSpec | ExclusionSpec


@dataclass(frozen=True)
class _Guarded:
    """An exclusion constraint made partition-safe: its ``TsRange`` end column and the
    constraint object (on the private copy) whose body each partition repeats."""

    entry: ExclusionSpec
    constraint: ExcludeConstraint
    end: str


class MonthlyPartitions:
    """``table`` partitioned by calendar month of ``column`` (a ``DateTime``); see
    docs/structure.md.

    ``spec`` adds :mod:`sqlaopt.indexes` entries for this table (entries for other tables
    are ignored); entries already applied to the table with :func:`sqlaopt.indexes.apply`
    are taken too. An :class:`~sqlaopt.indexes.ExclusionSpec` must be ``(column WITH =, ...,
    tsrange(<column>, <end>) WITH &&)``: each partition gets it, and the month guard (a
    small table holding the rows that cross a month boundary or start within
    ``max_duration`` of a month's first instant, with the same constraint) catches the pairs
    of rows in different months; a ``CHECK (end - start <= max_duration)`` on the parent is
    what makes that complete. ``retention`` is the number of past months
    :meth:`retire` keeps (None: keep everything). ``lock_timeout`` (seconds) bounds how long
    partition maintenance waits for the parent's lock instead of queueing the application's
    queries behind it.

    Month boundaries are the column's own calendar for naive timestamps and UTC for
    ``DateTime(timezone=True)``.
    """

    def __init__(
        self,
        table: Table,
        column: str,
        *,
        spec: Spec | Iterable[Entry] = (),
        max_duration: dt.timedelta = dt.timedelta(days=1),
        retention: int | None = None,
        lock_timeout: float = 10.0,
    ) -> None:
        if column not in table.c:
            raise StructureError(
                f"table {table.name!r} has no column {column!r}"
                f"{did_you_mean(column, table.c.keys())}"
            )
        if not isinstance(table.c[column].type, DateTime):
            raise StructureError(
                f"{table.name}.{column} is {table.c[column].type}; monthly partitions need a "
                "DateTime column"
            )
        if max_duration <= dt.timedelta(0):
            raise StructureError(f"max_duration must be positive, got {max_duration}")
        if retention is not None and retention < 0:
            raise StructureError(f"retention is a number of months >= 0, got {retention}")
        self.table = table
        self.name = table.name
        self.column = column
        self.timezone = bool(getattr(table.c[column].type, "timezone", False))
        self.max_duration = max_duration
        self.retention = retention
        self.lock_timeout = lock_timeout
        self.key_columns = tuple(c.name for c in table.primary_key.columns)
        if not self.key_columns:
            raise StructureError(f"table {table.name!r} has no primary key")
        self.parent, self.guarded = _fit(table, column, spec)
        if self.guarded:
            check = text(self._duration_check())
            self.parent.append_constraint(CheckConstraint(check, name=self.duration_check_name))

    def __repr__(self) -> str:
        return f"<MonthlyPartitions {self.name} by month of {self.column}>"

    # --- names ---------------------------------------------------------------------------

    def partition_name(self, month: dt.date) -> str:
        """``<table>_pYYYY_MM``."""
        return name_within_limit(f"{self.name}_p{month.year:04d}_{month.month:02d}")

    @property
    def default_name(self) -> str:
        """``<table>_default``: the partition for months without their own."""
        return name_within_limit(f"{self.name}_default")

    @property
    def guard_name(self) -> str:
        """The month guard's table (also its trigger function's name)."""
        return name_within_limit(f"{self.name}_month_guard")

    @property
    def duration_check_name(self) -> str:
        """``<table>_max_duration``: the ``CHECK`` the month guard relies on."""
        return name_within_limit(f"{self.name}_max_duration")

    # --- DDL -----------------------------------------------------------------------------

    def ddl(self, months: Sequence[dt.date] = ()) -> list[str]:
        """The statements that create the partitioned table from scratch with a default
        partition and one partition per month in ``months``, one per item, without ``;``."""
        statements = [BTREE_GIST] if self.guarded else []
        statements.append(str(CreateTable(self.parent).compile(dialect=_DIALECT)).strip())
        statements += self._index_ddl(self.name)
        statements += self._default_ddl(self.name)
        statements += self._guard_ddl(self.name)
        for month in sorted({month_of(m) for m in months}):
            statements += self._partition_ddl(self.name, month)
        return statements

    def _index_ddl(self, parent: str, names: dict[str, str] | None = None) -> list[str]:
        """``CREATE INDEX`` on ``parent`` for every declared index (``names`` maps declared
        names to the ones to use there)."""
        copy = self.parent.to_metadata(MetaData(), name=parent)
        statements = []
        for index in sorted(copy.indexes, key=lambda i: str(i.name)):
            index.name = quoted_name((names or {}).get(str(index.name), str(index.name)), None)
            statements.append(str(CreateIndex(index).compile(dialect=_DIALECT)).strip())
        return statements

    def _default_ddl(self, parent: str) -> list[str]:
        """The default partition and its exclusion constraints."""
        name = self.default_name
        return [
            f"CREATE TABLE {_q(name)} PARTITION OF {_q(parent)} DEFAULT",
            *self._exclusion_ddl(name),
        ]

    def _partition_ddl(self, parent: str, month: dt.date) -> list[str]:
        """``CREATE TABLE <table>_pYYYY_MM PARTITION OF <parent> FOR VALUES FROM ... TO ...``
        and its exclusion constraints."""
        name = self.partition_name(month)
        start, end = self._bound(month), self._bound(add_months(month, 1))
        return [
            f"CREATE TABLE {_q(name)} PARTITION OF {_q(parent)} "
            f"FOR VALUES FROM ({start}) TO ({end})",
            *self._exclusion_ddl(name),
        ]

    def _duration_check(self) -> str:
        """``<end> - <column> <= interval '<max_duration>'``."""
        end = _q(self.guarded[0].end)
        return f"{end} - {_q(self.column)} <= interval '{_interval(self.max_duration)}'"

    def _bound(self, month: dt.date) -> str:
        return f"'{month.isoformat()} 00:00:00{'+00' if self.timezone else ''}'"

    def _exclusion_ddl(self, table: str) -> list[str]:
        return [
            f"ALTER TABLE {_q(table)} ADD CONSTRAINT "
            f"{_q(name_within_limit(f'{table}_{g.entry.name}'))} {_exclusion_body(g.constraint)}"
            for g in self.guarded
        ]

    def _guard_ddl(self, parent: str) -> list[str]:
        """The month guard: its table (with the exclusion constraints), the trigger function
        that keeps it in step with ``parent``, and the trigger."""
        if not self.guarded:
            return []
        guard = self._guard_table()
        function = self.guard_name
        names = [c.name for c in guard.c]
        keys = " AND ".join(f"{_q(k)} = OLD.{_q(k)}" for k in self.key_columns)
        values = ", ".join(f"NEW.{_q(n)}" for n in names)
        body = (
            "BEGIN\n"
            f"    IF TG_OP <> 'INSERT' THEN\n        DELETE FROM {_q(guard.name)} WHERE {keys};\n"
            "    END IF;\n"
            f"    IF TG_OP <> 'DELETE' AND ({self._zone_sql('NEW')}) THEN\n"
            f"        INSERT INTO {_q(guard.name)} ({', '.join(_q(n) for n in names)}) "
            f"VALUES ({values});\n"
            "    END IF;\n    RETURN NULL;\nEND"
        )
        return [
            str(CreateTable(guard).compile(dialect=_DIALECT)).strip(),
            *self._exclusion_ddl(guard.name),
            f"CREATE OR REPLACE FUNCTION {_q(function)}() RETURNS trigger LANGUAGE plpgsql "
            f"AS $guard$\n{body}\n$guard$",
            f"CREATE TRIGGER {_q(function)} AFTER INSERT OR UPDATE OR DELETE ON {_q(parent)} "
            f"FOR EACH ROW EXECUTE FUNCTION {_q(function)}()",
        ]

    def _guard_sync_sql(self, source: str) -> str:
        """Copy into the guard the rows of ``source`` (a table name) that belong there."""
        guard = self._guard_table()
        names = ", ".join(_q(c.name) for c in guard.c)
        return (
            f"INSERT INTO {_q(guard.name)} ({names}) SELECT {names} FROM {_q(source)} AS r "
            f"WHERE {self._zone_sql('r')} ON CONFLICT DO NOTHING"
        )

    def _zone_sql(self, row: str) -> str:
        """True for a row that crosses a month boundary or starts within ``max_duration``
        of its month's first instant: the rows the guard holds."""
        start = self._at_utc(f"{row}.{_q(self.column)}")
        end = self._at_utc(f"{row}.{_q(self.guarded[0].end)}")
        month = f"date_trunc('month', {start})"
        return (
            f"{end} > {month} + interval '1 month' OR "
            f"{start} < {month} + interval '{_interval(self.max_duration)}'"
        )

    def _at_utc(self, value: str) -> str:
        return f"({value} AT TIME ZONE 'UTC')" if self.timezone else value

    def _guard_table(self) -> Table:
        wanted: list[str] = list(self.key_columns)
        for guarded in self.guarded:
            wanted += [c for c in guarded.entry.referenced_columns() if c not in wanted]
        columns = [
            Column(name, self.parent.c[name].type, primary_key=name in self.key_columns,
                   nullable=self.parent.c[name].nullable, autoincrement=False)
            for name in wanted
        ]
        return Table(self.guard_name, MetaData(), *columns)

    # --- against a database --------------------------------------------------------------

    def exists(self, bind: Bind) -> bool:
        """Whether ``table`` exists and is partitioned."""
        with connection_for(bind) as conn:
            return _relkind(conn, self.name) == "p"

    def partitions(self, bind: Bind) -> list[Partition]:
        """The partitions attached now, by start month, the default one last."""
        with connection_for(bind) as conn:
            require_postgresql(conn, "monthly partitions")
            return live_partitions(conn, _q(self.name))

    def create(
        self, bind: Bind, *, ahead: int = 3, today: dt.date | None = None
    ) -> list[str]:
        """Create the partitioned table (when missing) with its default partition, guard and
        the partitions from this month to ``ahead`` months later; returns the partitions
        created. The table must not exist unpartitioned: migrate it with :meth:`migrate`."""
        with transaction(bind) as conn:
            require_postgresql(conn, "monthly partitions")
            self._lock(conn)
            kind = _relkind(conn, self.name)
            if kind not in (None, "p"):
                raise StructureError(
                    f"{self.name!r} already exists and is not partitioned: use migrate() to "
                    "move its rows into a partitioned table online"
                )
            if kind is None:
                for statement in self.ddl():
                    conn.exec_driver_sql(statement)
            return self._ensure(conn, self.name, self._months(ahead, today))

    def ensure_partitions(
        self, bind: Bind, ahead: int = 3, *, today: dt.date | None = None
    ) -> list[str]:
        """Create the missing partitions from ``today``'s month to ``ahead`` months later;
        returns the names created (empty when all exist).

        Idempotent and safe from every worker at start-up at once: it runs in one
        transaction under a PostgreSQL advisory lock on the table, so concurrent calls
        queue and each finds what the previous one created. Rows already in the default
        partition for a new month are moved into it in the same transaction.
        """
        if ahead < 0:
            raise StructureError(f"ahead is a number of months >= 0, got {ahead}")
        with transaction(bind) as conn:
            require_postgresql(conn, "monthly partitions")
            self._lock(conn)
            if _relkind(conn, self.name) != "p":
                raise StructureError(
                    f"{self.name!r} is not a partitioned table here; create() or migrate() it"
                )
            return self._ensure(conn, self.name, self._months(ahead, today))

    def _months(self, ahead: int, today: dt.date | None) -> list[dt.date]:
        first = month_of(today or dt.date.today())
        return [add_months(first, n) for n in range(ahead + 1)]

    def _lock(self, conn: Connection) -> None:
        conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{int(self.lock_timeout * 1000)}ms'")
        conn.execute(select(func.pg_advisory_xact_lock(LOCK_NAMESPACE, lock_key(self.name))))

    def _ensure(self, conn: Connection, parent: str, months: Iterable[dt.date]) -> list[str]:
        partitions = live_partitions(conn, _q(parent))
        existing = {p.start for p in partitions}
        in_default = self._default_months(conn) if any(p.is_default for p in partitions) else set()
        created = []
        for month in sorted(set(months) - existing):
            if month in in_default:
                self._attach_with_rows(conn, parent, month)
            else:
                for statement in self._partition_ddl(parent, month):
                    conn.exec_driver_sql(statement)
            created.append(self.partition_name(month))
        return created

    def _month_filter(self, month: dt.date, row: str = "") -> str:
        column = f"{row}{_q(self.column)}"
        return (
            f"{column} >= {self._bound(month)} AND "
            f"{column} < {self._bound(add_months(month, 1))}"
        )

    def _default_months(self, conn: Connection) -> set[dt.date]:
        """The months that have rows in the default partition."""
        month = f"date_trunc('month', {self._at_utc(_q(self.column))})::date"
        query = f"SELECT DISTINCT {month} FROM {_q(self.default_name)}"
        return set(conn.exec_driver_sql(query).scalars())

    def _attach_with_rows(self, conn: Connection, parent: str, month: dt.date) -> None:
        """Create the month's table standalone, move its rows out of the default partition
        and attach it (PostgreSQL refuses a partition whose rows sit in the default one)."""
        name, default = _q(self.partition_name(month)), _q(self.default_name)
        conn.exec_driver_sql(
            f"CREATE TABLE {name} (LIKE {_q(parent)} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
        )
        conn.exec_driver_sql(
            f"WITH moved AS (DELETE FROM {default} WHERE {self._month_filter(month)} "
            f"RETURNING *) INSERT INTO {name} SELECT * FROM moved"
        )
        bounds = f"FROM ({self._bound(month)}) TO ({self._bound(add_months(month, 1))})"
        conn.exec_driver_sql(
            f"ALTER TABLE {_q(parent)} ATTACH PARTITION {name} FOR VALUES {bounds}"
        )
        for statement in self._exclusion_ddl(self.partition_name(month)):
            conn.exec_driver_sql(statement)
        if self.guarded:  # deleting from the default partition took their guard rows along
            conn.exec_driver_sql(self._guard_sync_sql(self.partition_name(month)))

    def retire(
        self,
        bind: Bind,
        *,
        keep: int | None = None,
        drop: bool = False,
        today: dt.date | None = None,
    ) -> list[str]:
        """Detach (``drop=True``: and drop) the partitions that end before the last ``keep``
        months (default: the declared ``retention``) before ``today``'s month; returns their
        names. A detached partition stays as a plain table with its rows, for archiving."""
        months = self.retention if keep is None else keep
        if months is None:
            raise StructureError("no retention declared: pass keep=<months to keep>")
        if months < 0:
            raise StructureError(f"keep is a number of months >= 0, got {months}")
        cutoff = add_months(month_of(today or dt.date.today()), -months)
        with transaction(bind) as conn:
            require_postgresql(conn, "monthly partitions")
            self._lock(conn)
            old = [
                p for p in live_partitions(conn, _q(self.name))
                if p.end is not None and p.end <= cutoff
            ]
            for partition in old:
                self._retire_one(conn, partition, drop)
        return [p.name for p in old]

    def _retire_one(self, conn: Connection, partition: Partition, drop: bool) -> None:
        assert partition.start is not None
        conn.exec_driver_sql(
            f"ALTER TABLE {_q(self.name)} DETACH PARTITION {_q(partition.name)}"
        )
        if self.guarded:
            conn.exec_driver_sql(
                f"DELETE FROM {_q(self.guard_name)} WHERE {self._month_filter(partition.start)}"
            )
        if drop:
            conn.exec_driver_sql(f"DROP TABLE {_q(partition.name)}")

    def migrate(
        self,
        engine: Engine,
        *,
        batch_size: int = 10_000,
        progress: Callable[[MigrationProgress], None] | None = None,
        drop_foreign_keys: bool = False,
        ahead: int = 3,
        today: dt.date | None = None,
    ) -> MigrationResult:
        """Move the rows of the existing, unpartitioned table into a partitioned table of the
        same name, online; see docs/structure.md for the four steps.

        The application keeps reading and writing the table throughout; only the final swap
        takes an exclusive lock, for a few statements (bounded by ``lock_timeout``).
        Interrupted at any point (an exception, a killed process), calling it again resumes
        where the copy stopped. ``progress`` is called after every committed batch; an
        exception it raises stops the migration there (resumable). Partitions cover every
        month of the data and ``ahead`` months after ``today`` (default: the date today).

        Refused with :class:`MigrationError`, before anything is created: a primary key that
        is not one integer column; views that read the table (drop them first, re-create them
        after the swap); foreign keys of other tables that reference it (PostgreSQL cannot
        reference a partitioned table by a key without the partition column): pass
        ``drop_foreign_keys=True`` to drop them in the swap; rows longer than
        ``max_duration``. ``engine`` must be an Engine: each step commits on its own.
        """
        from ._migrate import migrate

        return migrate(self, engine, batch_size, progress, drop_foreign_keys, ahead, today)

    def abort_migration(self, engine: Engine) -> bool:
        """Undo an unfinished :meth:`migrate`: drop the mirror trigger, the partitioned twin
        and its guard, forget the progress. The live table is untouched. False when there was
        nothing to undo."""
        from ._migrate import abort

        return abort(self, engine)


def _q(name: str) -> str:
    return quote(_DIALECT, name)


def _interval(duration: dt.timedelta) -> str:
    """A PostgreSQL interval literal's text: ``1 day``, ``2 days 3600 seconds``."""
    parts = []
    if duration.days:
        parts.append(f"{duration.days} day{'s' if duration.days != 1 else ''}")
    seconds = duration.seconds + duration.microseconds / 1e6
    if seconds or not parts:
        parts.append(f"{seconds:g} seconds")
    return " ".join(parts)


def _relkind(conn: Connection, name: str) -> str | None:
    kind = conn.execute(
        text("SELECT relkind FROM pg_class WHERE oid = to_regclass(:name)"), {"name": _q(name)}
    ).scalar()
    return None if kind is None else str(kind)


def _exclusion_body(constraint: ExcludeConstraint) -> str:
    """``EXCLUDE USING gist (...) WHERE (...)``: the constraint without its table and name."""
    statement = str(AddConstraint(constraint).compile(dialect=_DIALECT))
    _, _, after = statement.partition(" ADD CONSTRAINT ")
    return after.split(" ", 1)[1].strip()


# --- fitting the declaration to a private copy of the schema ------------------------------


def _fit(
    table: Table, column: str, spec: Spec | Iterable[Entry]
) -> tuple[Table, tuple[_Guarded, ...]]:
    """The parent table (on a private copy of ``table``'s metadata) and its guarded
    exclusion constraints."""
    entries = _entries(table, spec)
    copy = private_copy(table.metadata)
    parent = copy.tables[table.key]
    if entries:
        apply(copy, Spec(entries))
    guarded = []
    for constraint in [c for c in parent.constraints if isinstance(c, ExcludeConstraint)]:
        entry = owned_entry(constraint)
        if not isinstance(entry, ExclusionSpec):
            raise StructureError(
                f"exclusion constraint {constraint.name!r} on {table.name} was not declared "
                "with sqlaopt.indexes.ExclusionSpec, so it cannot be repeated per partition"
            )
        guarded.append(_Guarded(entry, constraint, _end_column(entry, column)))
        parent.constraints.discard(constraint)
    if len({g.end for g in guarded}) > 1:
        raise StructureError(
            f"the exclusion constraints of {table.name} use different end columns "
            f"({', '.join(sorted({g.end for g in guarded}))}); one month guard needs one"
        )
    _check_unique(parent, column)
    with warnings.catch_warnings():
        # The declared primary key is replaced on purpose (it must include the partition key).
        warnings.simplefilter("ignore", SAWarning)
        key = [c for c in parent.primary_key.columns if c.name != column]
        parent.append_constraint(PrimaryKeyConstraint(*key, parent.c[column]))
    if len(key) == 1:
        key[0].autoincrement = True
    parent.dialect_options["postgresql"]["partition_by"] = f"RANGE ({_q(column)})"
    return parent, tuple(guarded)


def _entries(table: Table, spec: Spec | Iterable[Entry]) -> list[Entry]:
    found: dict[str, Entry] = {}
    attached = [owned_entry(i) for i in [*table.indexes, *table.constraints]]
    chosen = [e for e in spec if e.table == table.name]
    for entry in [*(e for e in attached if e is not None), *chosen]:
        previous = found.get(entry.name)
        if previous is not None and previous != entry:
            raise StructureError(
                f"{entry.name} is applied to {table.name} as {previous.describe()} and given "
                f"in spec as {entry.describe()}"
            )
        found[entry.name] = entry
    return list(found.values())


def _end_column(entry: ExclusionSpec, column: str) -> str:
    ranges = [p for p in entry.key_parts if isinstance(p, TsRange)]
    scalars_ok = all(op == "=" for p, op in entry.elements if not isinstance(p, TsRange))
    if len(ranges) != 1 or ranges[0].start != column or not scalars_ok:
        raise StructureError(
            f"exclusion constraint {entry.name} must be (<column> WITH =, ..., "
            f"tsrange({column}, <end>) WITH &&) to be kept across monthly partitions of "
            f"{column}; it is {entry.describe()}"
        )
    return ranges[0].end


def _check_unique(parent: Table, column: str) -> None:
    unique = [
        (str(c.name or f"UNIQUE ({', '.join(x.name for x in c.columns)})"),
         [x.name for x in c.columns])
        for c in parent.constraints
        if isinstance(c, UniqueConstraint)
    ]
    unique += [(str(i.name), [c.name for c in i.columns]) for i in parent.indexes if i.unique]
    broken = [name for name, columns in unique if column not in columns]
    if broken:
        raise StructureError(
            f"PostgreSQL requires every unique constraint of a partitioned table to include "
            f"the partition column {column!r}; {parent.name} has {', '.join(broken)}. "
            "Add the column to them or drop them first."
        )


# --- proving pruning -----------------------------------------------------------------------


def scanned_partitions(
    bind: Bind, statement: Any, parameters: Any = None
) -> frozenset[str]:
    """The tables PostgreSQL's plan for ``statement`` reads (``"Relation Name"`` of every plan
    node): for a partitioned table, the partitions left after pruning.

    ``statement`` is a SQLAlchemy statement (explained with its values inlined) or SQL text
    as it reached the driver, with ``parameters`` (e.g. from a ``before_cursor_execute``
    listener).
    """
    if isinstance(statement, str) and parameters is not None:
        plan = explain_executed(bind, statement, parameters)
    else:
        plan = explain(bind, statement)
    return frozenset(_walk(json.loads(plan.text), "Relation Name"))
