"""Bad input to ``book_appointment``: a BookingError subclass naming what was wrong, nothing
written. Explicit cases on SQLite, PostgreSQL and MariaDB; a hypothesis property on SQLite."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from sqlaopt import SqlaoptError
from sqlaopt.booking import (
    DURATION_MINUTES,
    BookingError,
    BookingInputError,
    BookingNotFoundError,
    NotABarberError,
    book_appointment,
)
from sqlaopt.booking.models import Appointment

from .conftest import fresh_schema, replace_rows, sqlite_engine
from .race import T0
from .test_book_appointment import ROWS

LONGEST = DURATION_MINUTES.stop - 1
SERVICES = [
    *ROWS["services"],
    {"id": 3, "organization_id": 1, "name": "Nothing", "base_price": Decimal(1),
     "duration_minutes": 0},
    {"id": 4, "organization_id": 1, "name": "Forever", "base_price": Decimal(1),
     "duration_minutes": 2**31 - 1},
    {"id": 5, "organization_id": 1, "name": "Longest", "base_price": Decimal(1),
     "duration_minutes": LONGEST},
]


def with_rows(engine: Engine) -> Engine:
    fresh_schema(engine)
    replace_rows(engine, {**ROWS, "services": SERVICES})
    return engine


@pytest.fixture(scope="module", params=["sqlite", "postgresql", "mariadb"])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    if request.param == "sqlite":
        engine = sqlite_engine()
        yield with_rows(engine)
        engine.dispose()
    else:
        name = "pg_booking_engine" if request.param == "postgresql" else "mariadb_booking_engine"
        yield with_rows(request.getfixturevalue(name))


def appointments(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.scalar(select(func.count(Appointment.id))) or 0)


GOOD: dict[str, Any] = {"barber_id": 1, "service_id": 1, "start": T0, "client_id": 1}

CASES = [
    ({"start": T0.date()}, BookingInputError, "start must be a datetime.datetime"),
    ({"start": "2025-09-29 10:00"}, BookingInputError, "not '2025-09-29 10:00'"),
    ({"start": T0.replace(tzinfo=dt.timezone.utc)}, BookingInputError, "naive datetime"),
    ({"barber_id": "1"}, BookingInputError, "barber_id must be an int, not str '1'"),
    ({"barber_id": True}, BookingInputError, "barber_id must be an int, not bool"),
    ({"service_id": 1.0}, BookingInputError, "service_id must be an int, not float"),
    ({"client_id": "1"}, BookingInputError, "client_id must be an int"),
    ({"status": "completed"}, BookingInputError, "'confirmed' or 'pending'"),
    ({"barber_id": 3}, NotABarberError, "user 3 is a 'client', not a 'barber'"),
    ({"barber_id": 99}, BookingNotFoundError, "no users row with id 99"),
    ({"service_id": 99}, BookingNotFoundError, "no services row with id 99"),
    ({"client_id": 99}, BookingNotFoundError, "no clients row with id 99"),
    ({"service_id": 3}, BookingInputError, f"lasts 0 minutes; a booking lasts 1 to {LONGEST}"),
    ({"service_id": 4}, BookingInputError, "lasts 2147483647 minutes"),
    ({"start": dt.datetime(9999, 12, 31, 23, 50)}, BookingInputError, "after year 9999"),
]


@pytest.mark.parametrize(("change", "error", "message"), CASES)
def test_bad_input_is_a_booking_error_and_writes_nothing(
    engine: Engine, change: dict[str, Any], error: type[BookingError], message: str
) -> None:
    with Session(engine) as session:
        with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")) as raised:
            book_appointment(session, **(GOOD | change))
        session.commit()
    assert isinstance(raised.value, BookingError) and isinstance(raised.value, SqlaoptError)
    assert appointments(engine) == 0


def test_the_longest_service_books(engine: Engine) -> None:
    with Session(engine) as session:
        booked = book_appointment(session, **(GOOD | {"service_id": 5}))
        assert booked.end_time - booked.start_time == dt.timedelta(minutes=LONGEST)
        session.rollback()  # the other tests expect no appointments


def test_errors_stay_lookup_and_value_errors() -> None:
    """Callers that caught LookupError/ValueError before keep working."""
    assert issubclass(BookingNotFoundError, LookupError)
    assert issubclass(BookingInputError, ValueError) and issubclass(NotABarberError, ValueError)


anything = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 100), st.floats(allow_nan=False), st.text(max_size=3),
    st.dates(), st.datetimes(timezones=st.just(dt.timezone.utc) | st.none()),
)


@pytest.fixture(scope="module")
def sqlite_rows() -> Iterator[Engine]:
    engine = with_rows(sqlite_engine())
    yield engine
    engine.dispose()


@pytest.mark.nplusone(mode="off")  # each example runs the same statements again, on purpose
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(
    barber_id=st.integers(0, 4) | anything,
    service_id=st.integers(0, 6) | anything,
    start=st.datetimes(min_value=dt.datetime(9999, 12, 30)) | st.just(T0) | anything,
    client_id=st.integers(0, 2) | anything,
    status=st.sampled_from(["confirmed", "pending", "completed"]) | anything,
)
def test_any_input_books_or_raises_a_booking_error(
    sqlite_rows: Engine, barber_id: Any, service_id: Any, start: Any, client_id: Any, status: Any
) -> None:
    """Whatever the arguments: a booking, or a BookingError and nothing written (each example
    in a transaction rolled back afterwards)."""
    with Session(sqlite_rows) as session:
        try:
            book_appointment(session, barber_id=barber_id, service_id=service_id,
                             start=start, client_id=client_id, status=status)
        except BookingError:
            written = 0
        else:
            written = 1
        assert session.scalar(select(func.count(Appointment.id))) == written
        session.rollback()
