"""Naive and optimized flows return equal results on hypothesis-generated data.

Runs on SQLite and PostgreSQL. Each example replaces the whole data set, then calls both
versions of one flow with the same drawn arguments on fresh sessions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from sqlaopt.booking import DashboardMetrics, UserDashboard, naive, optimized
from sqlaopt.booking.models import Base

from .conftest import fresh_schema, replace_rows, sqlite_engine
from .strategies import (
    FIRST_DAY,
    Rows,
    barber_day_of,
    barber_of,
    datasets,
    interval_near,
    on_grid,
    quarter_hours,
    span_of,
    user_of,
)

# The naive flows are N+1 by design, and hypothesis repeats every call site once per example:
# the detector would rightly fail these tests, which are about results, not statement counts.
pytestmark = pytest.mark.nplusone(mode="off")

EXAMPLES = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """An empty reference schema, without the exclusion constraint (data may overlap)."""
    if request.param == "sqlite":
        engine = sqlite_engine()
        Base.metadata.create_all(engine)
        yield engine
        engine.dispose()
    else:
        engine = request.getfixturevalue("pg_booking_engine")
        fresh_schema(engine)
        yield engine


def same_result(engine: Engine, rows: Rows, flow: str, *args: Any) -> Any:
    """Load ``rows``, run both versions of ``flow``; assert they agree and return the result."""
    replace_rows(engine, rows)
    results = []
    for version in (naive, optimized):
        function: Callable[..., Any] = getattr(version, flow)
        with Session(engine) as session:
            results.append(function(session, *args))
    assert results[0] == results[1], f"{flow}{args}: naive {results[0]} != optimized {results[1]}"
    event(f"{flow} result: {_shape(results[1])}")  # --hypothesis-show-statistics: coverage
    return results[1]


def _shape(result: Any) -> str:
    if isinstance(result, tuple):
        return "empty" if not result else "1 item" if len(result) == 1 else "several items"
    if isinstance(result, UserDashboard):
        return f"upcoming {bool(result.upcoming)}, payments {bool(result.recent_payments)}"
    if isinstance(result, DashboardMetrics):
        return f"appointments {result.total_appointments > 0}, revenue {result.total_revenue > 0}"
    return repr(result)


@EXAMPLES
@given(rows=datasets(), data=st.data())
def test_analytics_dashboard(engine: Engine, rows: Rows, data: st.DataObject) -> None:
    barber, _ = data.draw(barber_day_of(rows))
    start, end = data.draw(span_of(rows))
    same_result(engine, rows, "analytics_dashboard", barber, start, end)


@EXAMPLES
@given(rows=datasets(), data=st.data())
def test_has_conflict(engine: Engine, rows: Rows, data: st.DataObject) -> None:
    barber, start, end = data.draw(interval_near(rows))
    same_result(engine, rows, "has_conflict", barber, start, end)


@EXAMPLES
@given(
    rows=datasets(),
    data=st.data(),
    duration=st.sampled_from([15, 30, 45]),
    step=st.sampled_from([30, 60]),
)
def test_available_slots(
    engine: Engine, rows: Rows, data: st.DataObject, duration: int, step: int
) -> None:
    windows = [w for w in rows["barber_availability"] if w["is_available"]]
    if windows and data.draw(st.sampled_from([True, True, True, False])):  # a window's day
        window = data.draw(st.sampled_from(windows))
        barber = window["user_id"]
        day = FIRST_DAY + dt.timedelta((window["day_of_week"] - FIRST_DAY.weekday()) % 7)
    else:
        barber, day = data.draw(barber_day_of(rows))
    same_result(
        engine, rows, "available_slots", barber, day,
        dt.timedelta(minutes=duration), dt.timedelta(minutes=step),
    )


@EXAMPLES
@given(rows=datasets(), data=st.data())
def test_daily_schedule(engine: Engine, rows: Rows, data: st.DataObject) -> None:
    barber, day = data.draw(barber_day_of(rows))
    same_result(engine, rows, "daily_schedule", barber, day)


@EXAMPLES
@given(rows=datasets(), data=st.data(), unit=st.sampled_from(["day", "week", "month"]))
def test_revenue_report(engine: Engine, rows: Rows, data: st.DataObject, unit: str) -> None:
    start, end = data.draw(span_of(rows))
    barber = data.draw(st.none() | barber_of(rows))
    same_result(engine, rows, "revenue_report", unit, start, end, barber)


@EXAMPLES
@given(rows=datasets(), data=st.data(), now=quarter_hours, limit=st.integers(1, 4))
def test_user_dashboard(
    engine: Engine, rows: Rows, data: st.DataObject, now: int, limit: int
) -> None:
    user = data.draw(user_of(rows))
    same_result(engine, rows, "user_dashboard", user, on_grid(now // 2), limit)
