"""One verdict per test, whatever the stack: through middlewares, Session scopes, application
scopes, threads, executors and test clients (pytester suites with a real FastAPI app, httpx
and Flask)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.nplusone(mode="off")  # the suites run in this process

APP = '''
import asyncio, threading
from concurrent.futures import ThreadPoolExecutor
from fastapi import FastAPI
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool
import sqlaopt
from sqlaopt.asgi import NPlusOneMiddleware
from sqlaopt.booking import build_sample
from sqlaopt.booking.models import Appointment, Base

engine = create_engine("sqlite://", poolclass=StaticPool,
                       connect_args={"check_same_thread": False})
Base.metadata.create_all(engine)
with Session(engine) as s:
    build_sample(s)
spawned = []


def one_client(appointment_id):
    with Session(engine) as s:
        return s.get(Appointment, appointment_id).client.name


def clients_of_five():
    with Session(engine) as s:
        return [a.client.name for a in s.scalars(select(Appointment).limit(5))]


def make_app(middleware):
    app = FastAPI()

    @app.get("/one/{appointment_id}")
    def one(appointment_id: int):
        return one_client(appointment_id)

    @app.get("/async-one/{appointment_id}")
    async def async_one(appointment_id: int):
        return await asyncio.to_thread(one_client, appointment_id)

    @app.get("/five")
    def five():
        return clients_of_five()

    @app.get("/later")
    def later():
        thread = threading.Thread(target=clients_of_five)  # runs after the response
        spawned.append(thread)
        thread.start()
        return "ok"

    if middleware:
        app.add_middleware(NPlusOneMiddleware, mode="log")
    return app


@sqlaopt.detect("log")
def logged_service():
    return clients_of_five()
'''


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(app=APP)
    return pytester


@pytest.mark.parametrize("middleware", [False, True])
def test_requests_are_units_of_work(suite: pytest.Pytester, middleware: bool) -> None:
    suite.makepyfile(test_it=f"""
        import httpx, pytest
        from fastapi.testclient import TestClient
        from app import make_app

        def test_a_loop_of_requests_is_not_an_n_plus_one():
            with TestClient(make_app({middleware})) as client:
                for i in range(1, 6):
                    assert client.get(f"/one/{{i}}").status_code == 200
                    assert client.get(f"/async-one/{{i}}").status_code == 200

        async def _httpx_loop():
            transport = httpx.ASGITransport(app=make_app({middleware}))
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                for i in range(1, 6):
                    assert (await client.get(f"/async-one/{{i}}")).status_code == 200

        def test_httpx_asgi_transport():
            import asyncio
            asyncio.run(_httpx_loop())

        def test_an_n_plus_one_inside_one_request_fails_the_test():
            with TestClient(make_app({middleware})) as client:
                assert client.get("/five").status_code == 200
    """)
    result = suite.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines([
        "*test_an_n_plus_one_inside_one_request_fails_the_test*",
        "*N+1 Appointment.client lazy-loaded 5 times at app.py:*in clients_of_five*",
    ])


def test_flask_and_werkzeug_test_clients(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_it="""
        from flask import Flask
        from werkzeug.test import Client
        from app import one_client, clients_of_five

        flask_app = Flask(__name__)
        flask_app.add_url_rule("/one/<int:i>", "one", lambda i: one_client(i))
        flask_app.add_url_rule("/five", "five", lambda: str(clients_of_five()))

        def plain_wsgi(environ, start_response):
            start_response("200 OK", [])
            return [one_client(int(environ["PATH_INFO"].strip("/"))).encode()]

        def test_loops_of_requests():
            client = flask_app.test_client()
            for i in range(1, 6):
                assert client.get(f"/one/{i}").status_code == 200
            plain = Client(plain_wsgi)
            for i in range(1, 6):
                plain.get(f"/{i}")

        def test_one_request_with_an_n_plus_one():
            assert flask_app.test_client().get("/five").status_code == 200
    """)
    result = suite.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*N+1 Appointment.client lazy-loaded 5 times*"])


def test_nested_scopes_reach_the_test(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_it="""
        import asyncio, threading
        from concurrent.futures import ThreadPoolExecutor
        import sqlaopt
        from fastapi.testclient import TestClient
        from app import clients_of_five, logged_service, make_app, spawned

        def test_application_detect_block_in_log_mode():
            logged_service()

        def test_install_session_scope():
            sqlaopt.install("log")
            try:
                clients_of_five()
            finally:
                sqlaopt.uninstall()

        def test_a_thread_the_test_starts():
            thread = threading.Thread(target=clients_of_five)
            thread.start()
            thread.join()

        def test_an_executor():
            with ThreadPoolExecutor(2) as pool:
                pool.submit(clients_of_five).result()

        def test_to_thread_and_run_in_executor():
            async def run():
                await asyncio.to_thread(clients_of_five)
                await asyncio.get_running_loop().run_in_executor(None, clients_of_five)
            asyncio.run(run())

        def test_work_a_request_spawns_after_its_response():
            with TestClient(make_app(True)) as client:
                assert client.get("/later").status_code == 200
            for thread in spawned:
                thread.join()

        def test_the_tests_own_detect_block_keeps_its_detections():
            with sqlaopt.detect("record") as report:
                clients_of_five()
            assert [d.target for d in report.detections] == ["Appointment.client"]
    """)
    result = suite.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=6)
    lines = [line for line in result.stdout.lines if line.startswith("sqlaopt: N+1")]
    assert len(lines) == 6 and all("Appointment.client" in line for line in lines)
    assert sum("lazy-loaded 10 times" in line for line in lines) == 1  # two lanes, one place
