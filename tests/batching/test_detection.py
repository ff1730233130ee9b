"""A batched load stays visible: the detector reports it once per location with
``batched=True`` and the usual fix, in every mode, and never fails by itself.

Only the public API is used (``sqlaopt.detect``, ``Report.detections``, ``install``, the
middlewares, the pytest plugin), so these tests hold whatever the detector looks like inside.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Iterable
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

import sqlaopt
from sqlaopt.asgi import NPlusOneMiddleware
from sqlaopt.booking.models import Appointment
from sqlaopt.wsgi import NPlusOneMiddleware as WSGIMiddleware


def clients_and_payments(session: Session) -> list[Any]:
    appointments = session.scalars(select(Appointment).order_by(Appointment.id)).all()
    return [(a.client.name if a.client else None, a.payment.status if a.payment else None)
            for a in appointments]


def test_a_batched_load_is_reported_once_with_its_fix(session: Session) -> None:
    session.connection()  # its SAVEPOINT, outside the count
    with sqlaopt.batch(), sqlaopt.detect("record") as report, \
            sqlaopt.count_queries() as queries:
        clients_and_payments(session)
    assert queries.count == 3
    found = sorted((d.target, d.kind, d.batched, d.count) for d in report.detections)
    assert found == [("Appointment.client", "lazy_load", True, 40),
                     ("Appointment.payment", "lazy_load", True, 40)]
    client = next(d for d in report.detections if d.relationship == "client")
    assert client.suggestion.startswith("joinedload(Appointment.client)")
    assert "batch-loaded for 40 instances" in str(client)
    assert client.as_dict()["batched"] is True


def test_batched_column_loads_are_reported(session: Session) -> None:
    appointments = session.scalars(select(Appointment)).all()
    session.expire_all()
    with sqlaopt.batch(), sqlaopt.detect("record") as report:
        [a.status for a in appointments]
    assert [(d.kind, d.target, d.batched, d.count) for d in report.detections] == [
        ("column_load", "Appointment.status", True, 40)]


def test_raise_mode_does_not_raise_for_a_batched_load(session: Session) -> None:
    with sqlaopt.batch(), sqlaopt.detect("raise") as report:
        clients_and_payments(session)
    assert {d.batched for d in report.detections} == {True}


def test_unbatched_loads_still_raise(session: Session) -> None:
    with sqlaopt.batch(enabled=False), sqlaopt.detect("raise"), \
            pytest.raises(sqlaopt.NPlusOneError) as raised:
        clients_and_payments(session)
    assert raised.value.detections[0].batched is False


def test_warn_mode_warns_once_per_batched_location(session: Session) -> None:
    with pytest.warns(sqlaopt.NPlusOneWarning) as warned, sqlaopt.batch(), \
            sqlaopt.detect("warn"):
        clients_and_payments(session)
    messages = [str(w.message) for w in warned]
    assert len(messages) == 2
    assert all("batch-loaded" in m for m in messages)


@pytest.mark.nplusone(mode="off")  # the Session scopes of install(), as in production
def test_install_with_batch_logs_batched_loads(
    booking_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="sqlaopt")

    def request() -> int:
        with Session(booking_engine) as session, sqlaopt.count_queries() as queries:
            clients_and_payments(session)
        return queries.count

    sqlaopt.install("log", batch=True)
    try:
        assert request() == 3
    finally:
        sqlaopt.uninstall()
    fields = [r.sqlaopt for r in caplog.records if r.name == "sqlaopt.nplusone"]  # type: ignore[attr-defined]
    assert sorted((f["relationship"], f["batched"]) for f in fields) == [
        ("client", True), ("payment", True)]
    assert request() > 3  # uninstall() turned batching off too


def test_install_rejects_a_batch_flag_that_is_not_a_bool() -> None:
    with pytest.raises(sqlaopt.BatchError, match="batch must be True or False"):
        sqlaopt.install("log", batch="yes")  # type: ignore[arg-type]


# --- middlewares ---------------------------------------------------------------------------


def test_asgi_middleware_batches_each_request(
    booking_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="sqlaopt")
    app = FastAPI()
    counts: list[int] = []

    @app.get("/schedule")
    def schedule() -> int:
        with Session(booking_engine) as session, sqlaopt.count_queries() as queries:
            clients_and_payments(session)
        counts.append(queries.count)
        return queries.count

    app.add_middleware(NPlusOneMiddleware, mode="log", batch=True)
    with contextvars.Context().run(TestClient, app) as client:
        assert client.get("/schedule").json() == 3
    fields = [r.sqlaopt for r in caplog.records if r.name == "sqlaopt.nplusone"]  # type: ignore[attr-defined]
    assert sorted((f["relationship"], f["batched"], f["context"]) for f in fields) == [
        ("client", True, "GET /schedule"), ("payment", True, "GET /schedule")]


def test_wsgi_middleware_batches_the_body_too(booking_engine: Engine) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        session = Session(booking_engine)
        appointments = session.scalars(select(Appointment).order_by(Appointment.id)).all()

        def body() -> Iterable[bytes]:  # lazy loads while the server iterates the body
            with sqlaopt.count_queries() as queries:
                names = [str(a.client.name if a.client else None) for a in appointments]
            yield f"{queries.count} {len(names)}".encode()
            session.close()

        return body()

    environ: dict[str, Any] = {}
    setup_testing_defaults(environ)
    wrapped = WSGIMiddleware(app, mode="record", batch=True)
    body = contextvars.Context().run(lambda: b"".join(wrapped(environ, lambda *a: None)))
    assert body == b"1 40"
    unbatched = WSGIMiddleware(app, mode="off")
    body = contextvars.Context().run(lambda: b"".join(unbatched(environ, lambda *a: None)))
    assert body.split()[0] != b"1"


@pytest.mark.parametrize("middleware", [NPlusOneMiddleware, WSGIMiddleware])
def test_middlewares_reject_a_batch_flag_that_is_not_a_bool(middleware: Any) -> None:
    with pytest.raises(sqlaopt.BatchError, match="batch must be True or False"):
        middleware(lambda *a: None, batch=1)


# --- the pytest plugin ---------------------------------------------------------------------

APP = '''
import sqlaopt
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool
from sqlaopt.booking import build_sample
from sqlaopt.booking.models import Appointment, Base

engine = create_engine("sqlite://", poolclass=StaticPool)
Base.metadata.create_all(engine)
with Session(engine) as s:
    build_sample(s)




@sqlaopt.batch()
def clients():  # application code: a loop in a test module would be the test's own
    with Session(engine) as s:
        for a in s.scalars(select(Appointment)).all():
            a.client
'''
SUITE = """
from app import clients

def test_batched_loop(nplusone):
    clients()
    assert [d.batched for d in nplusone.detections] == [True]
"""


@pytest.mark.parametrize(("arguments", "ini", "outcome"), [
    ((), "", {"passed": 1}),
    ((), "sqlaopt_batched = fail", {"failed": 1}),
    (("--sqlaopt-batched=report",), "sqlaopt_batched = fail", {"passed": 1}),
])
def test_plugin_fails_on_batched_loads_only_when_asked(
    pytester: pytest.Pytester, arguments: tuple[str, ...], ini: str, outcome: dict[str, int]
) -> None:
    pytester.makepyfile(app=APP, test_suite=SUITE)
    if ini:
        pytester.makeini(f"[pytest]\n{ini}\n")
    result = pytester.runpytest(*arguments)
    result.assert_outcomes(**outcome)
    if outcome.get("failed"):
        result.stdout.fnmatch_lines(["*Appointment.client batch-loaded for 40 instances*"])


def test_plugin_rejects_an_unknown_batched_setting(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(app=APP, test_suite=SUITE)
    pytester.makeini("[pytest]\nsqlaopt_batched = sometimes\n")
    result = pytester.runpytest()
    result.stderr.fnmatch_lines(["*sqlaopt_batched = 'sometimes' is not accepted*"])
