"""Both versions of a flow refuse bad arguments the same way, before any SQL runs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

import sqlaopt
from sqlaopt.booking import flow_arguments, naive, optimized
from sqlaopt.booking.models import Base
from sqlaopt.sql import DateBucketUnitError, IntervalError

from .conftest import sqlite_engine

T0 = dt.datetime(2025, 9, 29, 10)
DAY = T0.date()


@pytest.fixture
def session() -> Iterator[Session]:
    engine: Engine = sqlite_engine()
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        yield session
    engine.dispose()


BAD_CALLS: list[tuple[str, tuple[Any, ...], type[Exception], str]] = [
    ("has_conflict", (1, T0, T0), IntervalError, "must end after it starts"),
    ("has_conflict", (1, T0, T0 - dt.timedelta(minutes=1)), IntervalError, "end after"),
    ("available_slots", (1, DAY, dt.timedelta(0)), ValueError, "must be positive"),
    ("available_slots", (1, DAY, dt.timedelta(minutes=30), dt.timedelta(0)), ValueError,
     "must be positive"),
    ("revenue_report", ("wek", DAY, DAY), DateBucketUnitError, "did you mean 'week'"),
]


@pytest.mark.parametrize(("flow", "arguments", "error", "message"), BAD_CALLS)
@pytest.mark.parametrize("version", [naive, optimized], ids=["naive", "optimized"])
def test_bad_arguments(
    session: Session, version: Any, flow: str, arguments: tuple[Any, ...],
    error: type[Exception], message: str,
) -> None:
    function: Callable[..., Any] = getattr(version, flow)
    with sqlaopt.count_queries() as queries, pytest.raises(error, match=message):
        function(session, *arguments)
    assert queries.count == 0


@pytest.mark.parametrize("version", [naive, optimized], ids=["naive", "optimized"])
def test_unknown_user_dashboard(session: Session, version: Any) -> None:
    with pytest.raises(LookupError, match="no user with id 42"):
        version.user_dashboard(session, 42, T0)


def test_flow_arguments_need_appointments(session: Session) -> None:
    with pytest.raises(LookupError, match="no appointments"):
        flow_arguments(session)
