"""``book_appointment`` under concurrency: many threads, one slot, exactly one booking.

PostgreSQL relies on the ``no_double_booking`` exclusion constraint; SQLite (a file database,
one connection per thread) and MariaDB on the lock taken before the check.
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, func, select, update
from sqlalchemy.orm import Session

from sqlaopt.booking import BookingConflict, BookingSetupError, book_appointment
from sqlaopt.booking.models import Appointment, Base

from .conftest import fresh_schema, replace_rows

T0 = dt.datetime(2025, 9, 29, 10, 0)
BARBER, OTHER_BARBER, CLIENT, HAIRCUT = 1, 2, 1, 1  # HAIRCUT lasts 30 minutes
ACTIVE = ("confirmed", "pending")

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


def prepare(engine: Engine, *, constraint: bool = False) -> Engine:
    fresh_schema(engine, exclusion_constraint=constraint)
    replace_rows(engine, ROWS)
    return engine


@pytest.fixture(params=["postgresql", "sqlite", "mariadb"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """The reference schema with a shop, two barbers, a client and two services."""
    if request.param == "postgresql":
        yield prepare(request.getfixturevalue("pg_booking_engine"), constraint=True)
    elif request.param == "mariadb":
        yield prepare(request.getfixturevalue("mariadb_booking_engine"))
    else:
        engine = create_engine(f"sqlite:///{tmp_path / 'booking.db'}")  # a connection per thread
        Base.metadata.create_all(engine)
        yield prepare(engine)
        engine.dispose()


def race(engine: Engine, starts: list[dt.datetime]) -> list[str]:
    """Book every start at once from its own thread; each thread's outcome, in order."""
    barrier = threading.Barrier(len(starts))
    outcomes = [""] * len(starts)

    def book(index: int) -> None:
        barrier.wait()
        try:
            with Session(engine) as session:
                book_appointment(session, barber_id=BARBER, service_id=HAIRCUT,
                                 start=starts[index], client_id=CLIENT)
                session.commit()
            outcomes[index] = "booked"
        except BookingConflict:
            outcomes[index] = "conflict"
        except Exception as error:
            outcomes[index] = repr(error)

    threads = [threading.Thread(target=book, args=(i,)) for i in range(len(starts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def active_intervals(engine: Engine) -> list[tuple[dt.datetime, dt.datetime]]:
    with Session(engine) as session:
        rows = session.execute(
            select(Appointment.start_time, Appointment.end_time)
            .where(Appointment.barber_id == BARBER, Appointment.status.in_(ACTIVE))
            .order_by(Appointment.start_time)
        ).all()
    return [(r[0], r[1]) for r in rows]


def threads_for(engine: Engine) -> int:
    return 16 if engine.dialect.name == "postgresql" else 10


def test_one_slot_many_threads_exactly_one_booking(engine: Engine) -> None:
    outcomes = race(engine, [T0] * threads_for(engine))
    assert sorted(outcomes) == ["booked"] + ["conflict"] * (len(outcomes) - 1)
    assert active_intervals(engine) == [(T0, T0 + dt.timedelta(minutes=30))]


def test_staggered_slots_never_overlap_once_committed(engine: Engine) -> None:
    """Starts ten minutes apart: a booking overlaps at most its four nearest neighbours, and
    a thread loses only to a committed overlapping booking, so at least two win."""
    starts = [T0 + dt.timedelta(minutes=10 * i) for i in range(threads_for(engine))]
    outcomes = race(engine, starts)
    assert set(outcomes) <= {"booked", "conflict"}, outcomes
    booked = active_intervals(engine)
    assert len(booked) == outcomes.count("booked") >= 2
    assert all(earlier[1] <= later[0] for earlier, later in itertools.pairwise(booked))


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


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"barber_id": 99}, LookupError),
        ({"service_id": 99}, LookupError),
        ({"client_id": 99}, LookupError),
    ],
)
def test_unknown_rows_are_lookup_errors(
    engine: Engine, overrides: dict[str, int], error: type[Exception]
) -> None:
    with Session(engine) as session, pytest.raises(error, match="99"):
        book(session, T0, **overrides)
    with Session(engine) as session:
        assert session.scalar(select(func.count(Appointment.id))) == 0


def test_only_active_statuses_and_naive_times_can_be_booked() -> None:
    with pytest.raises(ValueError, match="'confirmed' or 'pending'"):
        book_appointment(Session(), barber_id=1, service_id=1, start=T0, status="completed")
    with pytest.raises(ValueError, match="naive datetime"):
        aware = T0.replace(tzinfo=dt.timezone.utc)
        book_appointment(Session(), barber_id=1, service_id=1, start=aware)


def test_postgresql_without_the_constraint_refuses_to_book(pg_booking_engine: Engine) -> None:
    # A new engine: the constraint check is remembered per engine once it succeeded.
    url = pg_booking_engine.url.render_as_string(hide_password=False)
    engine = prepare(create_engine(url))
    try:
        with Session(engine) as session, pytest.raises(BookingSetupError, match="btree_gist"):
            book(session, T0)
    finally:
        engine.dispose()


def test_sqlite_in_autocommit_mode_refuses_to_book(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'a.db'}", isolation_level="AUTOCOMMIT")
    Base.metadata.create_all(engine)
    prepare(engine)
    try:
        with Session(engine) as session, pytest.raises(BookingSetupError, match="autocommit"):
            book(session, T0)
    finally:
        engine.dispose()

