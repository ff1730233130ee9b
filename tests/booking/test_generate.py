"""``generate``: deterministic, the same rows on every database, realistic, and fast enough."""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from sqlaopt.booking import Generated, GenerateError, book_appointment, generate
from sqlaopt.booking.models import (
    Appointment,
    BarberAvailability,
    Base,
    Client,
    Payment,
    User,
)

from .conftest import add_exclusion_constraint, fresh_schema, sqlite_engine

UTC = dt.timezone.utc


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, ordered, with values normalised across databases."""

    def normal(value: Any) -> Any:
        if isinstance(value, dt.datetime) and value.tzinfo is not None:
            return value.astimezone(UTC).replace(tzinfo=None)
        if isinstance(value, Decimal):
            return value.quantize(Decimal("0.0001"))
        if isinstance(value, int) and not isinstance(value, bool) and value in (0, 1):
            return value  # MariaDB returns booleans as 0/1
        return value

    with engine.connect() as conn:
        return {
            table.name: [
                tuple(normal(v) for v in row)
                for row in conn.execute(select(table).order_by(*table.primary_key.columns))
            ]
            for table in Base.metadata.sorted_tables
        }


@pytest.fixture(scope="module")
def shaped() -> Iterator[tuple[Engine, Generated]]:
    """5,000 appointments on SQLite, for the shape checks."""
    engine = sqlite_engine()
    result = generate(engine, appointments=5_000, seed=11)
    yield engine, result
    engine.dispose()


@pytest.mark.nplusone(mode="off")  # the same set-up statements run once per database
def test_same_rows_on_sqlite_postgresql_and_mariadb(
    pg_booking_engine: Engine, mariadb_booking_engine: Engine
) -> None:
    engines = [sqlite_engine(), pg_booking_engine, mariadb_booking_engine]
    results = []
    for engine in engines:
        fresh_schema(engine)
        results.append(generate(engine, appointments=400, seed=5))
    snapshots = [snapshot(engine) for engine in engines]
    assert snapshots[0] == snapshots[1] == snapshots[2]
    assert {r.payments for r in results} == {len(snapshots[0]["payments"])}
    engines[0].dispose()


@pytest.mark.nplusone(mode="off")  # two loads run the same set-up statements
def test_seed_changes_the_rows() -> None:
    one, two = sqlite_engine(), sqlite_engine()
    generate(one, appointments=200, seed=1)
    generate(two, appointments=200, seed=2)
    assert snapshot(one)["appointments"] != snapshot(two)["appointments"]


def test_counts_and_calendar(shaped: tuple[Engine, Generated]) -> None:
    engine, result = shaped
    counts = {name: len(rows) for name, rows in snapshot(engine).items()}
    assert counts["appointments"] == result.appointments == 5_000
    assert counts["payments"] == result.payments
    assert counts["clients"] == result.clients and counts["services"] == result.services
    assert result.barbers == 2 and result.organizations == 1
    assert result.first_day < result.today <= result.last_day
    assert result.seconds > 0


def test_85_percent_completed_each_with_its_payment(shaped: tuple[Engine, Generated]) -> None:
    engine, result = shaped
    with Session(engine) as session:
        appointments = session.scalars(select(Appointment)).all()
        payments = {p.appointment_id: p for p in session.scalars(select(Payment))}
    completed = [a for a in appointments if a.status == "completed"]
    assert 0.82 <= len(completed) / len(appointments) <= 0.88
    assert set(payments) == {a.id for a in completed}
    for a in completed:
        payment = payments[a.id]
        assert (payment.amount, payment.barber_id, payment.status) == (a.price, a.barber_id,
                                                                        "completed")
        assert payment.created_at.replace(tzinfo=None) == a.end_time  # SQLite: naive UTC
    future = {a.status for a in appointments if a.start_time.date() >= result.today}
    past = {a.status for a in appointments if a.start_time.date() < result.today}
    assert future == {"confirmed", "pending"}
    assert past == {"completed", "cancelled", "no_show"}


def test_no_overlaps_inside_opening_hours_with_weekend_peaks(
    shaped: tuple[Engine, Generated],
) -> None:
    engine, _ = shaped
    with Session(engine) as session:
        appointments = session.scalars(
            select(Appointment).order_by(Appointment.barber_id, Appointment.start_time)
        ).all()
        hours = {
            (w.user_id, w.day_of_week): w for w in session.scalars(select(BarberAvailability))
        }
    for _, mine in itertools.groupby(appointments, key=lambda a: a.barber_id):
        for earlier, later in itertools.pairwise(mine):
            assert earlier.end_time <= later.start_time
    for a in appointments:
        window = hours[(a.barber_id, a.start_time.weekday())]
        assert window.is_available
        assert window.start_time <= a.start_time.time() and a.end_time.time() <= window.end_time
        assert a.end_time - a.start_time == dt.timedelta(minutes=a.duration_minutes)
    per_weekday = Counter(a.start_time.weekday() for a in appointments)
    assert per_weekday[5] == max(per_weekday.values())  # Saturday
    assert per_weekday[5] > 1.5 * per_weekday[1]  # busier than a Tuesday


def test_client_totals_follow_their_payments(shaped: tuple[Engine, Generated]) -> None:
    engine, _ = shaped
    with Session(engine) as session:
        spent: defaultdict[int, Decimal] = defaultdict(Decimal)
        last: dict[int, dt.datetime] = {}
        for appointment, payment in session.execute(
            select(Appointment, Payment).join(Payment, Payment.appointment_id == Appointment.id)
        ):
            spent[appointment.client_id] += payment.amount
            last[appointment.client_id] = max(last.get(appointment.client_id, payment.created_at),
                                              payment.created_at)
        clients = session.scalars(select(Client)).all()
        users = {u.id: u for u in session.scalars(select(User))}
    assert any(spent.values())
    for client in clients:
        assert client.total_spent == spent.get(client.id, Decimal("0.00"))
        assert client.last_visit == last.get(client.id)
        assert users[client.user_id].lifetime_value == client.total_spent
        assert users[client.preferred_barber_id].unified_role == "barber"


def test_postgresql_load_keeps_the_constraint_and_the_sequences_usable(
    pg_booking_engine: Engine,
) -> None:
    fresh_schema(pg_booking_engine)
    result = generate(pg_booking_engine, appointments=2_000, seed=3)
    add_exclusion_constraint(pg_booking_engine)  # validates every existing row
    with Session(pg_booking_engine) as session:
        after_last = dt.datetime.combine(result.last_day + dt.timedelta(days=7), dt.time(10))
        booked = book_appointment(session, barber_id=1, service_id=1, start=after_last)
        session.commit()
        assert booked.id == result.appointments + 1  # the id sequence moved past the load
    with pg_booking_engine.connect() as conn:
        analyzed = conn.scalar(text(
            "SELECT count(*) FROM pg_stat_user_tables WHERE relname IN ('appointments', "
            "'payments') AND (last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL)"
        ))
    assert analyzed == 2


@pytest.mark.nplusone(mode="off")  # several loads in one test
def test_refuses_tables_that_hold_rows() -> None:
    engine = sqlite_engine()
    generate(engine, appointments=10)
    with pytest.raises(GenerateError, match="'users' already holds rows"):
        generate(engine, appointments=10)


def test_inside_the_callers_transaction() -> None:
    engine = sqlite_engine()
    with engine.connect() as conn:
        generate(conn, appointments=50)
        conn.rollback()
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM appointments")) == 0


@pytest.mark.nplusone(mode="off")  # several loads in one test
def test_zero_and_negative_sizes() -> None:
    engine = sqlite_engine()
    assert generate(engine, appointments=0).payments == 0
    with pytest.raises(ValueError, match=">= 0"):
        generate(engine, appointments=-1)


@pytest.mark.nplusone(mode="off")  # several loads in one test
def test_progress_bar_only_when_asked_or_on_a_terminal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    generate(sqlite_engine(), appointments=100)  # stderr is captured: not a terminal
    assert capsys.readouterr().err == ""
    generate(sqlite_engine(), appointments=100, progress=True)
    err = capsys.readouterr().err
    assert err.startswith("\rgenerating [")
    assert re.search(r"100%  100/100 appointments  \d+s\n$", err), err
