"""Online migration of a populated table into monthly partitions (PostgreSQL).

1. **Prepare** (one transaction): the partitioned twin ``<table>_partitioned`` (``LIKE`` the
   live table: same columns, defaults, checks; primary key plus the partition column; the
   outbound foreign keys; the declared indexes under temporary names; the default partition,
   a partition per month of the data and the month guard), and a *mirror* trigger on the live
   table that repeats every insert, update and delete on the twin in the same transaction.
2. **Copy** in batches by primary key, up to the largest key present when the mirror was
   installed (later rows reach the twin through the mirror; without that bound the copy chased
   a steady stream of inserts for ever), each batch one transaction that also records the last
   key copied in ``sqlaopt_partition_migrations``: an interrupted run resumes after it.
   Batch rows are read ``FOR SHARE``, so a concurrent update waits for the batch and the
   mirror then applies the newer version.
3. **Verify** in one REPEATABLE READ snapshot: row counts and a checksum of every row's
   text must be equal (the mirror writes in the writer's own transaction, so any snapshot
   sees both tables equal).
4. **Swap** in one short transaction under ``lock_timeout``: lock both tables, compare row
   counts again, drop the mirror, rename the live table to ``<table>_unpartitioned`` and the
   twin to ``<table>``, move the index names and the id sequence over, ``ANALYZE``.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    Engine,
    MetaData,
    String,
    Table,
    select,
    text,
    update,
)

from ..indexes._render import BTREE_GIST
from ._common import name_within_limit, require_postgresql, utc_now
from ._errors import MigrationError
from ._months import add_months, live_partitions, month_of, month_range

if TYPE_CHECKING:
    from ._partitions import MonthlyPartitions

__all__ = ["MIGRATIONS", "MigrationProgress", "MigrationResult", "abort", "migrate"]

_LOWEST_KEY = -(2**63)

MIGRATIONS = Table(
    "sqlaopt_partition_migrations",
    MetaData(),
    Column("table_name", String(63), primary_key=True),
    Column("staging", String(63), nullable=False),
    Column("phase", String(20), nullable=False),
    Column("last_key", BigInteger, nullable=False),
    Column("until_key", BigInteger, nullable=False),
    Column("copied", BigInteger, nullable=False),
    Column("total", BigInteger, nullable=False),
    Column("started_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
)
"""One row per migration in progress or done: phase (``copying``, ``copied``, ``verified``,
``swapped``), the last primary key copied, the largest key when the mirror trigger was
installed (later rows reach the twin through it), rows copied, rows when it started."""


@dataclass(frozen=True)
class MigrationProgress:
    """Reported after each committed batch."""

    table: str
    copied: int
    """Rows copied by the batches so far (rows written meanwhile reach the twin through the
    mirror trigger and are not counted)."""
    total: int
    """Rows in the table when the migration started."""
    last_key: int
    batches: int
    """Batches committed by this run."""


@dataclass(frozen=True)
class MigrationResult:
    """The outcome of :func:`migrate_to_partitions`."""

    table: str
    old_table: str
    """What the unpartitioned table is called now (kept for rollback; drop it when done)."""
    partitions: tuple[str, ...]
    rows: int
    checksum: str
    copied: int
    """Rows copied by batches over every run of this migration."""
    resumed: bool
    """True when this run continued an interrupted one."""
    seconds: float
    dropped_foreign_keys: tuple[str, ...]
    triggers_left_behind: tuple[str, ...]
    """Triggers of the old table that the new one does not have (re-create them on it)."""


@dataclass(frozen=True)
class _Live:
    """The live table as the catalogs describe it."""

    columns: tuple[str, ...]
    key: str
    inbound: tuple[tuple[str, str], ...]  # (table, constraint)
    views: tuple[str, ...]
    triggers: tuple[str, ...]
    sequences: tuple[tuple[str, str], ...]  # (sequence, column)
    outbound: tuple[tuple[str, str], ...]  # (constraint, definition)
    indexes: tuple[str, ...]


def _names(partitions: MonthlyPartitions) -> tuple[str, str, str]:
    table = partitions.name
    return (
        name_within_limit(f"{table}_partitioned"),
        name_within_limit(f"{table}_partition_mirror"),
        name_within_limit(f"{table}_unpartitioned"),
    )


def _temporary(index: str) -> str:
    return name_within_limit(f"{index}__new")


def migrate(
    partitions: MonthlyPartitions,
    engine: Engine,
    batch_size: int,
    progress: Callable[[MigrationProgress], None] | None,
    drop_foreign_keys: bool,
    ahead: int,
    today: dt.date | None,
) -> MigrationResult:
    """:meth:`MonthlyPartitions.migrate` (documented there)."""
    if not isinstance(engine, Engine):
        raise MigrationError("migrate() needs an Engine: each batch commits on its own")
    if batch_size < 1:
        raise MigrationError(f"batch_size must be at least 1, got {batch_size}")
    began = time.perf_counter()
    old_name = _names(partitions)[2]
    with engine.begin() as conn:
        require_postgresql(conn, "migrating to monthly partitions")
        MIGRATIONS.create(conn, checkfirst=True)
        state = _state(conn, partitions.name)
        if _is_partitioned(conn, partitions.name):
            raise MigrationError(f"{partitions.name!r} is already partitioned")
        live = _describe(conn, partitions.name)
        if state is None or state["phase"] == "swapped":
            _refuse(conn, partitions, live, drop_foreign_keys)
            _prepare(conn, partitions, live, ahead, today)
            resumed = False
        else:
            resumed = True
    _copy(engine, partitions, live, batch_size, progress)
    rows, checksum = _verify(engine, partitions, live)
    with engine.begin() as conn:
        dropped = _swap(conn, partitions, drop_foreign_keys)
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
            f"ANALYZE {_q(conn, partitions.name)}"
        )
        names = tuple(p.name for p in live_partitions(conn, _q(conn, partitions.name)))
        copied = int(conn.scalar(select(MIGRATIONS.c.copied).where(_row(partitions.name))) or 0)
    mirror = _names(partitions)[1]
    return MigrationResult(
        table=partitions.name,
        old_table=old_name,
        partitions=names,
        rows=rows,
        checksum=checksum,
        copied=copied,
        resumed=resumed,
        seconds=time.perf_counter() - began,
        dropped_foreign_keys=dropped,
        triggers_left_behind=tuple(t for t in live.triggers if t != mirror),
    )


def abort(partitions: MonthlyPartitions, engine: Engine) -> bool:
    """:meth:`MonthlyPartitions.abort_migration` (documented there)."""
    staging, mirror, _ = _names(partitions)
    with engine.begin() as conn:
        require_postgresql(conn, "migrating to monthly partitions")
        MIGRATIONS.create(conn, checkfirst=True)
        state = _state(conn, partitions.name)
        if state is None or state["phase"] == "swapped":
            return False
        q = conn.dialect.identifier_preparer.quote
        conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {q(mirror)} ON {q(partitions.name)}")
        conn.exec_driver_sql(f"DROP FUNCTION IF EXISTS {q(mirror)}()")
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {q(staging)} CASCADE")
        if partitions.guarded:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {q(partitions.guard_name)}")
            conn.exec_driver_sql(f"DROP FUNCTION IF EXISTS {q(partitions.guard_name)}()")
        conn.execute(MIGRATIONS.delete().where(_row(partitions.name)))
    return True


# --- catalogs ------------------------------------------------------------------------------


def _q(conn: Connection, name: str) -> str:
    return conn.dialect.identifier_preparer.quote(name)


def _row(table: str) -> Any:
    return MIGRATIONS.c.table_name == table


def _set_phase(conn: Connection, table: str, phase: str) -> None:
    conn.execute(update(MIGRATIONS).where(_row(table)).values(phase=phase, updated_at=utc_now()))


def _state(conn: Connection, table: str) -> dict[str, Any] | None:
    row = conn.execute(select(MIGRATIONS).where(_row(table))).mappings().first()
    return None if row is None else dict(row)


def _is_partitioned(conn: Connection, table: str) -> bool:
    kind = conn.execute(
        text("SELECT relkind FROM pg_class WHERE oid = to_regclass(:t)"), {"t": _q(conn, table)}
    ).scalar()
    return kind == "p"


# What the catalogs say about the live table (``:t``), one query per _Live field.
_CATALOG = {
    "columns": "SELECT attname, attidentity FROM pg_attribute WHERE attrelid = to_regclass(:t) "
    "AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
    "key": "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_index i "
    "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey) "
    "WHERE i.indrelid = to_regclass(:t) AND i.indisprimary",
    "inbound": "SELECT conrelid::regclass::text, conname FROM pg_constraint "
    "WHERE contype = 'f' AND confrelid = to_regclass(:t) ORDER BY 1, 2",
    "views": "SELECT DISTINCT v.oid::regclass::text FROM pg_depend d "
    "JOIN pg_rewrite r ON r.oid = d.objid JOIN pg_class v ON v.oid = r.ev_class "
    "WHERE d.refobjid = to_regclass(:t) AND v.oid <> d.refobjid",
    "triggers": "SELECT tgname FROM pg_trigger WHERE tgrelid = to_regclass(:t) "
    "AND NOT tgisinternal ORDER BY tgname",
    "sequences": "SELECT s.oid::regclass::text, a.attname FROM pg_depend d "
    "JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S' "
    "JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid "
    "WHERE d.refobjid = to_regclass(:t) AND d.deptype = 'a'",
    "outbound": "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
    "WHERE conrelid = to_regclass(:t) AND contype = 'f' ORDER BY conname",
    "indexes": "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
    "WHERE i.indrelid = to_regclass(:t) ORDER BY c.relname",
}


def _describe(conn: Connection, table: str) -> _Live:
    parameters = {"t": _q(conn, table)}
    found = {
        field: [tuple(str(v) for v in row) for row in conn.execute(text(sql), parameters)]
        for field, sql in _CATALOG.items()
    }
    if not found["columns"]:
        raise MigrationError(f"table {table!r} does not exist")
    key = found["key"]
    if len(key) != 1 or key[0][1] not in ("integer", "bigint", "smallint"):
        raise MigrationError(
            f"{table} needs a primary key of one integer column to be copied in batches; it "
            f"has ({', '.join(' '.join(k) for k in key) or 'none'})"
        )
    identity = [name for name, kind in found["columns"] if kind]
    if identity:
        raise MigrationError(
            f"{table}.{identity[0]} is an identity column, which a second table cannot share; "
            "use a sequence default (serial) before migrating"
        )

    def names(field: str) -> tuple[str, ...]:
        return tuple(row[0] for row in found[field])

    def pairs(field: str) -> tuple[tuple[str, str], ...]:
        return tuple((row[0], row[1]) for row in found[field])

    return _Live(
        columns=names("columns"), key=key[0][0], inbound=pairs("inbound"),
        views=names("views"), triggers=names("triggers"), sequences=pairs("sequences"),
        outbound=pairs("outbound"), indexes=names("indexes"),
    )


def _refuse(
    conn: Connection, partitions: MonthlyPartitions, live: _Live, drop_foreign_keys: bool
) -> None:
    """Every reason not to start, at once, before anything is created."""
    problems = _catalog_problems(partitions, live, drop_foreign_keys)
    if partitions.column not in live.columns:
        problems.append(f"{partitions.name} has no column {partitions.column!r}")
    elif partitions.guarded:
        too_long = conn.exec_driver_sql(
            f"SELECT count(*) FROM {_q(conn, partitions.name)} "
            f"WHERE NOT ({partitions._duration_check()})"
        ).scalar()
        if too_long:
            problems.append(
                f"{too_long} rows last longer than max_duration ({partitions.max_duration}), "
                "which the month guard relies on"
            )
    _raise(partitions, problems)


def _catalog_problems(
    partitions: MonthlyPartitions, live: _Live, drop_foreign_keys: bool
) -> list[str]:
    problems = []
    if live.views:
        problems.append(
            f"views read {partitions.name}: {', '.join(live.views)} (they would keep reading "
            "the old table after the swap); drop them first and re-create them afterwards"
        )
    if live.inbound and not drop_foreign_keys:
        listed = ", ".join(f"{t}.{c}" for t, c in live.inbound)
        problems.append(
            f"foreign keys reference {partitions.name}: {listed}. PostgreSQL cannot reference "
            "a partitioned table by a key without the partition column; pass "
            "drop_foreign_keys=True to drop them in the swap"
        )
    return problems


def _raise(partitions: MonthlyPartitions, problems: list[str]) -> None:
    if problems:
        raise MigrationError(
            f"cannot migrate {partitions.name} to monthly partitions:\n- "
            + "\n- ".join(problems) + "\nNothing was changed."
        )


# --- the steps -----------------------------------------------------------------------------


def _prepare(
    conn: Connection,
    partitions: MonthlyPartitions,
    live: _Live,
    ahead: int,
    today: dt.date | None,
) -> None:
    staging, mirror, _ = _names(partitions)
    table, column = _q(conn, partitions.name), _q(conn, partitions.column)
    partitions._lock(conn)
    run = conn.exec_driver_sql
    if partitions.guarded:
        run(BTREE_GIST)
    run(
        f"CREATE TABLE {_q(conn, staging)} (LIKE {table} INCLUDING DEFAULTS INCLUDING "
        f"CONSTRAINTS INCLUDING STORAGE INCLUDING COMMENTS) PARTITION BY RANGE ({column})"
    )
    run(f"ALTER TABLE {_q(conn, staging)} ADD PRIMARY KEY ({_q(conn, live.key)}, {column})")
    for name, definition in live.outbound:
        run(f"ALTER TABLE {_q(conn, staging)} ADD CONSTRAINT {_q(conn, name)} {definition}")
    if partitions.guarded:
        check = _q(conn, partitions.duration_check_name)
        run(f"ALTER TABLE {_q(conn, staging)} ADD CONSTRAINT {check} "
            f"CHECK ({partitions._duration_check()})")
    declared = {str(i.name) for i in partitions.parent.indexes}
    for statement in partitions._index_ddl(staging, {n: _temporary(n) for n in declared}):
        run(statement)
    for statement in [*partitions._default_ddl(staging), *partitions._guard_ddl(staging)]:
        run(statement)
    partitions._ensure(conn, staging, _months(conn, partitions, ahead, today))
    _create_mirror(conn, partitions, live, staging, mirror)
    # Creating the trigger waited for every writer in flight; rows inserted from now on are
    # mirrored, so the copy stops at today's largest key (or it would chase the inserts).
    total, until = conn.exec_driver_sql(
        f"SELECT count(*), max({_q(conn, live.key)}) FROM {table}"
    ).one()
    now = utc_now()
    conn.execute(MIGRATIONS.delete().where(_row(partitions.name)))
    conn.execute(
        MIGRATIONS.insert().values(
            table_name=partitions.name, staging=staging, phase="copying",
            last_key=_LOWEST_KEY, until_key=_LOWEST_KEY if until is None else until,
            copied=0, total=total, started_at=now, updated_at=now,
        )
    )


def _months(
    conn: Connection, partitions: MonthlyPartitions, ahead: int, today: dt.date | None
) -> list[dt.date]:
    column, table = _q(conn, partitions.column), _q(conn, partitions.name)
    expression = f"({column} AT TIME ZONE 'UTC')" if partitions.timezone else column
    first, last = conn.exec_driver_sql(
        f"SELECT min({expression})::date, max({expression})::date FROM {table}"
    ).one()
    current = month_of(today or dt.date.today())
    final = add_months(current, ahead)
    return month_range(min(first or current, current), max(last or final, final))


def _create_mirror(
    conn: Connection, partitions: MonthlyPartitions, live: _Live, staging: str, mirror: str
) -> None:
    names = ", ".join(_q(conn, c) for c in live.columns)
    values = ", ".join(f"NEW.{_q(conn, c)}" for c in live.columns)
    key, column = _q(conn, live.key), _q(conn, partitions.column)
    body = (
        "BEGIN\n"
        f"    IF TG_OP <> 'INSERT' THEN\n"
        f"        DELETE FROM {_q(conn, staging)} WHERE {key} = OLD.{key} "
        f"AND {column} = OLD.{column};\n"
        "    END IF;\n"
        "    IF TG_OP <> 'DELETE' THEN\n"
        f"        INSERT INTO {_q(conn, staging)} ({names}) VALUES ({values}) "
        "ON CONFLICT DO NOTHING;\n"
        "    END IF;\n    RETURN NULL;\nEND"
    )
    conn.exec_driver_sql(
        f"CREATE OR REPLACE FUNCTION {_q(conn, mirror)}() RETURNS trigger LANGUAGE plpgsql "
        f"AS $mirror$\n{body}\n$mirror$"
    )
    conn.exec_driver_sql(
        f"CREATE TRIGGER {_q(conn, mirror)} AFTER INSERT OR UPDATE OR DELETE ON "
        f"{_q(conn, partitions.name)} FOR EACH ROW EXECUTE FUNCTION {_q(conn, mirror)}()"
    )


def _copy(
    engine: Engine,
    partitions: MonthlyPartitions,
    live: _Live,
    batch_size: int,
    progress: Callable[[MigrationProgress], None] | None,
) -> None:
    batches = 0
    while True:
        with engine.begin() as conn:
            state = _state(conn, partitions.name)
            assert state is not None
            if state["phase"] != "copying":
                return
            last, count = _copy_batch(conn, partitions, live, state, batch_size)
            if count == 0:
                _set_phase(conn, partitions.name, "copied")
                return
            copied = state["copied"] + count
            conn.execute(update(MIGRATIONS).where(_row(partitions.name)).values(
                last_key=last, copied=copied, updated_at=utc_now()))
        batches += 1
        if progress is not None:
            progress(MigrationProgress(partitions.name, copied, state["total"], last, batches))


def _copy_batch(
    conn: Connection,
    partitions: MonthlyPartitions,
    live: _Live,
    state: dict[str, Any],
    batch_size: int,
) -> tuple[int, int]:
    names = ", ".join(_q(conn, c) for c in live.columns)
    key = _q(conn, live.key)
    row = conn.execute(
        text(
            f"WITH batch AS (SELECT {names} FROM {_q(conn, partitions.name)} "
            f"WHERE {key} > :last AND {key} <= :until ORDER BY {key} LIMIT :size FOR SHARE), "
            f"copied AS (INSERT INTO {_q(conn, state['staging'])} ({names}) "
            f"SELECT {names} FROM batch ON CONFLICT DO NOTHING) "
            f"SELECT max({key}), count(*) FROM batch"
        ),
        {"last": state["last_key"], "until": state["until_key"], "size": batch_size},
    ).one()
    return int(row[0] or state["last_key"]), int(row[1])


def _checksum_sql(conn: Connection, table: str, columns: tuple[str, ...]) -> str:
    row = ", ".join(_q(conn, c) for c in columns)
    digest = f"('x' || substr(md5(ROW({row})::text), 1, 16))::bit(64)::bigint::numeric"
    return f"SELECT count(*), coalesce(sum({digest}), 0)::text FROM {_q(conn, table)}"


def _verify(engine: Engine, partitions: MonthlyPartitions, live: _Live) -> tuple[int, str]:
    staging = _names(partitions)[0]
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            state = _state(conn, partitions.name)
            assert state is not None
            if state["phase"] == "swapped":
                raise MigrationError(f"{partitions.name} was swapped already")
            old = conn.exec_driver_sql(_checksum_sql(conn, partitions.name, live.columns)).one()
            new = conn.exec_driver_sql(_checksum_sql(conn, staging, live.columns)).one()
    if tuple(old) != tuple(new):
        raise MigrationError(
            f"verification failed: {partitions.name} has {old[0]} rows (checksum {old[1]}), "
            f"{staging} {new[0]} (checksum {new[1]}). The old table is still in use; "
            "abort_migration() removes the copy"
        )
    with engine.begin() as conn:
        _set_phase(conn, partitions.name, "verified")
    return int(old[0]), str(old[1])


def _swap(
    conn: Connection, partitions: MonthlyPartitions, drop_foreign_keys: bool
) -> tuple[str, ...]:
    staging, mirror, old_name = _names(partitions)
    table = partitions.name
    run = conn.exec_driver_sql
    partitions._lock(conn)
    run(f"LOCK TABLE {_q(conn, table)}, {_q(conn, staging)} IN ACCESS EXCLUSIVE MODE")
    now = _describe(conn, table)
    _raise(partitions, _catalog_problems(partitions, now, drop_foreign_keys))
    counts = [
        run(f"SELECT count(*) FROM {_q(conn, name)}").scalar() for name in (table, staging)
    ]
    if counts[0] != counts[1]:
        raise MigrationError(
            f"row counts differ at the swap ({table} {counts[0]}, {staging} {counts[1]}): "
            "the mirror trigger was disabled or bypassed; nothing was swapped"
        )
    run(f"DROP TRIGGER {_q(conn, mirror)} ON {_q(conn, table)}")
    run(f"DROP FUNCTION {_q(conn, mirror)}()")
    dropped = []
    for referencing, constraint in now.inbound:
        run(f"ALTER TABLE {referencing} DROP CONSTRAINT {_q(conn, constraint)}")
        dropped.append(f"{referencing}.{constraint}")
    for index in now.indexes:
        run(f"ALTER INDEX {_q(conn, index)} RENAME TO "
            f"{_q(conn, name_within_limit(f'{index}_unpartitioned'))}")
    run(f"ALTER TABLE {_q(conn, table)} RENAME TO {_q(conn, old_name)}")
    run(f"ALTER TABLE {_q(conn, staging)} RENAME TO {_q(conn, table)}")
    run(f"ALTER INDEX {_q(conn, name_within_limit(f'{staging}_pkey'))} RENAME TO "
        f"{_q(conn, name_within_limit(f'{table}_pkey'))}")
    for index in (str(i.name) for i in partitions.parent.indexes):
        run(f"ALTER INDEX {_q(conn, _temporary(index))} RENAME TO {_q(conn, index)}")
    for sequence, column in now.sequences:
        run(f"ALTER SEQUENCE {sequence} OWNED BY {_q(conn, table)}.{_q(conn, column)}")
    _set_phase(conn, table, "swapped")
    return tuple(dropped)
