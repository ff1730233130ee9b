"""Monthly partitions on PostgreSQL: the declaration, partition maintenance from many
processes, retention, and the double-booking guarantee across month boundaries."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import random
import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, Engine, create_engine, insert, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from sqlaopt.booking import BookingConflict, book_appointment
from sqlaopt.booking.models import Appointment, Base, Payment, Service, User
from sqlaopt.indexes import ExclusionSpec, tsrange
from sqlaopt.structure import APPOINTMENT_PARTITIONS, MonthlyPartitions, StructureError

from .conftest import quick_deadlocks, schema_url

P = APPOINTMENT_PARTITIONS
JANUARY = dt.date(2025, 1, 15)
BOUNDARY = dt.datetime(2025, 2, 1)
EXCLUSION_VIOLATION, CHECK_VIOLATION, DEADLOCK = "23P01", "23514", "40P01"


def _sqlstate(error: DBAPIError) -> str | None:
    return getattr(error.orig, "sqlstate", None)


@pytest.fixture
def partitioned(pg: Engine) -> Engine:
    """The reference schema with ``appointments`` partitioned (January to March 2025) and
    two barbers; no ``payments`` (its unique appointment_id cannot reference it)."""
    tables = [t for t in Base.metadata.sorted_tables if t.name not in ("appointments", "payments")]
    Base.metadata.create_all(pg, tables=tables)
    with pg.begin() as conn:
        conn.execute(insert(User), [
            {"id": i, "email": f"b{i}@example.com", "name": f"Barber {i}",
             "unified_role": "barber"} for i in (1, 2)
        ])
    P.create(pg, ahead=2, today=JANUARY)
    return pg


def book(conn: Connection, barber: int, start: dt.datetime, minutes: int,
         status: str = "confirmed") -> int:
    """Insert one appointment; returns its id (raises the database's error)."""
    return int(conn.execute(
        insert(Appointment).values(
            barber_id=barber, service_name="Cut", start_time=start,
            end_time=start + dt.timedelta(minutes=minutes), duration_minutes=minutes,
            status=status, price=Decimal("30.00"),
        ).returning(Appointment.id)
    ).scalar_one())


def attempt(conn: Connection, statement: Any) -> str | None:
    """Run ``statement`` in a savepoint: None when accepted, else the SQLSTATE."""
    try:
        with conn.begin_nested():
            statement(conn) if callable(statement) else conn.execute(statement)
    except DBAPIError as error:
        return _sqlstate(error)
    return None


def overlapping_pairs(conn: Connection) -> int:
    return int(conn.exec_driver_sql(
        "SELECT count(*) FROM appointments a JOIN appointments b ON a.barber_id = b.barber_id "
        "AND a.id < b.id AND a.start_time < b.end_time AND b.start_time < a.end_time "
        "WHERE a.status IN ('confirmed', 'pending') AND b.status IN ('confirmed', 'pending')"
    ).scalar_one())


# --- the declaration -----------------------------------------------------------------------------


def test_the_partition_column_must_be_a_timestamp_and_exist() -> None:
    with pytest.raises(StructureError, match="DateTime"):
        MonthlyPartitions(Appointment.__table__, "price")  # type: ignore[arg-type]
    with pytest.raises(StructureError, match="did you mean 'start_time'"):
        MonthlyPartitions(Appointment.__table__, "start_tim")  # type: ignore[arg-type]


def test_a_unique_constraint_without_the_partition_column_is_refused() -> None:
    with pytest.raises(StructureError, match="appointment_id"):
        MonthlyPartitions(Payment.__table__, "created_at")  # type: ignore[arg-type]


def test_an_exclusion_constraint_that_cannot_cross_months_is_refused() -> None:
    by_barber = ExclusionSpec("one_per_barber", "appointments", [("barber_id", "=")])
    with pytest.raises(StructureError, match="tsrange\\(start_time, <end>\\)"):
        MonthlyPartitions(Appointment.__table__, "start_time", spec=[by_barber])  # type: ignore[arg-type]
    other_start = ExclusionSpec(
        "by_creation", "appointments",
        [("barber_id", "="), (tsrange("end_time", "start_time"), "&&")],
    )
    with pytest.raises(StructureError, match="must be"):
        MonthlyPartitions(Appointment.__table__, "start_time", spec=[other_start])  # type: ignore[arg-type]


def test_the_parent_ddl_fixes_what_the_report_got_wrong() -> None:
    statements = P.ddl([dt.date(2025, 1, 1)])
    parent = statements[1]
    assert "PRIMARY KEY (id, start_time)" in parent
    assert parent.endswith("PARTITION BY RANGE (start_time)")
    assert "CHECK (end_time - start_time <= interval '1 day')" in parent
    assert "EXCLUDE" not in parent  # not supported on a partitioned table
    assert statements[0] == "CREATE EXTENSION IF NOT EXISTS btree_gist"
    assert (
        "CREATE TABLE appointments_p2025_01 PARTITION OF appointments FOR VALUES FROM "
        "('2025-01-01 00:00:00') TO ('2025-02-01 00:00:00')"
    ) in statements
    assert "CREATE TABLE appointments_default PARTITION OF appointments DEFAULT" in statements
    exclusions = [s for s in statements if "EXCLUDE USING gist" in s]
    assert [s.split()[2] for s in exclusions] == [
        "appointments_default", "appointments_month_guard", "appointments_p2025_01"
    ]
    indexes = [s.split()[2] for s in statements if s.startswith("CREATE INDEX")]
    assert "idx_appointments_conflict_detection" in indexes
    assert "idx_appointments_barber_start" in indexes


# --- creating and maintaining partitions ---------------------------------------------------------


def test_create_and_ensure_partitions_are_idempotent(partitioned: Engine) -> None:
    names = [p.name for p in P.partitions(partitioned)]
    assert names == [
        "appointments_p2025_01", "appointments_p2025_02", "appointments_p2025_03",
        "appointments_default",
    ]
    assert P.ensure_partitions(partitioned, 2, today=JANUARY) == []
    assert P.ensure_partitions(partitioned, 4, today=JANUARY) == [
        "appointments_p2025_04", "appointments_p2025_05"
    ]
    with partitioned.connect() as conn:
        exclusions = conn.exec_driver_sql(
            "SELECT count(*) FROM pg_constraint WHERE contype = 'x'"
            " AND connamespace = current_schema()::regnamespace").scalar()
        indexes = conn.exec_driver_sql(
            "SELECT count(*) FROM pg_indexes WHERE tablename = 'appointments_p2025_05'").scalar()
    assert exclusions == 5 + 1 + 1  # five months, the default partition, the guard
    assert indexes == 1 + 1 + len(P.parent.indexes)  # primary key, exclusion, declared ones


def _ensure_in_child(url: str, connect_args: dict[str, Any], barrier: Any,
                     results: Any) -> None:
    engine = create_engine(url, connect_args=connect_args)
    barrier.wait()
    try:
        results.put(P.ensure_partitions(engine, 8, today=JANUARY))
    except Exception as error:  # reported to the parent, which fails the test
        results.put(f"{type(error).__name__}: {error}")
    finally:
        engine.dispose()


def test_ensure_partitions_from_many_processes_at_once(
    partitioned: Engine, pg_url: str, pg_schema: str
) -> None:
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(4), context.Queue()
    url, connect_args = schema_url(pg_url, pg_schema)
    workers = [
        context.Process(target=_ensure_in_child, args=(url, connect_args, barrier, results))
        for _ in range(4)
    ]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    assert all(isinstance(o, list) for o in outcomes), outcomes
    created = [name for outcome in outcomes for name in outcome]
    assert sorted(created) == [f"appointments_p2025_{m:02d}" for m in range(4, 10)]
    assert len(P.partitions(partitioned)) == 9 + 1


def test_rows_in_the_default_partition_move_into_their_new_month(partitioned: Engine) -> None:
    april_eve = dt.datetime(2025, 4, 30, 23, 30)
    with partitioned.begin() as conn:
        book(conn, 1, dt.datetime(2025, 4, 10, 9), 30)
        book(conn, 1, april_eve, 60)  # crosses into May: in the guard
    assert P.ensure_partitions(partitioned, 1, today=dt.date(2025, 4, 2)) == [
        "appointments_p2025_04", "appointments_p2025_05"
    ]
    with partitioned.begin() as conn:
        where = conn.exec_driver_sql(
            "SELECT DISTINCT tableoid::regclass::text FROM appointments").scalars().all()
        assert where == ["appointments_p2025_04"]
        assert conn.exec_driver_sql("SELECT count(*) FROM appointments_month_guard").scalar() == 1
        assert attempt(conn, lambda c: book(c, 1, dt.datetime(2025, 5, 1), 15)) == (
            EXCLUSION_VIOLATION
        )


def test_retire_detaches_or_drops_old_months_and_their_guard_rows(partitioned: Engine) -> None:
    with partitioned.begin() as conn:
        book(conn, 1, BOUNDARY - dt.timedelta(minutes=30), 60)  # January, in the guard
        book(conn, 1, dt.datetime(2025, 2, 10, 9), 30)
        book(conn, 1, dt.datetime(2025, 3, 10, 9), 30)
    with pytest.raises(StructureError, match="no retention declared"):
        P.retire(partitioned, today=dt.date(2025, 3, 10))
    detached = P.retire(partitioned, keep=1, today=dt.date(2025, 3, 10))
    assert detached == ["appointments_p2025_01"]
    with partitioned.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM appointments").scalar() == 2
        assert conn.exec_driver_sql("SELECT count(*) FROM appointments_p2025_01").scalar() == 1
        assert conn.exec_driver_sql("SELECT count(*) FROM appointments_month_guard").scalar() == 0
    assert P.retire(partitioned, keep=0, today=dt.date(2025, 3, 10), drop=True) == [
        "appointments_p2025_02"
    ]
    with partitioned.connect() as conn:
        assert conn.exec_driver_sql("SELECT to_regclass('appointments_p2025_02')").scalar() is None
        assert conn.exec_driver_sql("SELECT count(*) FROM appointments").scalar() == 1


def test_partitions_are_postgresql_only(sqlite: Engine) -> None:
    with pytest.raises(StructureError, match="needs PostgreSQL"):
        P.ensure_partitions(sqlite, 1)


# --- the double-booking guarantee ----------------------------------------------------------------


def test_the_guard_catches_overlaps_across_the_month_boundary(partitioned: Engine) -> None:
    evening = BOUNDARY - dt.timedelta(minutes=30)
    with partitioned.begin() as conn:
        crossing = book(conn, 1, evening, 60)  # 23:30 to 00:30, stored in January
        refused = attempt(conn, lambda c: book(c, 1, BOUNDARY, 30))  # February
        assert refused == EXCLUSION_VIOLATION
        assert attempt(conn, lambda c: book(c, 1, BOUNDARY + dt.timedelta(minutes=30), 30)) is None
        assert attempt(conn, lambda c: book(c, 2, BOUNDARY, 30)) is None  # another barber
        assert attempt(conn, lambda c: book(c, 1, evening - dt.timedelta(minutes=15), 30)) == (
            EXCLUSION_VIOLATION  # same month: the partition's own constraint
        )
        cancel = text("UPDATE appointments SET status = :s WHERE id = :id")
        cancelled = {"s": "cancelled", "id": crossing}
        assert attempt(conn, lambda c: c.execute(cancel, cancelled)) is None
        assert attempt(conn, lambda c: book(c, 1, BOUNDARY, 30)) is None
        assert attempt(conn, lambda c: c.execute(cancel, {"s": "confirmed", "id": crossing})) == (
            EXCLUSION_VIOLATION
        )
        assert attempt(conn, lambda c: book(c, 2, evening, 24 * 60 + 1)) == CHECK_VIOLATION
        assert overlapping_pairs(conn) == 0


def test_concurrent_bookings_across_a_month_boundary_never_overlap(
    partitioned: Engine, pg_url: str, pg_schema: str
) -> None:
    engine = quick_deadlocks(pg_url, pg_schema)  # overlapping inserts deadlock now and then
    outcomes: list[str] = []
    start = threading.Barrier(8)

    def client(seed: int) -> None:
        rng = random.Random(seed)
        start.wait()
        for _ in range(25):
            barber = rng.choice((1, 2))
            if barber == 1:  # anywhere from 22:00 to 02:45
                begin = BOUNDARY + dt.timedelta(minutes=15 * rng.randrange(-8, 12))
                minutes = rng.choice((30, 45, 60, 90))
            else:  # always across midnight: the first one to commit is a crossing booking
                begin = BOUNDARY - dt.timedelta(minutes=15 * rng.randrange(1, 4))
                minutes = rng.choice((60, 90))
            try:
                with engine.begin() as conn:
                    book(conn, barber, begin, minutes, rng.choice(("confirmed", "pending")))
                crossing = begin < BOUNDARY < begin + dt.timedelta(minutes=minutes)
                outcomes.append("crossing" if crossing else "booked")
            except DBAPIError as error:
                refused = _sqlstate(error) in (EXCLUSION_VIOLATION, DEADLOCK)
                outcomes.append("refused" if refused else f"error: {error}")

    threads = [threading.Thread(target=client, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    engine.dispose()
    assert len(outcomes) == 200
    assert [o for o in outcomes if o.startswith("error")] == []
    assert outcomes.count("crossing") >= 1 and outcomes.count("refused") >= 1
    with partitioned.connect() as conn:
        assert overlapping_pairs(conn) == 0
        months = conn.exec_driver_sql(
            "SELECT count(DISTINCT tableoid) FROM appointments").scalar()
        # Both sides of the boundary were booked: a start from 01:15 on can only be refused
        # by a February row (no January row ends after 01:15).
        assert months == 2


def test_book_appointment_on_the_partitioned_table_never_double_books(
    partitioned: Engine, pg_url: str, pg_schema: str
) -> None:
    """The booking service itself (lock, overlap check, insert) on the partitioned table:
    16 threads book 90-minute slots of one barber at quarter hours around the month
    boundary; exactly the non-overlapping ones are kept, whichever partition they land in."""
    with partitioned.begin() as conn:
        conn.execute(insert(Service), [{"id": 1, "name": "Long cut", "base_price": Decimal("40"),
                                        "duration_minutes": 90}])
    engine = quick_deadlocks(pg_url, pg_schema)
    starts = [BOUNDARY + dt.timedelta(minutes=15 * k) for k in range(-8, 8)]
    barrier = threading.Barrier(len(starts))
    outcomes: list[str] = []

    def client(start: dt.datetime) -> None:
        barrier.wait()
        try:
            with Session(engine) as session:
                book_appointment(session, barber_id=1, service_id=1, start=start)
                session.commit()
            outcomes.append("booked")
        except BookingConflict:
            outcomes.append("conflict")
        except Exception as error:  # any other outcome fails the assertion below
            outcomes.append(repr(error))

    threads = [threading.Thread(target=client, args=(start,)) for start in starts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    engine.dispose()
    assert sorted(set(outcomes)) == ["booked", "conflict"], outcomes
    with partitioned.connect() as conn:
        assert overlapping_pairs(conn) == 0
        booked = conn.exec_driver_sql("SELECT count(*) FROM appointments").scalar_one()
    # Starts 22:00 to 01:45, 90 minutes each: at most 3 fit (22:00, 23:30, 01:00); whichever
    # commits first, at least 2 (23:00 and 00:30 leave no room for a third).
    assert booked == outcomes.count("booked")
    assert 2 <= booked <= 3


# --- the guard accepts exactly what one table-wide constraint accepts ----------------------------

_WINDOW = BOUNDARY - dt.timedelta(days=2)
operations = st.lists(
    st.one_of(
        # Start times anywhere in four days around the boundary, mostly within six hours of it.
        st.tuples(st.just("book"), st.integers(1, 2),
                  st.integers(0, 4 * 96) | st.integers(2 * 96 - 24, 2 * 96 + 24),
                  st.sampled_from([15, 30, 60, 180, 24 * 60]),
                  st.sampled_from(["confirmed", "pending", "cancelled"])),
        st.tuples(st.just("status"), st.integers(0, 9),
                  st.sampled_from(["confirmed", "cancelled"])),
        st.tuples(st.just("move"), st.integers(0, 9), st.integers(-8, 8)),
        st.tuples(st.just("delete"), st.integers(0, 9)),
    ),
    min_size=1,
    max_size=12,
)


@pytest.fixture
def twin(partitioned: Engine) -> Iterator[Engine]:
    """``reference_bookings``: the same rows in one plain table with one constraint."""
    with partitioned.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE reference_bookings (id integer PRIMARY KEY, barber_id integer, "
            "start_time timestamp, end_time timestamp, status text, "
            "EXCLUDE USING gist (barber_id WITH =, tsrange(start_time, end_time, '[)') WITH &&)"
            " WHERE (status IN ('confirmed', 'pending')))"
        )
    yield partitioned


def _apply(conn: Connection, table: str, operation: tuple[Any, ...], ids: list[int]) -> str | None:
    kind = operation[0]
    if kind == "book":
        _, barber, quarters, minutes, status = operation
        begin = _WINDOW + dt.timedelta(minutes=15 * quarters)
        row = {"id": len(ids) + 1, "b": barber, "s": begin,
               "e": begin + dt.timedelta(minutes=minutes), "st": status}
        columns = "id, barber_id, start_time, end_time, status"
        values = ":id, :b, :s, :e, :st"
        if table == "appointments":
            columns += ", service_name, duration_minutes, price"
            values += ", 'Cut', 15, 30"
        statement = text(f"INSERT INTO {table} ({columns}) VALUES ({values})")
        return attempt(conn, statement.bindparams(**row))
    if not ids:
        return "nothing"
    target = ids[operation[1] % len(ids)]
    if kind == "status":
        sql = f"UPDATE {table} SET status = '{operation[2]}' WHERE id = {target}"
    elif kind == "move":
        shift = f"interval '{operation[2] * 15} minutes'"
        sql = (f"UPDATE {table} SET start_time = start_time + {shift}, "
               f"end_time = end_time + {shift} WHERE id = {target}")
    else:
        sql = f"DELETE FROM {table} WHERE id = {target}"
    return attempt(conn, text(sql))


@pytest.mark.nplusone(mode="off")
@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=operations)
def test_partitions_and_guard_accept_exactly_what_one_constraint_accepts(
    twin: Engine, steps: list[tuple[Any, ...]]
) -> None:
    with twin.begin() as conn:
        conn.exec_driver_sql("TRUNCATE appointments, appointments_month_guard, reference_bookings")
        ids: list[int] = []
        for operation in steps:
            outcomes = {
                t: _apply(conn, t, operation, ids) for t in ("appointments", "reference_bookings")
            }
            assert outcomes["appointments"] == outcomes["reference_bookings"], operation
            if operation[0] == "book" and outcomes["appointments"] is None:
                ids.append(len(ids) + 1)
        assert overlapping_pairs(conn) == 0
