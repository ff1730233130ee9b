"""Slow statements on the detector's one pipeline: measured only when asked, reported at the
application's line, aggregated in log mode, with a plan from a PlanSampler, never a test
verdict."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

import sqlaopt
from sqlaopt.detect import _slow
from sqlaopt.watch import PlanSampler

from .conftest import nplusone_records


@pytest.fixture(params=["sqlite", "postgresql"])
def slow_engine(request: pytest.FixtureRequest) -> Iterator[tuple[Engine, str]]:
    """An engine and a statement that takes about 30 ms on it."""
    if request.param == "sqlite":
        engine = create_engine("sqlite://", poolclass=StaticPool)

        @event.listens_for(engine, "connect")
        def sleep_function(dbapi_connection: Any, record: Any) -> None:
            dbapi_connection.create_function("sleep_ms", 1, lambda ms: time.sleep(ms / 1000))

        yield engine, "SELECT sleep_ms(30)"
    else:
        engine = create_engine(request.getfixturevalue("pg_url"))
        yield engine, "SELECT pg_sleep(0.03)"
    engine.dispose()


def _listening() -> bool:
    return event.contains(Engine, "after_cursor_execute", _slow._on_after_execute)


def test_statements_slower_than_slow_ms_are_one_finding_per_place(
    slow_engine: tuple[Engine, str],
) -> None:
    engine, slow = slow_engine
    assert not _listening()  # nothing measures unless asked
    with Session(engine) as s, sqlaopt.detect("record", slow_ms=20) as report:
        assert _listening()
        for _ in range(3):
            s.execute(text(slow)).all()
            s.execute(text("SELECT 1")).all()  # fast: not a slow statement
    assert not _listening()
    slow_ones = [d for d in report.detections if d.kind == "slow_statement"]
    [d] = slow_ones
    assert d.count == 3 and d.slowest_ms is not None and d.slowest_ms >= 20
    assert d.location.startswith("tests/detect/test_slow.py:")
    assert "in test_statements" in d.location
    assert "sqlaopt db advise" in d.suggestion
    assert "slow 3 times (slowest" in d.headline()


@pytest.mark.nplusone(mode="off")  # the Session scopes of install(), as in production
def test_install_logs_slow_statements_with_their_plan(
    pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    engine = create_engine(pg_url)
    caplog.set_level(logging.WARNING, logger="sqlaopt")
    with PlanSampler(engine) as sampler:
        sqlaopt.install("log", slow_ms=20, plans=sampler)
        try:
            for _ in range(4):  # four Sessions: each its own scope, as four requests
                with Session(engine) as s:
                    s.execute(text("SELECT pg_sleep(0.03)")).all()
        finally:
            sqlaopt.uninstall()
    engine.dispose()
    records = [f for f, _ in nplusone_records(caplog) if f["kind"] == "slow_statement"]
    first, summary = records  # once when first seen, then the repeats in one summary
    assert first["count"] == 1 and first["slowest_ms"] >= 20
    assert first["suggestion"].startswith("plan: Result")
    assert summary["summary"]["repeats"] == 3


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="slow_ms must be a number of milliseconds"):
        sqlaopt.detect(slow_ms=-1)
    with pytest.raises(TypeError, match=r"plans must have a plan\(sql, parameters\) method"):
        sqlaopt.install(slow_ms=10, plans=object())
    assert not _listening()


@pytest.mark.nplusone(mode="off")
def test_slow_statements_never_fail_a_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(app="""
        import time
        from sqlalchemy import create_engine, event, text
        from sqlalchemy.pool import StaticPool
        import sqlaopt

        engine = create_engine("sqlite://", poolclass=StaticPool)

        @event.listens_for(engine, "connect")
        def sleep_function(dbapi_connection, record):
            dbapi_connection.create_function("sleep_ms", 1, lambda ms: time.sleep(ms / 1000))

        @sqlaopt.detect("log", slow_ms=10)
        def handler():
            with engine.connect() as conn:
                return conn.execute(text("SELECT sleep_ms(20)")).all()
    """, test_app="""
        from app import handler
        def test_slow_handler(): handler()
    """)
    pytester.runpytest().assert_outcomes(passed=1)
