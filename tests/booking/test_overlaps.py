"""``overlaps``: half-open semantics at the edges, how it differs from SQL ``OVERLAPS`` and the
report's three-way ``OR``, and that an index serves it."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, and_, bindparam, literal, or_, select, text
from sqlalchemy.orm import Session

from sqlaopt.booking import optimized
from sqlaopt.booking.models import Appointment, Base
from sqlaopt.sql import IntervalError, overlaps

from .conftest import fresh_schema, sqlite_engine

# Hypothesis runs the same statement once per example, which the detector would report.
pytestmark = pytest.mark.nplusone(mode="off")

T0 = dt.datetime(2025, 9, 29, 9, 0)


def at(minutes: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def evaluate(engine: Engine, predicate: Any) -> bool:
    with engine.connect() as conn:
        return bool(conn.scalar(select(predicate)))


def overlap(engine: Engine, row: tuple[int, int], probe: tuple[int, int]) -> bool:
    """``overlaps`` with the row's interval as SQL values and the probe as Python values."""
    start_col, end_col = literal(at(row[0])), literal(at(row[1]))
    return evaluate(engine, overlaps(start_col, end_col, at(probe[0]), at(probe[1])))


@pytest.fixture(scope="module")
def sqlite() -> Iterator[Engine]:
    engine = sqlite_engine()
    yield engine
    engine.dispose()


# (row interval, probe interval, overlaps?) in minutes after 09:00
EDGES = [
    ((0, 60), (60, 90), False),  # back to back: the row ends when the probe starts
    ((60, 90), (0, 60), False),  # back to back the other way
    ((0, 60), (59, 90), True),  # one minute shared
    ((0, 60), (10, 20), True),  # probe inside the row
    ((10, 20), (0, 60), True),  # row inside the probe
    ((0, 60), (0, 60), True),  # identical
    ((0, 60), (30, 30), True),  # zero-length probe strictly inside
    ((0, 60), (0, 0), False),  # zero-length probe at the row's start
    ((0, 60), (60, 60), False),  # zero-length probe at the row's end
    ((30, 30), (0, 60), True),  # zero-length row strictly inside the probe
    ((0, 0), (0, 60), False),  # zero-length row at the probe's start
    ((30, 30), (30, 30), False),  # two equal instants: an empty interval overlaps nothing
]


@pytest.mark.parametrize(("row", "probe", "expected"), EDGES)
def test_half_open_edges(sqlite: Engine, row: Any, probe: Any, expected: bool) -> None:
    assert overlap(sqlite, row, probe) is expected


def test_renders_two_range_comparisons() -> None:
    sql = str(overlaps(Appointment.start_time, Appointment.end_time, T0, at(30)))
    assert sql == "appointments.start_time < :start_time_1 AND appointments.end_time > :end_time_1"


def test_reversed_python_interval_is_refused() -> None:
    with pytest.raises(IntervalError, match="ends before it starts"):
        overlaps(Appointment.start_time, Appointment.end_time, at(30), at(0))
    assert isinstance(IntervalError("x"), ValueError)


def test_sql_bounds_are_not_checked() -> None:
    """Bounds that are SQL expressions are compared as given; nothing to check in Python."""
    predicate = overlaps(
        Appointment.start_time, Appointment.end_time, bindparam("a"), bindparam("b")
    )
    assert set(predicate.compile().params) == {"a", "b"}


@settings(max_examples=200, deadline=None)
@given(
    row=st.tuples(st.integers(0, 40), st.integers(1, 20)),
    probe=st.tuples(st.integers(0, 40), st.integers(1, 20)),
)
def test_same_as_the_three_way_or_for_positive_lengths(row: Any, probe: Any) -> None:
    """The report's OR-chain and ``overlaps`` agree on every pair of non-empty intervals."""
    (s, n), (ps, pn) = row, probe
    start, end, p_start, p_end = s, s + n, ps, ps + pn
    three_way = (
        (start <= p_start and end > p_start)
        or (start < p_end and end >= p_end)
        or (start >= p_start and end <= p_end)
    )
    assert (start < p_end and end > p_start) is three_way


def test_the_three_way_or_differs_for_empty_intervals(sqlite: Engine) -> None:
    """A zero-length row on the probe's edge is a 'conflict' for the OR-chain, not for us."""
    start_col, end_col = literal(at(0)), literal(at(0))
    p_start, p_end = at(0), at(60)
    three_way = or_(
        and_(start_col <= p_start, end_col > p_start),
        and_(start_col < p_end, end_col >= p_end),
        and_(start_col >= p_start, end_col <= p_end),
    )
    assert evaluate(sqlite, three_way) is True
    assert evaluate(sqlite, overlaps(start_col, end_col, p_start, p_end)) is False


# --- PostgreSQL: SQL OVERLAPS, and index use ---------------------------------------------


@pytest.fixture(scope="module")
def postgres(pg_booking_engine: Engine) -> Engine:
    return pg_booking_engine


def sql_overlaps(engine: Engine, row: tuple[int, int], probe: tuple[int, int]) -> bool:
    with engine.connect() as conn:
        return bool(conn.scalar(
            text("SELECT (CAST(:a AS timestamp), CAST(:b AS timestamp)) OVERLAPS "
                 "(CAST(:c AS timestamp), CAST(:d AS timestamp))"),
            {"a": at(row[0]), "b": at(row[1]), "c": at(probe[0]), "d": at(probe[1])},
        ))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    row=st.tuples(st.integers(0, 40), st.integers(1, 20)),
    probe=st.tuples(st.integers(0, 40), st.integers(1, 20)),
)
def test_agrees_with_sql_overlaps_for_positive_lengths(
    postgres: Engine, row: Any, probe: Any
) -> None:
    row_interval, probe_interval = (row[0], sum(row)), (probe[0], sum(probe))
    assert overlap(postgres, row_interval, probe_interval) is sql_overlaps(
        postgres, row_interval, probe_interval
    )


@pytest.mark.parametrize(
    ("row", "probe", "ours", "theirs"),
    [
        ((0, 60), (0, 0), False, True),  # OVERLAPS: an instant at a period's start is in it
        ((0, 0), (0, 60), False, True),
        ((30, 30), (30, 30), False, True),  # two equal instants overlap for OVERLAPS
        ((0, 60), (90, 30), False, True),  # OVERLAPS swaps reversed ends: (30, 90)
    ],
)
def test_differs_from_sql_overlaps_at_the_edges(
    postgres: Engine, row: Any, probe: Any, ours: bool, theirs: bool
) -> None:
    if probe[0] > probe[1]:
        with pytest.raises(IntervalError):
            overlap(postgres, row, probe)
    else:
        assert overlap(postgres, row, probe) is ours
    assert sql_overlaps(postgres, row, probe) is theirs


CONFLICT_INDEX = (
    "CREATE INDEX ix_appointments_conflict ON appointments "
    "(barber_id, status, start_time, end_time) WHERE status IN ('confirmed', 'pending')"
)


def plan_nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from plan_nodes(child)


def test_postgresql_seeks_the_conflict_index_on_start_time(postgres: Engine) -> None:
    """``start_time < :end`` is an Index Cond (OVERLAPS only got ``barber_id = ...``)."""
    fresh_schema(postgres)
    statement = select(Appointment.id).where(
        optimized.conflict_predicate(7, at(0), at(30))
    )
    with postgres.begin() as conn:
        conn.execute(text(CONFLICT_INDEX))
        conn.execute(text("SET LOCAL enable_seqscan = off"))  # the table is empty
        compiled = statement.compile(conn, compile_kwargs={"literal_binds": True})
        (plan,) = conn.execute(text(f"EXPLAIN (FORMAT JSON) {compiled}")).scalar_one()
    nodes = [n for n in plan_nodes(plan["Plan"]) if "Index Name" in n]
    assert [n["Index Name"] for n in nodes] == ["ix_appointments_conflict"]
    condition = nodes[0]["Index Cond"]
    assert "barber_id = 7" in condition and "start_time <" in condition, json.dumps(plan)


def test_sqlite_seeks_the_conflict_index_on_start_time() -> None:
    engine = sqlite_engine()
    Base.metadata.create_all(engine)
    statement = select(Appointment.id).where(optimized.conflict_predicate(7, at(0), at(30)))
    with Session(engine) as session:
        session.execute(text(CONFLICT_INDEX))
        compiled = statement.compile(engine, compile_kwargs={"literal_binds": True})
        details = [row[3] for row in session.execute(text(f"EXPLAIN QUERY PLAN {compiled}"))]
    engine.dispose()
    assert any(
        "ix_appointments_conflict" in d and "start_time<" in d for d in details
    ), details
