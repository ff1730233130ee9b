"""The ASGI middleware under a real FastAPI app, and the WSGI middleware.

The tests that provoke N+1s on purpose run with the plugin in ``record`` mode: what the
middleware finds also reaches the test's scope (see test_verdict.py), which must not fail them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from types import SimpleNamespace
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import Session, joinedload
from sqlalchemy.pool import StaticPool

import sqlaopt
from sqlaopt.asgi import NPlusOneMiddleware
from sqlaopt.booking import build_sample
from sqlaopt.booking.models import Appointment, Base
from sqlaopt.detect import _scope
from sqlaopt.wsgi import NPlusOneMiddleware as WSGIMiddleware

from .conftest import nplusone_records

pytestmark = [pytest.mark.nplusone(mode="record"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning")]


def make_app(engine: Engine, mode: str = "log", **options: Any) -> FastAPI:
    app = FastAPI()
    async_engine = create_async_engine("sqlite+aiosqlite://", poolclass=StaticPool)

    @app.on_event("startup")
    async def create_schema() -> None:
        async with async_engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        async with AsyncSession(async_engine) as s:
            await s.run_sync(build_sample)

    @app.get("/appointments")
    def list_appointments() -> list[str]:  # sync: FastAPI runs it in a worker thread
        with Session(engine) as s:
            return [str(a.client.name) for a in s.scalars(select(Appointment).limit(5))]

    @app.get("/appointments/fixed")
    def list_appointments_fixed() -> list[str]:
        with Session(engine) as s:
            query = select(Appointment).options(joinedload(Appointment.client)).limit(5)
            return [str(a.client.name) for a in s.scalars(query)]

    @app.get("/services")
    async def list_services() -> list[str]:
        async with AsyncSession(async_engine) as s:
            rows = (await s.scalars(select(Appointment).limit(4))).all()
            return [str((await a.awaitable_attrs.service).name) for a in rows]

    app.add_middleware(NPlusOneMiddleware, mode=mode, **options)
    return app


@pytest.fixture
def client(booking_engine: Engine) -> Iterator[TestClient]:
    with TestClient(make_app(booking_engine)) as test_client:
        yield test_client


def test_asgi_logs_each_n_plus_one_with_the_request(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="sqlaopt")
    assert client.get("/appointments").status_code == 200
    assert client.get("/appointments/fixed").status_code == 200
    assert client.get("/services").status_code == 200
    records = nplusone_records(caplog)
    assert [(r["context"], r["model"], r["relationship"]) for r, _ in records] == [
        ("GET /appointments", "Appointment", "client"),
        ("GET /services", "Appointment", "service"),
    ]
    assert "[GET /appointments]" in records[0][1].getMessage()
    assert "in list_appointments" in records[0][0]["location"]
    assert "in list_services" in records[1][0]["location"]


def test_asgi_raise_mode_becomes_a_server_error(booking_engine: Engine) -> None:
    app = make_app(booking_engine, mode="raise")
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/appointments").status_code == 500
        assert client.get("/appointments/fixed").status_code == 200


def test_asgi_bad_input_fails_at_construction() -> None:
    with pytest.raises(ValueError, match="unknown mode 'lgo'"):
        NPlusOneMiddleware(FastAPI(), mode="lgo")
    with pytest.raises(ValueError, match=r"sample_rate must be a number in \(0, 1\]"):
        NPlusOneMiddleware(FastAPI(), sample_rate=0)


def test_a_hot_endpoint_logs_once_then_one_summary(
    booking_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="sqlaopt")
    with TestClient(make_app(booking_engine)) as client:
        for _ in range(30):
            assert client.get("/appointments").status_code == 200
        sqlaopt.flush_log_summaries()
    records = nplusone_records(caplog)
    assert len(records) == 2, [r.getMessage() for _, r in records]
    first, summary = records
    assert first[0]["count"] == 5 and "summary" not in first[0]
    assert summary[0]["summary"] == {"repeats": 29 * 5, "scopes": 29, "max_count": 5}
    assert "seen 145 more times in 29 requests, max count 5" in summary[1].getMessage()


def test_sampling_observes_a_fraction_of_requests(
    booking_engine: Engine, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    draws = iter([0.9, 0.2, 0.7, 0.05])  # observed when the draw is below 0.25
    monkeypatch.setattr(_scope, "random", SimpleNamespace(random=lambda: next(draws)))
    caplog.set_level(logging.WARNING, logger="sqlaopt")
    with TestClient(make_app(booking_engine, sample_rate=0.25)) as client:
        for _ in range(4):
            client.get("/appointments")
        sqlaopt.flush_log_summaries()
    [_, (summary, _)] = nplusone_records(caplog)
    assert summary["summary"]["scopes"] == 1  # 2 of 4 requests observed: a first and a repeat


def test_a_path_cannot_split_a_log_line(
    booking_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="sqlaopt")
    app = WSGIMiddleware(wsgi_app(booking_engine), mode="log")
    environ: dict[str, Any] = {"PATH_INFO": "/a\nWARNING forged\r\x1b[2J", "REQUEST_METHOD": "GET"}
    setup_testing_defaults(environ)
    body = app(environ, lambda status, headers: None)
    b"".join(body)
    body.close()  # type: ignore[attr-defined]
    [(fields, record)] = nplusone_records(caplog)
    assert fields["context"] == "GET /a\\x0aWARNING forged\\x0d\\x1b[2J"
    assert "\n" not in record.getMessage() and "\r" not in record.getMessage()


def wsgi_app(engine: Engine) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])

        def body() -> Iterator[bytes]:  # streamed: runs after the app returned
            with Session(engine) as s:
                for a in s.scalars(select(Appointment).limit(3)):
                    yield a.client.name.encode()

        return body()

    return app


def serve(app: Any, path: str = "/stream", close: bool = True) -> Any:
    environ: dict[str, Any] = {"PATH_INFO": path, "REQUEST_METHOD": "GET"}
    setup_testing_defaults(environ)
    body = app(environ, lambda status, headers: None)
    content = b"".join(body)
    if close:
        body.close()
    return content


def test_wsgi_covers_a_streamed_body(
    booking_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="sqlaopt")
    assert serve(WSGIMiddleware(wsgi_app(booking_engine), mode="log"))
    [(fields, _)] = nplusone_records(caplog)
    assert fields["context"] == "GET /stream" and fields["relationship"] == "client"
    assert fields["count"] == 3


def test_middleware_detections_also_reach_an_enclosing_detect_block(
    booking_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="sqlaopt")
    app = WSGIMiddleware(wsgi_app(booking_engine), mode="log")
    with sqlaopt.detect("record") as outer:
        serve(app)
    assert [(d.target, d.count, d.context) for d in outer.detections] == [
        ("Appointment.client", 3, "GET /stream")
    ]
    assert outer.statements == 4
    assert len(nplusone_records(caplog)) == 1  # and the middleware logged it as usual


def test_an_unclosed_response_does_not_swallow_later_statements(
    booking_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="sqlaopt")
    app = WSGIMiddleware(wsgi_app(booking_engine), mode="log")
    with Session(booking_engine) as s:
        rows = s.scalars(select(Appointment).limit(4)).all()
        with sqlaopt.detect("record") as outer:
            serve(app, close=False)  # a test client's response nobody closes
            for a in rows:
                a.service  # noqa: B018  (the test's own code, after the request)
        assert {d.target: d.context for d in outer.detections} == {
            "Appointment.client": "GET /stream", "Appointment.service": None,
        }
        assert not nplusone_records(caplog)  # the request's scope is still open
        serve(app, "/next")  # the next request closes it
    assert [f["context"] for f, _ in nplusone_records(caplog)] == ["GET /stream"]
    sqlaopt.flush_log_summaries()  # the second request's repeat of the same N+1
    assert [f["context"] for f, _ in nplusone_records(caplog)] == ["GET /stream", "GET /next"]
