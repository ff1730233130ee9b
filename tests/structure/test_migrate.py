"""The online migration of a populated ``appointments`` into monthly partitions: refusals,
the report's flows unchanged (results, statements) and pruned, interruption and resume
(an exception, a killed process), concurrent writers, abort."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import random
import signal
import threading
import time
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, insert, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

import sqlaopt
from sqlaopt._timing import Executed, capture_statements
from sqlaopt.booking import FLOWS, flow_arguments, generate
from sqlaopt.booking.models import Appointment
from sqlaopt.indexes import REPORT, SUPPLEMENT, create
from sqlaopt.structure import (
    APPOINTMENT_PARTITIONS,
    MigrationError,
    MigrationProgress,
    scanned_partitions,
)
from sqlaopt.structure._migrate import MIGRATIONS

from .conftest import schema_url

P = APPOINTMENT_PARTITIONS
TODAY = dt.date(2024, 3, 1)  # in the generated data: three months, not every month until now
COLUMNS = ", ".join(c.name for c in Appointment.__table__.columns)

pytestmark = pytest.mark.nplusone(mode="off")  # a migration repeats its batch statement


class Stop(Exception):
    """Raised from a progress callback to interrupt the copy."""


@pytest.fixture
def populated(pg: Engine) -> Engine:
    """1,500 generated appointments (the live table's own indexes do not matter here)."""
    generate(pg, 1500)
    return pg


def rows_of(engine: Engine, table: str) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return list(conn.exec_driver_sql(f"SELECT {COLUMNS} FROM {table} ORDER BY id"))


def relation_exists(engine: Engine, name: str) -> bool:
    with engine.connect() as conn:
        return conn.exec_driver_sql(f"SELECT to_regclass('{name}')").scalar() is not None


def test_refused_with_every_reason_and_nothing_created(populated: Engine) -> None:
    with populated.begin() as conn:
        conn.exec_driver_sql("CREATE VIEW busy AS SELECT barber_id FROM appointments")
        conn.exec_driver_sql("UPDATE appointments SET status = 'cancelled', "
                             "end_time = start_time + interval '25 hours' WHERE id = 1")
    with pytest.raises(MigrationError) as refused:
        P.migrate(populated)
    message = str(refused.value)
    assert "1 rows last longer than max_duration (1 day, 0:00:00)" in message
    assert "views read appointments: busy" in message
    assert "payments.payments_appointment_id_fkey" in message
    assert "drop_foreign_keys=True" in message
    assert "Nothing was changed" in message
    assert not relation_exists(populated, "appointments_partitioned")
    with populated.connect() as conn:
        triggers = conn.exec_driver_sql(
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'appointments'::regclass "
            "AND NOT tgisinternal").scalar()
        assert triggers == 0
    assert not relation_exists(populated, "sqlaopt_partition_migrations")  # rolled back too


def _flow_results(engine: Engine, arguments: dict[str, dict[str, Any]]) -> dict[str, Any]:
    results = {}
    for flow in FLOWS:
        with Session(engine) as session, sqlaopt.count_queries() as queries:
            results[flow.name] = (flow.optimized(session, **arguments[flow.name]), queries.count)
    return results


def _statements(engine: Engine, flow: Any, arguments: dict[str, Any]) -> list[Executed]:
    with capture_statements(engine) as executed, Session(engine) as session:
        flow.optimized(session, **arguments)
    return executed


def test_migration_keeps_the_flows_and_prunes_their_partitions(populated: Engine) -> None:
    create(populated, REPORT + SUPPLEMENT)  # the flows' indexes, as in production
    with Session(populated) as session:
        arguments = flow_arguments(session)
    before = _flow_results(populated, arguments)
    progress: list[MigrationProgress] = []
    result = P.migrate(populated, drop_foreign_keys=True, today=TODAY, batch_size=400,
                       progress=progress.append)
    assert [p.copied for p in progress] == [400, 800, 1200, 1500]
    assert (result.rows, result.copied, result.resumed) == (1500, 1500, False)
    assert result.dropped_foreign_keys == ("payments.payments_appointment_id_fkey",)
    assert result.old_table == "appointments_unpartitioned"
    assert P.exists(populated)
    assert rows_of(populated, "appointments") == rows_of(populated, "appointments_unpartitioned")

    assert _flow_results(populated, arguments) == before  # same results, same statement counts
    day = arguments["daily_schedule"]["day"]
    month = f"appointments_p{day.year:04d}_{day.month:02d}"
    later = {p.name for p in P.partitions(populated) if p.start and p.start > day}
    earlier = {p.name for p in P.partitions(populated) if p.end and p.end <= day}
    assert later and earlier
    for flow in FLOWS:
        scanned: set[str] = set()
        for statement in _statements(populated, flow, arguments[flow.name]):
            with populated.connect() as conn:
                tables = scanned_partitions(conn, statement.sql, statement.parameters)
            scanned |= {t for t in tables if t.startswith("appointments")}
        if flow.name in ("analytics_dashboard", "daily_schedule"):
            assert scanned == {month}, flow.name
        elif flow.name in ("has_conflict", "available_slots"):
            # start_time < :end bounds the scan above only: later months are pruned.
            assert month in scanned and not scanned & later, flow.name
        elif flow.name == "user_dashboard":
            assert not scanned & earlier, flow.name  # start_time >= :now
        else:
            assert scanned == set(), flow.name  # payments only

    with populated.begin() as conn:
        last = conn.scalar(select(Appointment.id).order_by(Appointment.id.desc()).limit(1))
        new = conn.execute(insert(Appointment).values(
            barber_id=1, service_name="Cut", start_time=dt.datetime(2030, 1, 1, 9),
            end_time=dt.datetime(2030, 1, 1, 9, 30), duration_minutes=30, status="confirmed",
            price=Decimal("30.00")).returning(Appointment.id)).scalar_one()
        assert new == last + 1  # the id sequence moved with the table
        names = set(conn.exec_driver_sql(
            "SELECT indexrelid::regclass::text FROM pg_index "
            "WHERE indrelid = 'appointments'::regclass").scalars())
    assert names == {"appointments_pkey", *(str(i.name) for i in P.parent.indexes)}


def _write_meanwhile(engine: Engine) -> dict[int, str | None]:
    """Insert, update and delete rows of the live table; the expected final status per id
    (None: deleted)."""
    expected: dict[int, str | None] = {}
    with engine.begin() as conn:
        for day in range(3):
            start = dt.datetime(2031, 1, 1 + day, 10)
            new = conn.execute(insert(Appointment).values(
                barber_id=1, service_name="Cut", start_time=start,
                end_time=start + dt.timedelta(minutes=30), duration_minutes=30,
                status="pending", price=Decimal("25.00")).returning(Appointment.id)).scalar_one()
            expected[new] = "pending"
        conn.exec_driver_sql("UPDATE appointments SET status = 'no_show' WHERE id IN (10, 1400)")
        conn.exec_driver_sql("DELETE FROM payments WHERE appointment_id IN (11, 1401)")
        conn.exec_driver_sql("DELETE FROM appointments WHERE id IN (11, 1401)")
        conn.exec_driver_sql(
            "UPDATE appointments SET start_time = start_time + interval '31 days', "
            "end_time = end_time + interval '31 days' WHERE id = 12")
    expected.update({10: "no_show", 1400: "no_show", 11: None, 1401: None})
    return expected


def test_an_interrupted_migration_resumes_with_the_writes_made_meanwhile(
    populated: Engine,
) -> None:
    def stop_after_two(progress: MigrationProgress) -> None:
        if progress.batches == 2:
            raise Stop

    with pytest.raises(Stop):
        P.migrate(populated, drop_foreign_keys=True, today=TODAY, batch_size=300,
                  progress=stop_after_two)
    with populated.connect() as conn:
        state = conn.execute(select(MIGRATIONS)).mappings().one()
    assert (state["phase"], state["copied"], state["last_key"]) == ("copying", 600, 600)
    assert not P.exists(populated)  # the application still uses the old table

    expected = _write_meanwhile(populated)
    result = P.migrate(populated, drop_foreign_keys=True, today=TODAY, batch_size=300)
    assert result.resumed and result.rows == 1500 + 3 - 2
    # 1401 was deleted before its batch; the rows added meanwhile came through the mirror.
    assert result.copied == 1500 - 1
    assert rows_of(populated, "appointments") == rows_of(populated, "appointments_unpartitioned")
    with populated.connect() as conn:
        found = dict(conn.execute(select(Appointment.id, Appointment.status).where(
            Appointment.id.in_(list(expected)))).all())
        moved = conn.scalar(select(Appointment.start_time).where(Appointment.id == 12))
    assert found == {k: v for k, v in expected.items() if v is not None}
    assert moved is not None and moved.month == 2  # moved across partitions while copying


def _migrate_in_child(url: str, connect_args: dict[str, Any]) -> None:
    engine = create_engine(url, connect_args=connect_args)
    P.migrate(engine, drop_foreign_keys=True, today=TODAY, batch_size=100,
              progress=lambda _: time.sleep(0.05))


def test_a_killed_migration_resumes(populated: Engine, pg_url: str, pg_schema: str) -> None:
    url, connect_args = schema_url(pg_url, pg_schema)
    child = multiprocessing.get_context("fork").Process(
        target=_migrate_in_child, args=(url, connect_args))
    child.start()
    copied = 0
    deadline = time.monotonic() + 30
    while copied < 300 and time.monotonic() < deadline:
        time.sleep(0.05)
        with populated.connect() as conn:
            if conn.exec_driver_sql("SELECT to_regclass('sqlaopt_partition_migrations')").scalar():
                copied = conn.scalar(select(MIGRATIONS.c.copied)) or 0
    assert child.pid is not None
    os.kill(child.pid, signal.SIGKILL)
    child.join()
    assert 300 <= copied < 1500
    result = P.migrate(populated, drop_foreign_keys=True, today=TODAY, batch_size=500)
    assert result.resumed and result.rows == 1500
    assert rows_of(populated, "appointments") == rows_of(populated, "appointments_unpartitioned")


def test_writers_during_the_migration_lose_nothing(populated: Engine) -> None:
    done = threading.Event()
    expected: dict[int, str | None] = {}
    errors: list[BaseException] = []

    def writer() -> None:
        rng, slot = random.Random(7), 0
        while not done.is_set():
            try:
                with populated.begin() as conn:
                    slot += 1
                    start = dt.datetime(2032, 1, 1, 8) + dt.timedelta(hours=slot)
                    new = conn.execute(insert(Appointment).values(
                        barber_id=2, service_name="Cut", start_time=start,
                        end_time=start + dt.timedelta(minutes=30), duration_minutes=30,
                        status="confirmed", price=Decimal("30.00"),
                    ).returning(Appointment.id)).scalar_one()
                    target = rng.randrange(1, 1500)
                    conn.exec_driver_sql(
                        f"UPDATE appointments SET status = 'no_show' WHERE id = {target}")
                expected[new], expected[target] = "confirmed", "no_show"
            except DBAPIError as error:  # a lock timeout at the swap is acceptable
                if "lock timeout" not in str(error):
                    errors.append(error)
            time.sleep(0.02)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        result = P.migrate(populated, drop_foreign_keys=True, today=TODAY, batch_size=300,
                           progress=lambda _: time.sleep(0.05))
    finally:
        done.set()
        thread.join()
    assert errors == []
    assert len(expected) > 10 and result.rows >= 1500
    with populated.connect() as conn:
        present = conn.scalar(select(MIGRATIONS.c.total))
    assert result.copied == present  # the batches stop at the rows present when it started
    with populated.connect() as conn:
        found = dict(conn.execute(select(Appointment.id, Appointment.status).where(
            Appointment.id.in_(list(expected)))).all())
    assert found == expected


def test_abort_removes_the_copy_and_a_new_run_starts_over(populated: Engine) -> None:
    def stop(_: MigrationProgress) -> None:
        raise Stop

    with pytest.raises(Stop):
        P.migrate(populated, drop_foreign_keys=True, today=TODAY, batch_size=500, progress=stop)
    assert relation_exists(populated, "appointments_partitioned")
    assert P.abort_migration(populated) is True
    assert not relation_exists(populated, "appointments_partitioned")
    assert not relation_exists(populated, "appointments_month_guard")
    assert P.abort_migration(populated) is False
    result = P.migrate(populated, drop_foreign_keys=True, today=TODAY, batch_size=1000)
    assert not result.resumed and result.rows == 1500
    with pytest.raises(MigrationError, match="already partitioned"):
        P.migrate(populated, drop_foreign_keys=True, today=TODAY)
