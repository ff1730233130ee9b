"""Async, threads, process-wide install, logging, production safety, memory, bad input."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import logging
import threading
import tracemalloc
import warnings
import weakref
from typing import Any

import pytest
from sqlalchemy import Engine, event, select, text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.pool import StaticPool

import sqlaopt
from sqlaopt._lanes import lane
from sqlaopt.booking import build_sample
from sqlaopt.booking.models import Appointment, Base, User
from sqlaopt.detect import _orm
from tests.scripts import run_in_new_interpreter

from .conftest import kinds, nplusone_records

# ---------------------------------------------------------------- asyncio


def test_async_awaitable_attrs_loop_reports_the_application_line() -> None:
    async def scenario() -> sqlaopt.Report:
        engine = create_async_engine("sqlite+aiosqlite://", poolclass=StaticPool)
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        async with AsyncSession(engine) as s:
            await s.run_sync(build_sample)
        async with AsyncSession(engine) as s:
            rows = (await s.scalars(select(Appointment).limit(5))).all()
            with sqlaopt.detect("record") as report:
                for a in rows:
                    await a.awaitable_attrs.client
        await engine.dispose()
        return report

    report = asyncio.run(scenario())
    [d] = report.detections
    assert d.target == "Appointment.client" and d.count >= 2
    assert d.location.startswith("tests/detect/test_runtime.py:") and "in scenario" in d.location


def test_async_decorator_and_task_isolation() -> None:
    async def scenario() -> tuple[int, list[str]]:
        engine = create_async_engine("sqlite+aiosqlite://", poolclass=StaticPool)
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        async with AsyncSession(engine) as s:
            await s.run_sync(build_sample)

        async def one_lookup(appointment_id: int) -> None:
            async with AsyncSession(engine) as own:
                a = await own.get(Appointment, appointment_id)
                assert a is not None
                await a.awaitable_attrs.client

        with sqlaopt.detect("record") as report:
            # The same lines run once in each of two tasks, each with its own session.
            await asyncio.gather(one_lookup(1), one_lookup(2))

        @sqlaopt.detect()
        async def loop() -> None:
            async with AsyncSession(engine) as own:
                for a in (await own.scalars(select(Appointment).limit(4))).all():
                    await a.awaitable_attrs.service

        raised: list[str] = []
        try:
            await loop()
        except sqlaopt.NPlusOneError as error:
            raised = [d.target for d in error.detections]
        await engine.dispose()
        return len(report.detections), raised

    found, raised = asyncio.run(scenario())
    assert found == 0
    assert raised == ["Appointment.service"]


# ---------------------------------------------------------------- threads


def lookup_once(engine: Engine, appointment_id: int, barrier: threading.Barrier) -> None:
    with Session(engine) as s:
        a = s.get(Appointment, appointment_id)
        assert a is not None
        barrier.wait()
        a.client  # noqa: B018


def test_threads_with_their_own_sessions_are_not_an_n_plus_one(concurrent_engine: Engine) -> None:
    sqlaopt.install("record")
    barrier = threading.Barrier(2)
    with sqlaopt.detect("record") as report:
        threads = [threading.Thread(target=lookup_once, args=(concurrent_engine, i, barrier))
                   for i in (1, 2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    # Under the pytest plugin a thread carries the context it was started in: its statements
    # count in the scope that started it, each thread in a lane of its own.
    assert report.detections == [] and report.statements == 4


# ---------------------------------------------------------------- install / log


@pytest.mark.nplusone(mode="off")  # the Session scopes of install(), not a test's scope
def test_install_logs_each_n_plus_one_once_then_summarises(
    booking_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    sqlaopt.install("log")
    sqlaopt.install("log")  # idempotent
    caplog.set_level(logging.WARNING, logger="sqlaopt")

    unclosed: list[Session] = []

    def application() -> None:
        for _ in range(3):  # three sessions: each is its own scope
            s = Session(booking_engine)  # not closed before the end: nothing may be lost
            unclosed.append(s)
            for a in s.scalars(select(Appointment).limit(6)).all():
                a.client  # noqa: B018
                a.payment  # noqa: B018

    application()
    records = nplusone_records(caplog)
    assert sorted(f["relationship"] for f, _ in records) == ["client", "payment"]
    fields, record = records[0]
    assert record.levelno == logging.WARNING
    assert fields["kind"] == "lazy_load" and fields["model"] == "Appointment"
    # A Session has no dependable end: it is reported when it reaches the threshold.
    assert fields["count"] == 2 and fields["location"].startswith("tests/detect/test_runtime.py:")
    assert fields["suggestion"].startswith("joinedload(Appointment.")
    message = record.getMessage()
    assert fields["location"] in message and fields["suggestion"] in message
    sqlaopt.uninstall()  # writes the summaries of the two later sessions
    summaries = [f["summary"] for f, _ in nplusone_records(caplog)[2:]]
    assert summaries == [{"repeats": 4, "scopes": 2, "max_count": 2}] * 2
    caplog.clear()
    application()
    assert not nplusone_records(caplog)
    for s in unclosed:
        s.close()


def test_explicit_log_scope_logs_final_counts_when_it_ends(
    session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="sqlaopt")
    rows = session.scalars(select(Appointment).limit(7)).all()
    with sqlaopt.detect("log"):
        for a in rows:
            a.payment  # noqa: B018
        assert not caplog.records  # nothing yet: the count is still growing
    [(fields, _)] = nplusone_records(caplog)
    assert fields["count"] == 7 and fields["relationship"] == "payment"


def test_warn_mode_points_the_warning_at_the_loop(session: Session) -> None:
    rows = session.scalars(select(Appointment).limit(3)).all()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with sqlaopt.detect("warn"):
            for a in rows:
                a.payment  # noqa: B018
    [w] = [w for w in caught if issubclass(w.category, sqlaopt.NPlusOneWarning)]
    assert w.filename.endswith("test_runtime.py") and w.lineno > 0
    assert "Appointment.payment" in str(w.message)


def test_yield_per_with_selectinload(session: Session) -> None:
    with sqlaopt.detect("record") as report:
        result = session.scalars(
            select(User).options(selectinload(User.appointments)).execution_options(yield_per=3)
        )
        users = [u.appointments for u in result]
    assert len(users) > 3 and report.detections == []


# ---------------------------------------------------------------- production safety


def test_internal_error_is_logged_once_and_detection_goes_on(
    session: Session, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    calls = {"n": 0}
    real = _orm.classify

    def flaky(context: object) -> _orm.Load:
        calls["n"] += 1
        if calls["n"] <= 3:
            raise RuntimeError("boom inside the detector")
        return real(context)  # type: ignore[arg-type]

    from sqlaopt.detect import _emit, _hook

    monkeypatch.setattr(_hook, "classify", flaky)
    monkeypatch.setattr(_emit, "_reported_errors", set())
    rows = session.scalars(select(Appointment).limit(8)).all()
    with caplog.at_level(logging.ERROR, logger="sqlaopt"), sqlaopt.detect("log") as report:
        for a in rows:
            a.client  # noqa: B018  (the first loads hit the failing detector: no exception)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "boom inside the detector" in errors[0].getMessage()
    assert [d.target for d in report.detections] == ["Appointment.client"]


def test_no_strong_references_after_the_scope(booking_engine: Engine) -> None:
    with Session(booking_engine) as s:
        rows = s.scalars(select(Appointment).limit(4)).all()
        refs = [weakref.ref(a) for a in rows]
        with sqlaopt.detect("record") as report:
            for a in rows:
                a.client  # noqa: B018
        assert report.detections
        del rows, a
        s.expunge_all()
    gc.collect()
    assert all(r() is None for r in refs)


def test_what_is_read_once_per_compiled_statement_is_held_weakly(booking_engine: Engine) -> None:
    """Classification reads a compiled statement's own facts once (issue 9's overhead) and
    keeps neither the compiled statement nor anything it holds alive."""
    uncached = booking_engine.execution_options(compiled_cache=None)  # a new compiled each time
    compiled: list[weakref.ref[object]] = []

    def remember(conn: object, cursor: object, statement: str, parameters: object,
                 context: Any, executemany: bool) -> None:
        compiled.append(weakref.ref(context.compiled))

    for engine in (booking_engine, uncached):
        with Session(engine) as s:
            rows = s.scalars(select(Appointment).order_by(Appointment.id).limit(3)).all()
            event.listen(engine, "before_cursor_execute", remember)
            try:
                with sqlaopt.detect("record") as report:
                    for a in rows:
                        a.client  # noqa: B018
            finally:
                event.remove(engine, "before_cursor_execute", remember)
            assert kinds(report) == [("lazy_load", "Appointment.client", 3)]
    del rows, a
    gc.collect()
    assert len(compiled) == 6
    assert [ref() is None for ref in compiled[3:]] == [True] * 3  # the uncached engine's


def test_the_memo_of_compiled_statements_stays_bounded(booking_engine: Engine) -> None:
    with booking_engine.connect() as conn, sqlaopt.detect("record"):
        for n in range(_orm._MAX_COMPILED + 10):
            conn.execute(text(f"SELECT {n}"))  # a new compiled statement each
            assert len(_orm._compiled) <= _orm._MAX_COMPILED


def test_a_thread_keeps_one_lane_and_a_copied_context_gets_its_own() -> None:
    seen: dict[str, int] = {}

    def in_thread() -> None:
        seen["thread"], seen["thread again"] = lane(), lane()
        context = contextvars.copy_context()
        worker = threading.Thread(target=lambda: seen.setdefault("copy", context.run(lane)))
        worker.start()
        worker.join()

    main = lane()
    thread = threading.Thread(target=in_thread)
    thread.start()
    thread.join()
    assert lane() == main
    assert seen["thread"] == seen["thread again"] != main
    assert seen["copy"] not in (seen["thread"], main)


def test_memory_stays_flat_across_100_000_scopes(booking_engine: Engine) -> None:
    with booking_engine.connect() as conn:
        statement = text("SELECT 1")

        def scopes(n: int) -> None:
            for _ in range(n):
                with sqlaopt.detect("record"):
                    pass
            for _ in range(n // 100):  # every 100th scope also runs SQL and finds an N+1
                with sqlaopt.detect("record") as report:
                    for _ in range(2):
                        conn.execute(statement)
                assert report.detections

        scopes(10_000)
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        scopes(100_000)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
    assert grown < 256 * 1024, f"grew by {grown} bytes"


# ---------------------------------------------------------------- bad input


def test_bad_input_gets_clear_errors() -> None:
    with pytest.raises(ValueError, match=r"unknown mode 'rasie' \(did you mean 'raise'\?\); "
                                         r"accepted: raise, warn, log, record, off"):
        sqlaopt.detect("rasie")
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="threshold must be a positive integer"):
            sqlaopt.detect(threshold=bad)  # type: ignore[arg-type]
    for pattern in ("client", "Appointment..client", "Appointment.client; drop", ""):
        with pytest.raises(ValueError, match="malformed allow pattern"):
            sqlaopt.allow(pattern).__enter__()
    with pytest.raises(ValueError, match="malformed allow pattern"):
        sqlaopt.install(allow=["nope"])
    with pytest.raises(TypeError, match="decorates a function or method"):
        sqlaopt.detect()(42)  # type: ignore[type-var]
    with pytest.raises(ValueError, match="non-negative integer"):
        sqlaopt.assert_max_queries(-1).__enter__()


def test_count_queries_and_budget(booking_engine: Engine) -> None:
    with Session(booking_engine) as session:  # its connection must not outlive the test
        with sqlaopt.count_queries() as queries:
            session.execute(text("SELECT 1"))
            session.scalars(select(User).limit(1)).all()
            session.add(User(email="new@example.com", name="New", unified_role="client"))
            session.flush()  # flush statements count too
            session.rollback()
        assert queries.count == 3 and queries.statements[0] == "SELECT 1"
        assert queries.statements[2].startswith("INSERT INTO users")
        with sqlaopt.assert_max_queries(2):
            session.execute(text("SELECT 1"))
        with pytest.raises(sqlaopt.QueryBudgetError) as caught, sqlaopt.assert_max_queries(1):
            session.execute(text("SELECT 1"))
            session.execute(text("SELECT 2"))
        assert caught.value.statements == ["SELECT 1", "SELECT 2"]
        assert "2 SQL statements ran, the budget is 1" in str(caught.value)
        assert isinstance(caught.value, sqlaopt.SqlaoptError)


def test_statements_without_parameters_and_executemany_are_counted(
        booking_engine: Engine) -> None:
    with booking_engine.connect() as conn, sqlaopt.count_queries() as queries:
        conn.exec_driver_sql("SELECT 1")  # the dialect's do_execute_no_params
        conn.execute(text("SELECT :x"), {"x": 1})  # do_execute
        conn.execute(text("CREATE TEMPORARY TABLE scratch (n INTEGER)"))
        conn.execute(text("INSERT INTO scratch (n) VALUES (:n)"), [{"n": 1}, {"n": 2}])
        conn.rollback()
    assert queries.statements[:2] == ["SELECT 1", "SELECT %(x)s"
                                      if booking_engine.dialect.paramstyle == "pyformat"
                                      else "SELECT ?"]
    assert queries.count == 4  # one executemany is one statement


def test_a_dialect_listener_that_runs_statements_itself_hides_none() -> None:
    """An application listener registered first that runs the statement and returns True ends
    SQLAlchemy's dispatch: sqlaopt's listener goes first in line."""
    run_in_new_interpreter(
        "import sqlaopt\n"
        "from sqlalchemy import Engine, create_engine, event, select\n"
        "from sqlalchemy.orm import Session\n"
        "from sqlaopt.booking import build_sample\n"
        "from sqlaopt.booking.models import Appointment, Base\n"
        "@event.listens_for(Engine, 'do_execute')\n"
        "def run_it(cursor, statement, parameters, context):\n"
        "    cursor.execute(statement, parameters)\n"
        "    return True\n"
        "engine = create_engine('sqlite://')\n"
        "Base.metadata.create_all(engine)\n"
        "with Session(engine) as s:\n"
        "    build_sample(s)\n"
        "    rows = s.scalars(select(Appointment).limit(4)).all()\n"
        "    with sqlaopt.detect('record') as report:\n"
        "        for a in rows:\n"
        "            a.client\n"
        "assert [d.target for d in report.detections] == ['Appointment.client'], report\n"
    )


def test_the_detector_leaves_connection_events_off() -> None:
    """Any Connection listener, even removed, makes SQLAlchemy dispatch Connection events on
    every statement from then on (about 10 µs a lazy load): sqlaopt listens to dialect events."""
    run_in_new_interpreter(
        "import sqlaopt\n"
        "from sqlalchemy import Engine, create_engine, text\n"
        "engine = create_engine('sqlite://')\n"
        "sqlaopt.install('log')\n"
        "with sqlaopt.detect('record'), sqlaopt.count_queries() as q, engine.connect() as c:\n"
        "    c.execute(text('SELECT 1'))\n"
        "    assert not c._has_events, 'the Connection dispatches events'\n"
        "sqlaopt.uninstall()\n"
        "assert q.count == 1 and not Engine._has_events\n"
    )
