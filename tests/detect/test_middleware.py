"""The ASGI middleware under a real FastAPI app, and the WSGI middleware."""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Iterable, Iterator
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
from sqlaopt.wsgi import NPlusOneMiddleware as WSGIMiddleware


def make_app(engine: Engine, mode: str = "log") -> FastAPI:
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

    app.add_middleware(NPlusOneMiddleware, mode=mode)
    return app


@pytest.fixture
def client(booking_engine: Engine) -> Iterator[TestClient]:
    # The middleware's scopes must not sit inside this test's own plugin scope.
    context = contextvars.Context()
    with context.run(TestClient, make_app(booking_engine)) as test_client:
        yield test_client


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_asgi_logs_each_n_plus_one_with_the_request(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="sqlaopt")
    assert client.get("/appointments").status_code == 200
    assert client.get("/appointments/fixed").status_code == 200
    assert client.get("/services").status_code == 200
    records = [r for r in caplog.records if r.name == "sqlaopt.nplusone"]
    assert [(r.context, r.model, r.relationship) for r in records] == [
        ("GET /appointments", "Appointment", "client"),
        ("GET /services", "Appointment", "service"),
    ]
    assert "[GET /appointments]" in records[0].getMessage()
    assert "in list_appointments" in records[0].location
    assert "in list_services" in records[1].location


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_asgi_raise_mode_becomes_a_server_error(booking_engine: Engine) -> None:
    app = make_app(booking_engine, mode="raise")
    with contextvars.Context().run(TestClient, app, raise_server_exceptions=False) as client:
        assert client.get("/appointments").status_code == 500
        assert client.get("/appointments/fixed").status_code == 200


def test_asgi_bad_mode_fails_at_construction() -> None:
    with pytest.raises(ValueError, match="unknown mode 'lgo'"):
        NPlusOneMiddleware(FastAPI(), mode="lgo")


def wsgi_app(engine: Engine) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])

        def body() -> Iterator[bytes]:  # streamed: runs after the app returned
            with Session(engine) as s:
                for a in s.scalars(select(Appointment).limit(3)):
                    yield a.client.name.encode()

        return body()

    return app


def test_wsgi_covers_a_streamed_body(
    booking_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="sqlaopt")
    app = WSGIMiddleware(wsgi_app(booking_engine), mode="log")
    environ: dict[str, Any] = {"PATH_INFO": "/stream", "REQUEST_METHOD": "GET"}
    setup_testing_defaults(environ)

    def serve() -> bytes:
        body = app(environ, lambda status, headers: None)
        try:
            return b"".join(body)
        finally:
            body.close()  # type: ignore[attr-defined]

    assert contextvars.Context().run(serve)
    [record] = [r for r in caplog.records if r.name == "sqlaopt.nplusone"]
    assert record.context == "GET /stream" and record.relationship == "client"
    assert record.count == 3


def test_detections_reach_the_middleware_scope_only(booking_engine: Engine) -> None:
    app = WSGIMiddleware(wsgi_app(booking_engine), mode="record")
    environ: dict[str, Any] = {}
    setup_testing_defaults(environ)

    def serve() -> sqlaopt.Report:
        with sqlaopt.detect("record") as outer:
            body = app(environ, lambda status, headers: None)
            b"".join(body)
            body.close()  # type: ignore[attr-defined]
        return outer

    outer = contextvars.Context().run(serve)
    assert outer.detections == [] and outer.statements == 4
