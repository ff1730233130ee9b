"""no_double_booking on PostgreSQL: the database itself refuses overlapping bookings."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from decimal import Decimal

import pytest
from sqlalchemy import Engine, MetaData, Table, func, select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.pool import NullPool

from sqlaopt.indexes import apply, is_exclusion_conflict

from .conftest import fill_sample, in_schema, reference_copy

DAY = dt.datetime(2025, 8, 1)  # after the sample data: the barber's calendar is empty
BARBER = 1


@pytest.fixture
def booking(pg_engine: Engine) -> Iterator[tuple[Engine, Table]]:
    """The reference schema with REPORT applied (create_all builds the constraint), the
    sample data, and an engine that opens a real connection per thread."""
    metadata: MetaData = reference_copy()
    apply(metadata)
    metadata.create_all(pg_engine)
    fill_sample(pg_engine)
    url = pg_engine.url.render_as_string(hide_password=False)
    threaded = in_schema(url, _schema(pg_engine), poolclass=NullPool)
    yield threaded, metadata.tables["appointments"]
    threaded.dispose()


def _schema(engine: Engine) -> str:
    with engine.connect() as conn:
        return str(conn.exec_driver_sql("SELECT current_schema()").scalar())


def row(
    number: int, start: dt.datetime, minutes: int, status: str = "confirmed", barber: int = BARBER
) -> dict[str, object]:
    return {
        "id": 10_000 + number,
        "barber_id": barber,
        "service_name": "Haircut",
        "start_time": start,
        "end_time": start + dt.timedelta(minutes=minutes),
        "duration_minutes": minutes,
        "status": status,
        "price": Decimal("35.00"),
    }


def test_twenty_concurrent_overlapping_bookings_exactly_one_commits(
    booking: tuple[Engine, Table],
) -> None:
    """All twenty insert at once. PostgreSQL refuses the losers in one of two ways: the
    exclusion violation naming the constraint, or, when two losers wait on each other's
    uncommitted row, a deadlock "while checking exclusion constraint" (measured: about one
    in five). is_exclusion_conflict() recognises both; a booking flow must too."""
    engine, appointments = booking
    barrier = threading.Barrier(20)
    outcomes: dict[int, BaseException | None] = {}

    def book(number: int) -> None:
        # Every slot overlaps every other: starts 10:00..10:19, each 30 minutes long.
        start = DAY.replace(hour=10) + dt.timedelta(minutes=number)
        status = "pending" if number % 2 else "confirmed"
        with engine.connect() as conn:
            barrier.wait()
            try:
                conn.execute(appointments.insert(), row(number, start, 30, status))
                conn.commit()
                outcomes[number] = None
            except DBAPIError as error:
                outcomes[number] = error

    threads = [threading.Thread(target=book, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(outcomes) == 20
    refused = {n: error for n, error in outcomes.items() if error is not None}
    assert len(refused) == 19  # exactly one committed
    for error in refused.values():
        assert is_exclusion_conflict(error, "no_double_booking"), error
        message = str(error.orig)
        assert (
            'conflicting key value violates exclusion constraint "no_double_booking"' in message
            or "while checking exclusion constraint on tuple" in message
        ), message
    with engine.connect() as conn:
        booked = conn.execute(
            select(func.count())
            .select_from(appointments)
            .where(appointments.c.barber_id == BARBER, appointments.c.start_time >= DAY)
        ).scalar()
    assert booked == 1


def test_is_exclusion_conflict_is_specific(booking: tuple[Engine, Table]) -> None:
    engine, appointments = booking
    with pytest.raises(IntegrityError) as duplicate, engine.begin() as conn:
        conn.execute(appointments.insert(), [row(1, DAY, 30), row(1, DAY.replace(hour=12), 30)])
    assert not is_exclusion_conflict(duplicate.value)  # a primary key clash is something else
    with engine.begin() as conn:
        conn.execute(appointments.insert(), row(2, DAY, 30))
    with pytest.raises(IntegrityError) as overlap, engine.begin() as conn:
        conn.execute(appointments.insert(), row(3, DAY, 30))
    assert is_exclusion_conflict(overlap.value, "no_double_booking")
    assert not is_exclusion_conflict(overlap.value, "another_constraint")
    assert not is_exclusion_conflict(ValueError("no database here"))


def test_back_to_back_cancelled_and_other_barbers_are_allowed(
    booking: tuple[Engine, Table],
) -> None:
    engine, appointments = booking
    ten = DAY.replace(hour=10)
    with engine.begin() as conn:
        conn.execute(
            appointments.insert(),
            [
                row(1, ten, 30),
                row(2, ten + dt.timedelta(minutes=30), 30, "pending"),  # '[)': 10:30 is free
                row(3, ten, 60, "cancelled"),  # outside the constraint's WHERE
                row(4, ten, 30, barber=2),  # another barber
            ],
        )
    with pytest.raises(IntegrityError, match="no_double_booking"), engine.begin() as conn:
        conn.execute(appointments.insert(), row(5, ten + dt.timedelta(minutes=29), 2))
    # Confirming the cancelled one would double-book.
    with engine.begin() as conn, pytest.raises(IntegrityError, match="no_double_booking"):
        conn.execute(
            appointments.update().where(appointments.c.id == 10_003).values(status="confirmed")
        )


class _FakeDriverError(Exception):
    """A driver error as psycopg 3 shapes it (sqlstate plus message), for the rare branch."""

    def __init__(self, sqlstate: str, message: str) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


def test_the_deadlock_form_of_the_conflict_is_recognised() -> None:
    deadlock = _FakeDriverError(
        "40P01",
        "deadlock detected\nCONTEXT:  while checking exclusion constraint on tuple (0,62) "
        'in relation "appointments"',
    )
    assert is_exclusion_conflict(deadlock)
    assert not is_exclusion_conflict(_FakeDriverError("40P01", "deadlock detected"))
    assert not is_exclusion_conflict(_FakeDriverError("23505", "duplicate key"))
