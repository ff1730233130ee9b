"""Each query pattern of the report is served by the index the report made for it.

The statements are built with SQLAlchemy from the reference models; ``assert_uses_index``
reads the database's own plan, with every REPORT index present, so each test also shows that
no other index of the spec serves the pattern better. PostgreSQL: the sample (1,500
appointments) is analysed, but the tables are still small enough that a sequential scan is the
cheapest plan for most of these queries, so the tests ``SET enable_seqscan = off``: the
question becomes "which index serves this query best".

Partial indexes serve only queries whose WHERE implies the index predicate: the second half
shows, per index, predicates that do not match.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal

import pytest
from sqlalchemy import Connection, Select, func, select, text

from sqlaopt.booking import SampleSize
from sqlaopt.booking.models import AIInsightCache, Appointment, Client, Payment, User
from sqlaopt.explain import IndexNotUsedError, assert_uses_index, indexes_used
from sqlaopt.indexes import REPORT, indexed_date, indexed_date_trunc

from .conftest import sample_with_indexes

# The sample's appointments run from 2025-07-01 to 07-05, one ISO week: the values below
# select a small part of it, as the report's dashboards do on a large table.
DAY = dt.date(2025, 7, 5)
WEEK = dt.datetime(2025, 7, 7)  # the Monday after the sample (a week with few rows)
START = dt.datetime(2025, 7, 5, 8, 0)
END = dt.datetime(2025, 7, 5, 9, 0)
SINCE = dt.datetime(2025, 7, 5, tzinfo=dt.timezone.utc)
SIZE = SampleSize(organizations=3, barbers=12, clients=200, appointments=1500)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest) -> Iterator[Connection]:
    """A connection to the sample data with every REPORT index built."""
    yield from sample_with_indexes(request, REPORT, SIZE)


def completed_revenue_since() -> Select[tuple[Decimal, int]]:
    return select(func.sum(Payment.amount), func.count(Payment.id)).where(
        Payment.status == "completed", Payment.created_at >= SINCE
    )


# (index, statement): the report's query patterns, as SQLAlchemy statements.
PATTERNS = {
    "analytics by status and date (1.1)": (
        "idx_payments_analytics_optimized",
        completed_revenue_since(),
    ),
    "daily analytics (1.1)": (
        "idx_payments_daily_analytics",
        select(func.sum(Payment.amount)).where(
            Payment.status == "completed", indexed_date(Payment.created_at) == DAY
        ),
    ),
    "weekly analytics (1.1)": (
        "idx_payments_weekly_analytics",
        select(func.sum(Payment.amount)).where(
            Payment.status == "completed",
            indexed_date_trunc("week", Payment.created_at) == WEEK,
        ),
    ),
    "conflict detection for a barber and time range (1.2)": (
        "idx_appointments_conflict_detection",
        select(Appointment.id).where(
            Appointment.barber_id == 1,
            Appointment.status.in_(["confirmed", "pending"]),
            Appointment.start_time < END,
            Appointment.end_time > START,
        ),
    ),
    "organization filtering: appointments (2.1)": (
        "idx_appointments_org_status_date",
        select(func.count())
        .select_from(Appointment)
        .where(
            Appointment.organization_id == 1,
            Appointment.status == "completed",
            Appointment.start_time >= START,
        ),
    ),
    "organization filtering: payments (2.1)": (
        "idx_payments_org_status_created",
        select(func.sum(Payment.amount)).where(
            Payment.organization_id == 1,
            Payment.status == "pending",
            Payment.created_at >= SINCE,
        ),
    ),
    "organization filtering: users (2.1)": (
        "idx_users_org_role_active",
        select(User.id).where(
            User.organization_id == 1,
            User.unified_role == "barber",
            User.is_active.is_(True),
        ),
    ),
    "revenue tracking (2.2)": (
        "idx_appointments_revenue_tracking",
        select(func.sum(Appointment.price)).where(
            Appointment.barber_id == 2,
            Appointment.status == "completed",
            Appointment.start_time >= START,
        ),
    ),
    "commission calculations (2.2)": (
        "idx_payments_commission_calculations",
        select(func.sum(Payment.amount * Payment.commission_rate)).where(
            Payment.barber_id == 2,
            Payment.status == "completed",
            Payment.created_at >= SINCE,
        ),
    ),
    "LTV tracking (2.2)": (
        "idx_users_ltv_tracking",
        select(User.id, User.lifetime_value)
        .where(User.unified_role == "client", User.lifetime_value > 500)
        .order_by(User.lifetime_value.desc()),
    ),
    "daily revenue report (2.3)": (
        "idx_appointments_daily_revenue_report",
        select(func.sum(Appointment.price)).where(
            Appointment.status == "completed", indexed_date(Appointment.start_time) == DAY
        ),
    ),
    "client retention (2.3)": (
        "idx_clients_retention_analysis",
        select(func.count(), func.avg(Client.total_spent)).where(
            Client.user_id == 5, Client.last_visit >= SINCE
        ),
    ),
    "AI insight lookup (2.3)": (
        "idx_ai_insights_cache_lookup",
        select(AIInsightCache.payload).where(
            AIInsightCache.user_id == 1,
            AIInsightCache.insight_type == "revenue_trend",
        ),
    ),
}


@pytest.mark.parametrize("pattern", list(PATTERNS))
def test_each_report_pattern_uses_its_index(db: Connection, pattern: str) -> None:
    index, statement = PATTERNS[pattern]
    assert_uses_index(db, statement, index)


# Predicates that do NOT match a partial index: the index cannot be used for them.
NOT_MATCHING = {
    "another status value": (
        "idx_payments_analytics_optimized",
        select(func.sum(Payment.amount)).where(
            Payment.status == "pending", Payment.created_at >= SINCE
        ),
    ),
    "no status filter at all": (
        "idx_payments_analytics_optimized",
        select(func.sum(Payment.amount)).where(Payment.created_at >= SINCE),
    ),
    "the report's upper-case role": (
        "idx_users_ltv_tracking",
        select(User.id).where(User.unified_role == "CLIENT", User.lifetime_value > 500),
    ),
    "a status outside the IN list": (
        "idx_appointments_conflict_detection",
        select(Appointment.id).where(
            Appointment.barber_id == 1,
            Appointment.status == "completed",
            Appointment.start_time < END,
        ),
    ),
    "date() instead of the indexed UTC expression (timestamptz)": (
        "idx_payments_daily_analytics",
        select(func.sum(Payment.amount)).where(
            Payment.status == "completed", func.date(Payment.created_at) == DAY
        ),
    ),
}


@pytest.mark.parametrize("case", list(NOT_MATCHING))
def test_predicates_that_do_not_match_the_partial_index(db: Connection, case: str) -> None:
    index, statement = NOT_MATCHING[case]
    if db.dialect.name == "sqlite" and "UTC" in case:
        pytest.skip("on SQLite the indexed form is date(created_at) itself")
    assert index not in indexes_used(db, statement)
    with pytest.raises(IndexNotUsedError):
        assert_uses_index(db, statement, index)


def test_an_in_list_of_one_value_matches_on_postgresql_but_not_on_sqlite(db: Connection) -> None:
    statement = select(func.sum(Payment.amount)).where(
        Payment.status.in_(["completed"]), Payment.created_at >= SINCE
    )
    used = "idx_payments_analytics_optimized" in indexes_used(db, statement)
    # PostgreSQL rewrites IN ('completed') as = 'completed'; SQLite does not prove the predicate.
    assert used == (db.dialect.name == "postgresql")


def test_a_generic_plan_cannot_use_a_partial_index(db: Connection) -> None:
    """status = $1 in a prepared statement's generic plan proves nothing about the value."""
    if db.dialect.name != "postgresql":
        pytest.skip("PostgreSQL prepared statements")
    db.execute(
        text(
            "PREPARE revenue(text) AS SELECT sum(amount) FROM payments "
            "WHERE status = $1 AND created_at >= '2025-07-05'"
        )
    )
    try:
        db.execute(text("SET plan_cache_mode = force_generic_plan"))
        assert "idx_payments_analytics_optimized" not in indexes_used(
            db, "EXECUTE revenue('completed')"
        )
        db.execute(text("SET plan_cache_mode = force_custom_plan"))
        assert "idx_payments_analytics_optimized" in indexes_used(
            db, "EXECUTE revenue('completed')"
        )
    finally:
        db.execute(text("RESET plan_cache_mode"))
        db.execute(text("DEALLOCATE revenue"))
