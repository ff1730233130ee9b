"""SUPPLEMENT: the indexes the report's own flows need and its list leaves out.

Each statement is the access path of an optimized flow in ``sqlaopt.booking.optimized``; with
``REPORT + SUPPLEMENT`` built, the plan uses the supplement's index for it (PostgreSQL with
``enable_seqscan = off`` on this small sample, see ``sample_with_indexes``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, Select, func, select

from sqlaopt.booking import SampleSize
from sqlaopt.booking.models import Appointment, Client, Payment, UserOrganization
from sqlaopt.explain import assert_uses_index
from sqlaopt.indexes import REPORT, SUPPLEMENT, Spec, ddl

from .conftest import sample_with_indexes

SIZE = SampleSize(organizations=3, barbers=12, clients=200, appointments=1500)
DAY = dt.datetime(2025, 7, 3)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest) -> Iterator[Connection]:
    yield from sample_with_indexes(request, REPORT + SUPPLEMENT, SIZE)


def barber_day() -> Select[tuple[Appointment]]:
    """Daily schedule: one barber's appointments of one day, every status."""
    return select(Appointment).where(
        Appointment.barber_id == 3,
        Appointment.start_time >= DAY,
        Appointment.start_time < DAY + dt.timedelta(days=1),
    )


def barber_month_metrics() -> Select[tuple[int]]:
    """Analytics dashboard: a barber's appointment count for a month, every status."""
    return select(func.count(Appointment.id)).where(
        Appointment.barber_id == 3,
        Appointment.start_time >= dt.datetime(2025, 7, 1),
        Appointment.start_time < dt.datetime(2025, 8, 1),
    )


PATTERNS = {
    "daily schedule": ("idx_appointments_barber_start", barber_day()),
    "analytics dashboard, appointments": ("idx_appointments_barber_start", barber_month_metrics()),
    "analytics dashboard, clients": (
        "idx_clients_preferred_barber",
        select(func.count(Client.id)).where(Client.preferred_barber_id == 3),
    ),
    "user dashboard, memberships": (
        "idx_user_organizations_user",
        select(UserOrganization).where(UserOrganization.user_id == 7),
    ),
    "user dashboard, upcoming": (
        "idx_appointments_user_start",
        select(Appointment).where(Appointment.user_id == 7, Appointment.start_time >= DAY)
        .order_by(Appointment.start_time).limit(5),
    ),
    "user dashboard, payments": (
        "idx_payments_user_created",
        select(Payment).where(Payment.user_id == 7)
        .order_by(Payment.created_at.desc()).limit(5),
    ),
}


@pytest.mark.parametrize("pattern", PATTERNS)
def test_each_flow_access_path_uses_its_index(db: Connection, pattern: str) -> None:
    index, statement = PATTERNS[pattern]
    assert_uses_index(db, statement, index)


def test_supplement_is_separate_from_the_report_and_combines_with_it() -> None:
    assert not set(REPORT.names) & set(SUPPLEMENT.names)
    combined = REPORT + SUPPLEMENT
    assert isinstance(combined, Spec) and combined.names == REPORT.names + SUPPLEMENT.names
    assert all(entry.note.startswith("Not in the report") for entry in SUPPLEMENT)
    assert len(ddl(SUPPLEMENT, "sqlite")) == len(SUPPLEMENT)
