"""Each optimized flow runs a fixed number of statements, whatever the data size, and trips no
N+1 detection; the naive versions run more, growing with the data."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

import sqlaopt
from sqlaopt.booking import FLOWS, flow_arguments, generate, naive, optimized
from sqlaopt.booking.models import Base

from .conftest import fresh_schema, sqlite_engine

EXPECTED = {
    "analytics_dashboard": 1,
    "has_conflict": 1,
    "available_slots": 2,
    "daily_schedule": 1,
    "revenue_report": 1,
    "user_dashboard": 3,
}


@pytest.fixture(scope="module", params=["sqlite-300", "sqlite-3000", "postgresql-300",
                                        "postgresql-3000"])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """Generated data of two sizes on both backends."""
    backend, size = request.param.split("-")
    if backend == "sqlite":
        engine = sqlite_engine()
        Base.metadata.create_all(engine)
    else:
        engine = request.getfixturevalue("pg_booking_engine")
        fresh_schema(engine)
    generate(engine, appointments=int(size), seed=7)
    yield engine
    if backend == "sqlite":
        engine.dispose()


def run(engine: Engine, function: Any, arguments: dict[str, Any]) -> tuple[int, Any, int]:
    """(statements, result, detections) of one call on a fresh session."""
    with (
        Session(engine) as session,
        sqlaopt.detect("record") as report,
        sqlaopt.count_queries() as queries,
    ):
        result = function(session, **arguments)
    return queries.count, result, len(report.detections)


def test_the_documented_counts_are_the_asserted_ones() -> None:
    assert optimized.STATEMENTS == EXPECTED
    assert {flow.name: flow.statements for flow in FLOWS} == EXPECTED


@pytest.mark.parametrize("flow", FLOWS, ids=lambda f: f.name)
def test_optimized_flow_runs_a_fixed_number_of_statements(engine: Engine, flow: Any) -> None:
    with Session(engine) as session:
        arguments = flow_arguments(session)[flow.name]
    count, result, detections = run(engine, flow.optimized, arguments)
    assert count == EXPECTED[flow.name]
    assert detections == 0
    # A second call on a session that already holds the objects runs the same statements.
    with Session(engine) as session:
        flow.optimized(session, **arguments)
        with sqlaopt.count_queries() as again:
            assert flow.optimized(session, **arguments) == result
    assert again.count == EXPECTED[flow.name]


@pytest.mark.nplusone(mode="off")  # the naive flows are N+1 on purpose
@pytest.mark.parametrize("flow", FLOWS, ids=lambda f: f.name)
def test_naive_flow_returns_the_same_with_more_statements(engine: Engine, flow: Any) -> None:
    with Session(engine) as session:
        arguments = flow_arguments(session)[flow.name]
    naive_count, naive_result, _ = run(engine, flow.naive, arguments)
    _, optimized_result, _ = run(engine, flow.optimized, arguments)
    assert naive_result == optimized_result
    if flow.name in ("has_conflict", "revenue_report"):
        # One statement either way; naive costs rows (every conflict, every payment) and an
        # unindexable OR, not statements.
        assert naive_count == 1
    else:
        assert naive_count > EXPECTED[flow.name]


def test_naive_counts_grow_with_the_rows_read(engine: Engine) -> None:
    """The naive daily schedule lazy loads one payment per appointment and one client per
    client not yet in the session: at least one statement per appointment of the day."""
    with Session(engine) as session:
        arguments = flow_arguments(session)["daily_schedule"]
        appointments = len(optimized.daily_schedule(session, **arguments))
    with sqlaopt.detect("off"), Session(engine) as session, sqlaopt.count_queries() as queries:
        naive.daily_schedule(session, **arguments)
    assert appointments > 1
    assert queries.count >= 1 + appointments


@pytest.mark.parametrize(
    ("flow", "literal"),
    [("has_conflict", "IN ('confirmed', 'pending')"),
     ("user_dashboard", "IN ('confirmed', 'pending')"),
     ("available_slots", "IN ('confirmed', 'pending')"),
     ("revenue_report", "payments.status = 'completed'")],
)
def test_partial_index_predicates_are_inlined(engine: Engine, flow: str, literal: str) -> None:
    """A generic prepared plan cannot prove ``status = $1`` implies a partial index's
    ``WHERE``; the statuses are rendered into the SQL text instead."""
    with Session(engine) as session:
        arguments = flow_arguments(session)[flow]
        with sqlaopt.count_queries() as queries:
            getattr(optimized, flow)(session, **arguments)
    assert any(literal in statement for statement in queries.statements), queries.statements
