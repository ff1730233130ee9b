"""``book_appointment`` under concurrency: many threads and processes, one barber, no overlap.

Every deployment a booking service meets is raced: PostgreSQL with the tables in ``public``
(with and without the exclusion constraint), in a tenant schema reached through
``search_path`` or ``schema_translate_map`` (with a decoy ``appointments`` table carrying the
constraint in ``public``, which a lookup by table name would find), with the constraint dropped
after the engine's first booking; SQLite (a file database, a connection per thread) and
MariaDB.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, func, select, text, update
from sqlalchemy.orm import Session

from sqlaopt.booking import BookingConflict, BookingSetupError, _booking, book_appointment
from sqlaopt.booking.models import Appointment, Base

from .conftest import fresh_schema, replace_rows
from .race import (
    BARBER,
    CLIENT,
    HAIRCUT,
    OTHER_BARBER,
    T0,
    Deployment,
    active_intervals,
    book_from_process,
    book_once,
    overlapping_pairs,
    race,
    warm_up,
)

ROWS = {
    "organizations": [{"id": 1, "name": "Shop"}],
    "users": [
        {"id": i, "email": f"u{i}@example.com", "name": f"User {i}", "unified_role": role,
         "is_active": True, "lifetime_value": Decimal(0), "organization_id": 1}
        for i, role in ((1, "barber"), (2, "barber"), (3, "client"))
    ],
    "services": [
        {"id": 1, "organization_id": 1, "name": "Haircut", "base_price": Decimal("35.00"),
         "duration_minutes": 30},
        {"id": 2, "organization_id": 1, "name": "Colour", "base_price": Decimal("65.00"),
         "duration_minutes": 60},
    ],
    "clients": [{"id": 1, "user_id": 3, "name": "Client 1", "total_spent": Decimal(0)}],
}

POSTGRESQL_DEPLOYMENTS = ["pg-constraint", "pg-no-constraint", "pg-search-path", "pg-translate"]
DEPLOYMENTS = [*POSTGRESQL_DEPLOYMENTS, "sqlite", "mariadb"]


def prepare(engine: Engine, *, constraint: bool = False) -> Engine:
    fresh_schema(engine, exclusion_constraint=constraint)
    replace_rows(engine, ROWS)
    return engine


def tenant_schema(admin: Engine, schema: str) -> None:
    """A fresh, empty schema; ``public`` gets the decoy: the tables with the constraint."""
    prepare(admin, constraint=True)
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {schema}"))


def deployment(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> Deployment:
    """The deployment ``name``, with its tables created and filled."""
    if name == "sqlite":
        found = Deployment(name, f"sqlite:///{tmp_path / 'booking.db'}")
        engine = found.engine()
        prepare(engine)
        engine.dispose()
        return found
    if name == "mariadb":
        admin: Engine = request.getfixturevalue("mariadb_booking_engine")
        prepare(admin)
        return Deployment(name, admin.url.render_as_string(hide_password=False))
    admin = request.getfixturevalue("pg_booking_engine")
    url = admin.url.render_as_string(hide_password=False)
    if name in ("pg-constraint", "pg-no-constraint"):
        prepare(admin, constraint=name == "pg-constraint")
        return Deployment(name, url)
    if name == "pg-search-path":
        tenant_schema(admin, "tenant1")
        found = Deployment(name, url, connect_args={"options": "-csearch_path=tenant1"})
    else:
        tenant_schema(admin, "tenant2")
        found = Deployment(name, url, execution_options={"schema_translate_map": {None: "tenant2"}})
    engine = found.engine()
    prepare(engine)
    engine.dispose()
    return found


@pytest.fixture(params=DEPLOYMENTS)
def place(request: pytest.FixtureRequest, tmp_path: Path) -> Deployment:
    return deployment(request.param, request, tmp_path)


@pytest.fixture
def engine(place: Deployment) -> Iterator[Engine]:
    engine = place.engine()
    yield engine
    engine.dispose()


def threads_for(engine: Engine) -> int:
    return 16 if engine.dialect.name == "postgresql" else 10


def assert_no_overlap(engine: Engine, outcomes: list[str]) -> list[tuple[dt.datetime, dt.datetime]]:
    assert set(outcomes) <= {"booked", "conflict"}, outcomes
    booked = active_intervals(engine)
    assert overlapping_pairs(booked) == 0, booked
    assert len(booked) == outcomes.count("booked")
    return booked


def test_one_slot_many_threads_exactly_one_booking(engine: Engine) -> None:
    outcomes = race(engine, [T0] * threads_for(engine))
    assert sorted(outcomes) == ["booked"] + ["conflict"] * (len(outcomes) - 1)
    assert active_intervals(engine) == [(T0, T0 + dt.timedelta(minutes=30))]


def test_staggered_slots_never_overlap_once_committed(engine: Engine) -> None:
    """Starts ten minutes apart: a booking overlaps at most its four nearest neighbours, and
    a thread loses only to a committed overlapping booking, so at least two win."""
    starts = [T0 + dt.timedelta(minutes=10 * i) for i in range(threads_for(engine))]
    booked = assert_no_overlap(engine, race(engine, starts))
    assert len(booked) >= 2


def test_constraint_dropped_after_the_first_booking(pg_booking_engine: Engine) -> None:
    """The engine has booked once with the constraint in place; then it is dropped."""
    url = pg_booking_engine.url.render_as_string(hide_password=False)
    engine = prepare(create_engine(url), constraint=True)
    try:
        assert book_once(engine, T0 - dt.timedelta(hours=2)) == "booked"
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE appointments DROP CONSTRAINT no_double_booking"))
        outcomes = race(engine, [T0 + dt.timedelta(minutes=5 * (i % 4)) for i in range(16)])
        assert set(outcomes) == {"booked", "conflict"} and outcomes.count("booked") == 1
        booked = active_intervals(engine)
        assert len(booked) == 2 and overlapping_pairs(booked) == 0
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def workers() -> Iterator[ProcessPoolExecutor]:
    """Four worker processes, started once. Forked where possible (spawning re-imports
    everything: 20 s for four on this 2-core machine under load); each builds engines of its
    own and never touches the parent's connections."""
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    with ProcessPoolExecutor(4, mp_context=multiprocessing.get_context(method)) as pool:
        list(pool.map(warm_up, range(4)))  # start and import now, outside any test's timing
        yield pool


def test_processes_never_overlap(place: Deployment, workers: ProcessPoolExecutor) -> None:
    """Four processes, three threads each, book the same twelve staggered slots at once."""
    starts = [T0 + dt.timedelta(minutes=10 * i) for i in range(3)] * 4
    go_at = time.time() + 1.0
    futures = [
        workers.submit(book_from_process, place, starts[i * 3 : i * 3 + 3], go_at, i)
        for i in range(4)
    ]
    outcomes = [o for future in futures for o in future.result(timeout=120)]
    engine = place.engine()
    try:
        booked = assert_no_overlap(engine, outcomes)
    finally:
        engine.dispose()
    assert 1 <= len(booked) <= 2  # 10:00 and 10:20 can both win; 10:10 overlaps both


@pytest.mark.parametrize("constraint", [True, False])
def test_repeatable_read_needs_the_constraint_in_its_own_schema(
    pg_booking_engine: Engine, constraint: bool
) -> None:
    """Under REPEATABLE READ the check may read a snapshot older than the lock: the booking
    relies on the constraint of the table it inserts into (here tenant3; the decoy in public
    has one either way)."""
    tenant_schema(pg_booking_engine, "tenant3")
    url = pg_booking_engine.url.render_as_string(hide_password=False)
    place = Deployment("rr", url, connect_args={"options": "-csearch_path=tenant3,public"},
                       isolation_level="REPEATABLE READ")
    engine = prepare(place.engine(), constraint=constraint)
    try:
        with Session(engine) as session:
            session.execute(select(func.count(Appointment.id))).scalar()  # snapshot taken
            if not constraint:
                with pytest.raises(BookingSetupError, match="REPEATABLE READ"):
                    book_appointment(session, barber_id=BARBER, service_id=HAIRCUT, start=T0)
                return
        outcomes = race(engine, [T0 + dt.timedelta(minutes=10 * (i % 4)) for i in range(16)])
        assert len(assert_no_overlap(engine, outcomes)) >= 1
    finally:
        engine.dispose()


def test_serializable_needs_no_constraint(pg_booking_engine: Engine) -> None:
    """Under SERIALIZABLE a check reading a stale snapshot is refused by PostgreSQL itself
    (a serialization failure, for the caller to retry): never an overlap."""
    url = pg_booking_engine.url.render_as_string(hide_password=False)
    engine = prepare(Deployment("ser", url, isolation_level="SERIALIZABLE").engine())
    try:
        outcomes = race(engine, [T0 + dt.timedelta(minutes=10 * (i % 4)) for i in range(16)])
        refused = [o for o in outcomes if o not in ("booked", "conflict")]
        assert all("could not serialize" in o for o in refused), refused
        booked = active_intervals(engine)
        assert len(booked) == outcomes.count("booked") >= 1 and overlapping_pairs(booked) == 0
    finally:
        engine.dispose()


def book(session: Session, start: dt.datetime, **overrides: int) -> Appointment:
    arguments = {"barber_id": BARBER, "service_id": HAIRCUT, "client_id": CLIENT} | overrides
    return book_appointment(session, start=start, **arguments)


def test_back_to_back_and_other_barbers_do_not_conflict(engine: Engine) -> None:
    with Session(engine) as session:
        first = book(session, T0)
        second = book(session, T0 + dt.timedelta(minutes=30))
        book(session, T0, barber_id=OTHER_BARBER)
        session.commit()
        assert first.end_time == second.start_time
        assert (first.price, first.user_id, first.organization_id) == (Decimal("35.00"), 3, 1)
    assert len(active_intervals(engine)) == 2


def test_a_conflict_leaves_the_session_usable(engine: Engine) -> None:
    with Session(engine) as session:
        book(session, T0)
        session.commit()
        with pytest.raises(BookingConflict, match=r"barber 1 .* overlapping \[2025-09-29 10:15"):
            book(session, T0 + dt.timedelta(minutes=15))
        book(session, T0 + dt.timedelta(hours=2))
        session.commit()
    assert len(active_intervals(engine)) == 2


def test_cancelled_appointments_free_their_slot(engine: Engine) -> None:
    with Session(engine) as session:
        taken = book(session, T0)
        session.commit()
        session.execute(update(Appointment).where(Appointment.id == taken.id)
                        .values(status="cancelled"))
        session.commit()
        book(session, T0, service_id=2)  # a longer service over the cancelled one
        session.commit()
    assert active_intervals(engine) == [(T0, T0 + dt.timedelta(minutes=60))]


def test_the_constraint_refuses_a_writer_that_skips_the_lock(
    pg_booking_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another writer commits an overlapping row between book_appointment's check and its
    INSERT: the constraint refuses the INSERT, still a BookingConflict, the session usable."""
    engine = prepare(pg_booking_engine, constraint=True)
    checked = _booking._raise_if_overlapping

    def check_then_rogue_insert(session: Session, appointment: Appointment, **kw: bool) -> None:
        checked(session, appointment, **kw)
        with engine.begin() as rogue:
            rogue.execute(text(
                "INSERT INTO appointments (barber_id, service_name, start_time, end_time, "
                "duration_minutes, status, price) VALUES (1, 'rogue', :s, :e, 30, 'confirmed', 0)"
            ), {"s": T0, "e": T0 + dt.timedelta(minutes=30)})

    monkeypatch.setattr(_booking, "_raise_if_overlapping", check_then_rogue_insert)
    with Session(engine) as session:
        with pytest.raises(BookingConflict):
            book(session, T0 + dt.timedelta(minutes=15))
        monkeypatch.undo()
        book(session, T0 + dt.timedelta(hours=2))
        session.commit()
    assert len(active_intervals(engine)) == 2


def test_sqlite_in_autocommit_mode_refuses_to_book(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'a.db'}", isolation_level="AUTOCOMMIT")
    Base.metadata.create_all(engine)
    prepare(engine)
    try:
        with Session(engine) as session, pytest.raises(BookingSetupError, match="autocommit"):
            book(session, T0)
    finally:
        engine.dispose()


def test_schema_fixture_isolation(pg_booking_engine: Engine) -> None:
    """The decoy really is there: a lookup by table name alone would find its constraint."""
    tenant_schema(pg_booking_engine, "tenant1")
    with pg_booking_engine.connect() as conn:
        names = conn.execute(text(
            "SELECT n.nspname FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid "
            "JOIN pg_namespace n ON n.oid = t.relnamespace "
            "WHERE c.conname = 'no_double_booking' AND t.relname = 'appointments'"
        )).scalars().all()
    assert names == ["public"]
