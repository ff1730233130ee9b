"""Maintained aggregates: the report's ``users`` columns kept exact by triggers on SQLite,
PostgreSQL and MariaDB, through every kind of change, under concurrent writers, and for any
sequence of changes (hypothesis state machine)."""

from __future__ import annotations

import datetime as dt
import random
import threading
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Engine,
    ForeignKey,
    Integer,
    MetaData,
    Numeric,
    Table,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import mssql
from sqlalchemy.exc import DBAPIError

from sqlaopt.booking.models import Appointment, Base, Client, Payment, User
from sqlaopt.structure import (
    USER_AGGREGATES,
    DistinctCount,
    Latest,
    MaintainedAggregates,
    MonthlyTotal,
    StructureError,
)

from ..conftest import sqlite_engine
from .conftest import quick_deadlocks

A = USER_AGGREGATES
APPOINTMENTS = Appointment.__table__
pytestmark = pytest.mark.nplusone(mode="off")  # the tests repeat small writes on purpose


def users(engine: Engine) -> dict[int, tuple[Any, ...]]:
    """Each user's (client_count, last_booking_date)."""
    table = Table("users", MetaData(), autoload_with=engine)
    with engine.connect() as conn:
        rows = conn.execute(select(table.c.id, table.c.client_count, table.c.last_booking_date))
        return {r[0]: (r[1], r[2]) for r in rows}


def add(conn: Connection, barber: int, client: int | None, start: dt.datetime,
        status: str = "completed", price: str = "30.00") -> int:
    return int(conn.execute(insert(Appointment).values(
        barber_id=barber, client_id=client, service_name="Cut", start_time=start,
        end_time=start + dt.timedelta(minutes=30), duration_minutes=30, status=status,
        price=Decimal(price)).returning(Appointment.id)).scalar_one())


def change(engine: Engine, statement: Any) -> None:
    with engine.begin() as conn:
        conn.execute(statement)


def assert_exact(engine: Engine) -> None:
    verification = A.verify(engine)
    assert verification.ok, str(verification)


# --- declaration ---------------------------------------------------------------------------------


def test_unknown_columns_are_named_with_the_closest() -> None:
    with pytest.raises(StructureError, match="did you mean 'client_id'"):
        MaintainedAggregates(APPOINTMENTS, "barber_id", User.__table__,  # type: ignore[arg-type]
                             [DistinctCount("client_count", of="clientid")])
    with pytest.raises(StructureError, match="did you mean 'barber_id'"):
        MaintainedAggregates(APPOINTMENTS, "barberid", User.__table__, [])  # type: ignore[arg-type]
    with pytest.raises(StructureError, match="at least one"):
        MaintainedAggregates(APPOINTMENTS, "barber_id", User.__table__, [])  # type: ignore[arg-type]


def test_dialects_without_triggers_here_are_refused() -> None:
    with pytest.raises(StructureError, match="verify\\(\\) and rebuild\\(\\)"):
        A.trigger_ddl(mssql.dialect())


def test_postgresql_fires_only_for_the_columns_the_aggregates_read() -> None:
    from sqlalchemy.dialects import postgresql

    trigger = A.trigger_ddl(postgresql.dialect())[1]
    watched = "barber_id, price, status, start_time, client_id"
    assert f"AFTER INSERT OR DELETE OR UPDATE OF {watched}" in trigger


# --- every kind of change, on every database -----------------------------------------------------


def test_every_change_keeps_the_aggregates_exact(booked: Engine) -> None:
    A.install(booked)
    assert_exact(booked)
    before = users(booked)
    with booked.connect() as conn:
        new_client = conn.scalar(select(Client.id).order_by(Client.id.desc()).limit(1))
    late = dt.datetime(2024, 6, 3, 8, 0)
    with booked.begin() as conn:
        first = add(conn, 1, new_client, late)
    after = users(booked)
    assert after[1][1] == late  # the latest booking
    assert after[1][0] in (before[1][0], before[1][0] + 1)
    assert_exact(booked)

    steps = [
        update(Appointment).where(Appointment.id == first).values(status="cancelled"),
        update(Appointment).where(Appointment.id == first).values(status="completed"),
        update(Appointment).where(Appointment.id == first).values(client_id=None),
        update(Appointment).where(Appointment.id == first).values(client_id=1),
        update(Appointment).where(Appointment.id == first).values(
            start_time=dt.datetime(2024, 2, 5, 8), end_time=dt.datetime(2024, 2, 5, 8, 30)),
        update(Appointment).where(Appointment.id == first).values(barber_id=2),
        update(Appointment).where(Appointment.id == first).values(price=Decimal("41.50")),
        update(Appointment).where(Appointment.id.in_([3, 4, 5])).values(status="cancelled"),
        delete(Payment).where(Payment.appointment_id.in_([6, 7, first])),
        delete(Appointment).where(Appointment.id.in_([6, 7, first])),
    ]
    for step in steps:
        change(booked, step)
        assert_exact(booked)
    assert users(booked)[1][1] < late  # the latest booking went with the row that held it


def test_a_completed_appointment_that_becomes_cancelled(any_db: Engine) -> None:
    Base.metadata.create_all(any_db)
    with any_db.begin() as conn:
        conn.execute(insert(User).values(id=1, email="b@x", name="B", unified_role="barber"))
        conn.execute(insert(Client), [{"id": c, "name": f"C{c}"} for c in (1, 2)])
    A.install(any_db)
    march, april = dt.datetime(2025, 3, 30, 10), dt.datetime(2025, 4, 2, 10)
    with any_db.begin() as conn:
        only = add(conn, 1, 1, march, price="40.00")
        add(conn, 1, 2, march + dt.timedelta(days=1), price="25.00")
        add(conn, 1, 2, april, status="confirmed", price="99.00")
    assert users(any_db)[1][0] == 2 and users(any_db)[1][1] == april
    assert revenue(any_db) == {(1, dt.date(2025, 3, 1)): (Decimal("65.00"), 2)}
    change(any_db, update(Appointment).where(Appointment.id == only).values(status="cancelled"))
    assert users(any_db)[1][0] == 1  # client 1 has no other booking
    assert revenue(any_db) == {(1, dt.date(2025, 3, 1)): (Decimal("25.00"), 1)}
    change(any_db, update(Appointment).where(Appointment.start_time == april).values(
        status="cancelled"))
    assert users(any_db)[1][1] == march + dt.timedelta(days=1)
    assert_exact(any_db)


def revenue(engine: Engine) -> dict[tuple[int, dt.date], tuple[Decimal, int]]:
    side = A.side_tables[A.aggregates[0]]
    with engine.connect() as conn:
        return {(r.owner_id, r.month): (Decimal(str(r.total)).quantize(Decimal("0.01")), r.rows)
                for r in conn.execute(select(side))}


def test_verify_names_a_tampered_value_and_rebuild_repairs_it(booked: Engine) -> None:
    A.install(booked)
    with booked.begin() as conn:
        conn.exec_driver_sql("UPDATE users SET client_count = client_count + 5 WHERE id = 2")
        conn.exec_driver_sql("DELETE FROM barber_monthly_revenue WHERE owner_id = 1")
    verification = A.verify(booked)
    checks = {c.name: c for c in verification.checks}
    assert not verification.ok
    assert checks["client_count"].mismatches == 1 and checks["client_count"].examples[0][0] == 2
    assert checks["barber_monthly_revenue"].mismatches >= 1
    assert checks["last_booking_date"].ok
    A.rebuild(booked)
    assert_exact(booked)


def test_uninstall_stops_the_maintenance_and_keeps_the_values(sqlite: Engine) -> None:
    from sqlaopt.booking import generate

    generate(sqlite, 300)
    A.install(sqlite)
    kept = users(sqlite)
    A.uninstall(sqlite)
    with sqlite.begin() as conn:
        add(conn, 1, 1, dt.datetime(2030, 1, 1, 9))
    assert users(sqlite) == kept  # nothing maintains them any more
    assert kept[1][1] < dt.datetime(2030, 1, 1, 9)


# --- concurrent writers: no lost update ----------------------------------------------------------

RETRY = ("40P01", "40001", 1213, 1205)  # deadlock / serialization failure, PostgreSQL, MariaDB


def _retryable(error: DBAPIError) -> bool:
    orig = error.orig
    args = getattr(orig, "args", None)
    code = getattr(orig, "sqlstate", None) or (args[0] if args else None)
    return code in RETRY


@pytest.mark.parametrize("kind", ["pg", "mariadb_engine"])
def test_concurrent_writers_lose_no_update(kind: str, request: pytest.FixtureRequest) -> None:
    engine: Engine = request.getfixturevalue(kind)
    if kind == "pg":  # deadlocks are expected and retried
        engine = quick_deadlocks(request.getfixturevalue("pg_url"),
                                 request.getfixturevalue("pg_schema"))
        request.addfinalizer(engine.dispose)
    Base.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(User), [
            {"id": i, "email": f"b{i}@x", "name": f"B{i}", "unified_role": "barber"} for i in (1, 2)
        ])
        conn.execute(insert(Client), [{"id": c, "name": f"C{c}"} for c in range(1, 5)])
    A.install(engine)
    go, retries, failures = threading.Barrier(6), [], []

    def writer(seed: int) -> None:
        rng = random.Random(seed)
        mine: dict[int, dt.datetime] = {}
        go.wait()
        for step in range(30):
            while True:
                try:
                    with engine.begin() as conn:
                        _random_change(conn, rng, mine, seed * 100 + step)
                    break
                except DBAPIError as error:
                    if not _retryable(error):
                        failures.append(error)
                        return
                    retries.append(error)

    threads = [threading.Thread(target=writer, args=(seed,)) for seed in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert_exact(engine)
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Appointment)) > 50


def _random_change(
    conn: Connection, rng: random.Random, mine: dict[int, dt.datetime], slot: int
) -> None:
    """Insert a row, or change the status, client or month of one, or delete one."""
    choice = rng.random()
    if choice < 0.45 or not mine:
        start = dt.datetime(2025, 1, 1) + dt.timedelta(hours=slot)  # never overlapping
        new = add(conn, rng.choice((1, 2)), rng.choice((1, 2, 3, 4, None)), start,
                  rng.choice(("completed", "confirmed", "cancelled")))
        mine[new] = start
        return
    target = rng.choice(sorted(mine))
    row = update(Appointment).where(Appointment.id == target)
    if choice < 0.65:
        conn.execute(row.values(status=rng.choice(("completed", "cancelled", "pending"))))
    elif choice < 0.8:
        conn.execute(row.values(client_id=rng.choice((1, 2, 3, 4))))
    elif choice < 0.9:  # into another month
        mine[target] += dt.timedelta(days=40)
        conn.execute(row.values(start_time=mine[target],
                                end_time=mine[target] + dt.timedelta(minutes=30)))
    else:
        conn.execute(delete(Appointment).where(Appointment.id == target))
        del mine[target]


# --- any sequence of changes (hypothesis state machine, SQLite) ----------------------------------


class AggregatesMachine(RuleBasedStateMachine):
    """Random inserts, status/client/barber/time changes and deletes; the aggregates stay
    exact after every step."""

    def __init__(self) -> None:
        super().__init__()
        self.engine = sqlite_engine()
        Base.metadata.create_all(self.engine)
        with self.engine.begin() as conn:
            conn.execute(insert(User), [
                {"id": i, "email": f"b{i}@x", "name": f"B{i}", "unified_role": "barber"}
                for i in (1, 2)
            ])
            conn.execute(insert(Client), [{"id": c, "name": f"C{c}"} for c in (1, 2, 3)])
        A.install(self.engine)
        self.starts: dict[int, dt.datetime] = {}

    @rule(barber=st.sampled_from([1, 2]), client=st.sampled_from([1, 2, 3, None]),
          day=st.integers(0, 70), status=st.sampled_from(["completed", "confirmed", "cancelled",
                                                           "no_show"]),
          cents=st.integers(0, 20_000))
    def book(self, barber: int, client: int | None, day: int, status: str, cents: int) -> None:
        with self.engine.begin() as conn:
            start = dt.datetime(2025, 1, 1, 9) + dt.timedelta(days=day, minutes=len(self.starts))
            new = add(conn, barber, client, start, status, str(Decimal(cents) / 100))
            self.starts[new] = start

    @precondition(lambda self: self.starts)
    @rule(data=st.data(), field=st.sampled_from(["status", "client_id", "barber_id", "start"]))
    def edit(self, data: st.DataObject, field: str) -> None:
        target = data.draw(st.sampled_from(sorted(self.starts)))
        values: dict[str, Any]
        if field == "status":
            values = {"status": data.draw(st.sampled_from(["completed", "cancelled", "pending"]))}
        elif field == "client_id":
            values = {"client_id": data.draw(st.sampled_from([1, 2, 3, None]))}
        elif field == "barber_id":
            values = {"barber_id": data.draw(st.sampled_from([1, 2]))}
        else:  # within the month or into another one
            self.starts[target] += dt.timedelta(days=data.draw(st.integers(-40, 40)))
            values = {"start_time": self.starts[target],
                      "end_time": self.starts[target] + dt.timedelta(minutes=30)}
        change(self.engine, update(Appointment).where(Appointment.id == target).values(values))

    @precondition(lambda self: self.starts)
    @rule(data=st.data())
    def remove(self, data: st.DataObject) -> None:
        target = data.draw(st.sampled_from(sorted(self.starts)))
        del self.starts[target]
        change(self.engine, delete(Appointment).where(Appointment.id == target))

    @invariant()
    def exact(self) -> None:
        assert_exact(self.engine)

    def teardown(self) -> None:
        self.engine.dispose()


TestAggregatesMachine = AggregatesMachine.TestCase
TestAggregatesMachine.settings = settings(
    max_examples=10, stateful_step_count=10, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def test_custom_declarations_on_another_schema(sqlite: Engine) -> None:
    """The classes are not tied to the report: any source, key and owner table."""
    metadata = MetaData()
    shops = Table("shops", metadata, Column("id", Integer, primary_key=True))
    orders = Table(
        "orders", metadata, Column("id", Integer, primary_key=True),
        Column("shop_id", ForeignKey("shops.id")), Column("client_id", Integer),
        Column("price", Numeric(10, 2)), Column("start_time", DateTime),
    )
    maintained = MaintainedAggregates(orders, "shop_id", shops, [
        MonthlyTotal("shop_sales", of="price", by="start_time"),
        Latest("last_order", of="start_time"),
        DistinctCount("customers", of="client_id"),
    ])
    metadata.create_all(sqlite)
    with sqlite.begin() as conn:
        conn.execute(insert(shops).values(id=1))
    maintained.install(sqlite)
    with sqlite.begin() as conn:
        for n in range(4):
            conn.execute(insert(orders).values(
                id=n + 1, shop_id=1, client_id=n % 2, price=Decimal("10.00"),
                start_time=dt.datetime(2025, 1, 1 + n)))
        conn.execute(delete(orders).where(orders.c.id == 4))
    assert maintained.verify(sqlite).ok
    with sqlite.connect() as conn:
        assert conn.exec_driver_sql("SELECT customers, last_order FROM shops").one() == (
            2, "2025-01-03 00:00:00.000000")
