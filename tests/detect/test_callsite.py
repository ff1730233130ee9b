"""The call-site walk's jump over SQLAlchemy's frames (Python 3.12+): it must find exactly what
the frame-by-frame walk finds, on every shape of stack the detector meets."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event, inspect, select
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import ORMExecuteState, Session
from sqlalchemy.pool import StaticPool

import sqlaopt
from sqlaopt.booking import build_sample
from sqlaopt.booking.models import Appointment, Base
from sqlaopt.detect import _callsite, _hook

from .shapes import Category, Person, Stamped, Team

pytestmark = pytest.mark.skipif(
    not hasattr(sys, "_getframemodulename"),
    reason="the jump needs sys._getframemodulename (Python 3.12+, where .ci/run runs this "
           "file too); 3.11 always walks frame by frame")


@dataclass
class Comparison:
    """What the jump and the walk found for each statement the detector observed."""

    keys: list[tuple[Any, Any]] = field(default_factory=list)
    sites: list[tuple[Any, Any]] = field(default_factory=list)
    jumped: list[int] = field(default_factory=list)  # frames jumped over, a statement

    def assert_same(self) -> None:
        assert self.keys and all(jump == walk for jump, walk in self.keys)
        assert all(jump == walk for jump, walk in self.sites)


def _walking(function: Any, *args: Any) -> Any:
    """``function(*args)`` with the jump switched off: the frame-by-frame walk."""
    jump, _callsite._module_at = _callsite._module_at, None
    try:
        return function(*args)
    finally:
        _callsite._module_at = jump


@pytest.fixture
def comparison(monkeypatch: pytest.MonkeyPatch) -> Iterator[Comparison]:
    """Every call site the detector reads is read twice, with the jump and with the walk."""
    found = Comparison()

    def capture(anchor: Any, skip: int = 2) -> Any:  # stands where _hook calls capture
        jump = _callsite.capture(anchor, skip + 1)
        found.keys.append((jump, _walking(_callsite.capture, anchor, skip + 1)))
        found.jumped.append(_callsite._first_walked(skip) - skip)
        return jump

    def describe(anchor: Any, skip: int = 2, first: Any = None) -> Any:
        jump = _callsite.describe(anchor, skip + 1, first)
        found.sites.append((jump, _walking(_callsite.describe, anchor, skip + 1, first)))
        return jump

    monkeypatch.setattr(_hook, "capture", capture)
    monkeypatch.setattr(_hook, "describe", describe)
    yield found


def client_of(appointment: Appointment) -> Any:
    return appointment.client


def team_of(person: Person) -> Any:
    return person.team


def walk(node: Category) -> None:
    for child in node.children:
        walk(child)


def test_lazy_loads_statements_and_recursion(comparison: Comparison,
                                             shapes_engine: Engine) -> None:
    with Session(shapes_engine) as s, sqlaopt.detect("record") as report:
        for person in s.scalars(select(Person).order_by(Person.id)).all():
            team_of(person)  # a helper in a loop
        for i in range(1, 6):
            s.get(Category, i)  # single-key fetches
        s.expunge_all()
        walk(s.scalars(select(Category).where(Category.parent_id.is_(None))).one())
        for team in s.scalars(select(Team)).all():
            s.delete(team)  # cascade loads from inside Session.delete
        for i in range(3):
            s.add(Stamped(label=f"row {i}"))
            s.flush()  # the server defaults are fetched inside the flush
        s.rollback()
    comparison.assert_same()
    assert len(comparison.keys) >= 30  # every read (writes are never keyed)
    assert {d.kind for d in report.detections} >= {"lazy_load", "repeated_statement"}
    assert len(comparison.sites) >= 3
    assert min(comparison.jumped) >= 8  # SQLAlchemy's frames of a select, no frame objects


def test_an_application_frame_between_sqlalchemys_frames_ends_the_jump(
        comparison: Comparison, session: Session) -> None:
    def reexecute(state: ORMExecuteState) -> Any:  # runs inside Session.execute
        return state.invoke_statement() if state.is_select else None

    rows = list(session.scalars(select(Appointment).order_by(Appointment.id).limit(4)))
    event.listen(session, "do_orm_execute", reexecute)
    try:
        with sqlaopt.detect("record") as report:
            for a in rows:
                client_of(a)
    finally:
        event.remove(session, "do_orm_execute", reexecute)
    comparison.assert_same()
    [d] = report.detections
    assert "in reexecute" in d.location  # the innermost application frame, not the helper


def test_an_asyncio_child_greenlet(comparison: Comparison) -> None:
    async def scenario() -> sqlaopt.Report:
        engine = create_async_engine("sqlite+aiosqlite://", poolclass=StaticPool)
        with sqlaopt.detect("record") as report:
            async with engine.begin() as conn:
                await conn.run_sync(Base.metadata.create_all)
            async with AsyncSession(engine) as s:
                await s.run_sync(build_sample)
            async with AsyncSession(engine) as s:
                for a in (await s.scalars(select(Appointment).limit(4))).all():
                    await a.awaitable_attrs.client  # the child greenlet: SQLAlchemy only
        await engine.dispose()
        return report

    report = asyncio.run(scenario())
    comparison.assert_same()
    assert any(d.target == "Appointment.client" for d in report.detections)


def test_schema_work_has_no_site(comparison: Comparison, pg_url: str) -> None:
    engine = create_engine(pg_url)
    try:
        with sqlaopt.detect("record"):
            inspect(engine).get_table_names()  # reflection reads the catalog
    finally:
        engine.dispose()
    comparison.assert_same()
    assert all(key == (None, None) for key in comparison.keys)


def test_a_function_claiming_a_sqlalchemy_module_counts_as_sqlalchemy() -> None:
    """The documented difference: the jump reads a function's ``__module__``, so a wrapper
    that copied a SQLAlchemy function's (``functools.wraps``) is passed over like it."""
    assert _callsite._passed_over("sqlalchemy.orm.session")
    assert _callsite._passed_over("sqlaopt.detect._hook")
    assert not _callsite._passed_over("sqlalchemy.engine.reflection")  # schema work
    assert not _callsite._passed_over(__name__)
    assert not _callsite._passed_over(None)
