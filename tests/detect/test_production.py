"""Production promises: nothing of sqlaopt's reaches the application, memory stays bounded and
nothing is kept alive, reports cannot be silenced by accident, one detect() serves many threads.

These tests open their own scopes (or install()), so the plugin's test scope is turned off.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import tracemalloc
import warnings
import weakref
from collections.abc import Callable
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.orm import Session

import sqlaopt
from sqlaopt.asgi import NPlusOneMiddleware
from sqlaopt.booking.models import Appointment
from sqlaopt.detect import _emit, _hook, _scope, _units
from sqlaopt.wsgi import NPlusOneMiddleware as WSGIMiddleware

from .conftest import nplusone_records

pytestmark = pytest.mark.nplusone(mode="off")


class AppError(Exception):
    """The application's own failure, which must reach the caller untouched."""


def application(engine: Engine) -> None:
    with Session(engine) as s:
        for a in s.scalars(select(Appointment).limit(4)).all():
            a.client  # noqa: B018
            a.service  # noqa: B018
    raise AppError("the application's own error")


# ---------------------------------------------------------------- fault injection

def _boom(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("injected fault")


class _Raising(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        raise RuntimeError("handler fault")

    def handleError(self, record: logging.LogRecord) -> None:
        raise RuntimeError("handleError fault")


class _RaisingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        raise RuntimeError("formatter fault")


def _raising_filter(record: logging.LogRecord) -> bool:
    raise RuntimeError("filter fault")


class _HostileText(str):
    """A value the driver accepts, whose own methods fail when sqlaopt's code calls them."""

    __slots__ = ()

    def __hash__(self) -> int:
        raise RuntimeError("user __hash__ fault")

    def __repr__(self) -> str:
        raise RuntimeError("user __repr__ fault")


@pytest.fixture
def faults(monkeypatch: pytest.MonkeyPatch) -> dict[str, Callable[[], None]]:
    """Each way the detection path can fail, as a function that makes it fail."""
    sqlaopt_logger = logging.getLogger("sqlaopt")

    def handler() -> None:
        sqlaopt_logger.addHandler(_Raising())
        monkeypatch.setattr(logging, "raiseExceptions", True)

    def formatter() -> None:
        raising = logging.StreamHandler()
        raising.setFormatter(_RaisingFormatter())
        sqlaopt_logger.addHandler(raising)

    def record_factory() -> None:
        monkeypatch.setattr(logging, "_logRecordFactory", _boom)

    def colliding_factory() -> None:
        original = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = original(*args, **kwargs)
            record.context = "set by the application"  # a name sqlaopt once used in extra
            record.sqlaopt_request = "x"
            return record

        monkeypatch.setattr(logging, "_logRecordFactory", factory)

    def filters() -> None:
        sqlaopt_logger.addFilter(_raising_filter)

    def warnings_as_errors() -> None:
        warnings.simplefilter("error")

    return {
        "classify": lambda: monkeypatch.setattr(_hook, "classify", _boom),
        "capture": lambda: monkeypatch.setattr(_hook, "capture", _boom),
        "lane": lambda: monkeypatch.setattr(_hook, "lane", _boom),
        "describe": lambda: monkeypatch.setattr(_hook, "describe", _boom),
        "build_detection": lambda: monkeypatch.setattr(_hook, "build_detection", _boom),
        "place": lambda: monkeypatch.setattr(_scope.Scope, "place", _boom),
        "finalize": lambda: monkeypatch.setattr(_hook, "finalize", _boom),
        "emit": lambda: monkeypatch.setattr(_emit._aggregator, "occurred", _boom),
        "enter": lambda: monkeypatch.setattr(_units, "enter", _boom),
        "handler": handler,
        "formatter": formatter,
        "record factory": record_factory,
        "colliding record factory": colliding_factory,
        "filter": filters,
        "warnings as errors": warnings_as_errors,
        "internal_error too": lambda: (sqlaopt_logger.addHandler(_Raising()),
                                       monkeypatch.setattr(_hook, "classify", _boom)),
    }


def _serve_asgi(engine: Engine, mode: str) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        application(engine)

    middleware = NPlusOneMiddleware(app, mode=mode)
    asyncio.run(middleware({"type": "http", "method": "GET", "path": "/"}, None, None))  # type: ignore[arg-type]


def _serve_wsgi(engine: Engine, mode: str) -> None:
    def app(environ: Any, start_response: Any) -> Any:
        application(engine)

    environ: dict[str, Any] = {}
    setup_testing_defaults(environ)
    WSGIMiddleware(app, mode=mode)(environ, lambda *a: None)


def _in_detect(engine: Engine, mode: str) -> None:
    with sqlaopt.detect(mode):
        application(engine)


def _under_install(engine: Engine, mode: str) -> None:
    sqlaopt.install(mode)
    try:
        application(engine)
    finally:
        sqlaopt.uninstall()


STACKS = {"detect": _in_detect, "install": _under_install, "asgi": _serve_asgi,
          "wsgi": _serve_wsgi}
FAULTS = ["classify", "capture", "lane", "describe", "build_detection", "place", "finalize",
          "emit", "enter", "handler", "formatter", "record factory", "colliding record factory",
          "filter", "warnings as errors", "internal_error too"]


@pytest.mark.parametrize("mode", ["log", "warn", "record", "off"])
@pytest.mark.parametrize("stack", sorted(STACKS))
def test_no_fault_on_the_detection_path_reaches_the_application(
    booking_engine: Engine, faults: dict[str, Callable[[], None]], stack: str, mode: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_emit, "_reported_errors", set())
    sqlaopt_logger = logging.getLogger("sqlaopt")
    handlers, filters = list(sqlaopt_logger.handlers), list(sqlaopt_logger.filters)
    try:
        for fault in FAULTS:
            _emit._aggregator.entries.clear()
            with warnings.catch_warnings(), monkeypatch.context() as patch:
                patch.setattr(logging, "_logRecordFactory", logging.getLogRecordFactory())
                faults[fault]()
                with pytest.raises(AppError) as caught:
                    STACKS[stack](booking_engine, mode)
            # The same exception object, raised from the application's own line.
            assert str(caught.value) == "the application's own error", fault
            assert caught.traceback[-1].name == "application", fault
            sqlaopt_logger.handlers[:], sqlaopt_logger.filters[:] = handlers, filters
    finally:
        sqlaopt_logger.handlers[:], sqlaopt_logger.filters[:] = handlers, filters


def test_a_parameter_whose_methods_raise_does_not_escape(booking_engine: Engine) -> None:
    with Session(booking_engine) as s, sqlaopt.detect("log") as report:
        for _ in range(3):
            s.execute(text("SELECT name FROM clients WHERE name = :p"),
                      {"p": _HostileText("x")}).all()
    assert [d.count for d in report.detections] == [3]


# ---------------------------------------------------------------- memory and lifetimes


def test_a_session_under_install_is_freed_by_reference_counting(booking_engine: Engine) -> None:
    sqlaopt.install("log")
    gc.collect()
    gc.disable()
    try:
        def work() -> tuple[weakref.ref[Session], list[weakref.ref[Appointment]]]:
            with Session(booking_engine) as s:
                rows = s.scalars(select(Appointment).limit(20)).all()
                for a in rows:
                    a.client  # noqa: B018
                return weakref.ref(s), [weakref.ref(a) for a in rows]

        session_ref, row_refs = work()
        assert session_ref() is None
        assert all(r() is None for r in row_refs)
    finally:
        gc.enable()
        sqlaopt.uninstall()


def test_a_long_lived_session_with_ever_new_sql_stays_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every statement a new SQL string, each run twice from one line: the count table and the
    detections stop at their caps, and memory stops growing (small caps here;
    benchmarks/detector_memory.py runs 1,000,000 statements against the real ones)."""
    monkeypatch.setattr(_scope, "MAX_COUNT_KEYS", 2_000)
    monkeypatch.setattr(_scope, "MAX_DETECTIONS", 100)
    # Without SQLAlchemy's statement cache (bounded, but a saw-tooth between 500 and 750
    # entries) the memory measured is sqlaopt's own.
    engine = create_engine("sqlite://", query_cache_size=0)
    sqlaopt.install("record")
    try:
        with Session(engine) as s:
            def run(start: int, stop: int) -> None:
                for i in range(start, stop):
                    statement = text(f"SELECT {i} AS v{i}")
                    for _ in range(2):
                        s.execute(statement).all()

            run(0, 300)
            scope = s.info[_hook._SCOPE_KEY][1]
            assert len(scope.report.detections) == 100 and scope.report.dropped == 200
            run(300, 2_500)  # every bounded structure is full now
            gc.collect()
            tracemalloc.start()
            before = tracemalloc.get_traced_memory()[0]
            run(2_500, 6_500)
            gc.collect()
            grown = tracemalloc.get_traced_memory()[0] - before
            tracemalloc.stop()
            assert max(len(scope.counts), len(scope.found), len(scope.repeats),
                       len(scope.places)) <= 2_000
            assert len(scope.report.detections) == 100
    finally:
        sqlaopt.uninstall()
    # What the caps allow (the count table refills between its clearings) is about 1.3 MiB;
    # 300 bytes kept per statement would add 1.2 MiB more over these 4,000.
    assert grown < 2.5 * 1024 * 1024, grown


def test_memory_stays_flat_over_100_000_request_scopes() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        return None

    middleware = NPlusOneMiddleware(app, mode="log")
    http = {"type": "http", "method": "GET", "path": "/x"}

    async def requests(n: int) -> None:
        for _ in range(n):
            await middleware(http, None, None)  # type: ignore[arg-type]

    asyncio.run(requests(5_000))
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    asyncio.run(requests(100_000))
    gc.collect()
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert grown < 256 * 1024, grown


# ---------------------------------------------------------------- reports cannot be silenced


def test_the_warning_is_not_a_user_warning() -> None:
    assert issubclass(sqlaopt.NPlusOneWarning, Warning)
    assert not issubclass(sqlaopt.NPlusOneWarning, (UserWarning, DeprecationWarning))


def test_a_logger_disabled_by_file_config_is_named_once_on_stderr(
    booking_engine: Engine, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
) -> None:
    import logging.config

    monkeypatch.setattr(_emit, "_noticed_disabled", False)
    config = tmp_path / "alembic.ini"
    config.write_text("[loggers]\nkeys=root\n[handlers]\nkeys=console\n[formatters]\nkeys=\n"
                      "[logger_root]\nlevel=WARNING\nhandlers=console\n"
                      "[handler_console]\nclass=StreamHandler\nargs=(sys.stderr,)\n")
    loggers = logging.Logger.manager.loggerDict.values()
    disabled = {lg: lg.disabled for lg in loggers if isinstance(lg, logging.Logger)}
    root = logging.getLogger()
    root_state = (list(root.handlers), root.level)
    logging.config.fileConfig(config)  # as Alembic's env.py does
    try:
        assert _emit.logger.disabled
        for _ in range(2):
            with pytest.raises(AppError), sqlaopt.detect("log"):
                application(booking_engine)
        notices = [line for line in capsys.readouterr().err.splitlines()
                   if line.startswith("sqlaopt:")]
        assert len(notices) == 1 and "disable_existing_loggers=False" in notices[0]
    finally:  # fileConfig disabled every logger of the process: give them back
        for logger, was in disabled.items():
            logger.disabled = was
        root.handlers[:], root.level = root_state


# ---------------------------------------------------------------- one detect(), many threads


def test_one_detect_object_serves_many_threads(concurrent_engine: Engine) -> None:
    shared = sqlaopt.detect("record")
    barrier = threading.Barrier(8)
    reports: list[sqlaopt.Report] = []

    def worker(n: int) -> None:
        with Session(concurrent_engine) as s:
            rows = s.scalars(select(Appointment).order_by(Appointment.id)
                             .offset(n * 4).limit(4)).all()
            with shared as report:
                barrier.wait()  # all eight scopes open at once
                for a in rows:
                    a.payment  # noqa: B018  (one-to-one: a statement each)
                barrier.wait()
            reports.append(report)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(reports) == 8
    assert all([(d.target, d.count) for d in r.detections] == [("Appointment.payment", 4)]
               and r.statements == 4 for r in reports)


def test_a_shared_decorator_logs_every_scope(
    concurrent_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="sqlaopt")

    @sqlaopt.detect("log")
    def handler(n: int) -> None:
        with Session(concurrent_engine) as s:
            for a in s.scalars(select(Appointment).order_by(Appointment.id)
                               .offset(n * 5).limit(5)).all():
                a.payment  # noqa: B018

    threads = [threading.Thread(target=handler, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sqlaopt.flush_log_summaries()
    records = nplusone_records(caplog)
    first = records[0][0]
    summary = records[1][0]["summary"] if len(records) > 1 else {"scopes": 0, "repeats": 0}
    assert 1 + summary["scopes"] == 8
    assert first["count"] + summary["repeats"] == 8 * 5
