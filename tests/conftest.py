"""Shared fixtures: real databases, one private database per test run.

PostgreSQL and MariaDB tests run against the local servers (127.0.0.1:5432 and :3306). Each
test run creates its own database (``sqlaopt_<pid>``) and drops it at the end, so concurrent
runs never see each other's tables. Outside CI an unreachable server skips its tests with a
one-line reason; with ``CI=true`` it is an error.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

from sqlaopt.booking import build_sample
from sqlaopt.booking.models import Base
from sqlaopt.loading._rename import reset_retarget

PG_ADMIN_URL = os.environ.get("SQLAOPT_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
MARIADB_ADMIN_URL = os.environ.get("SQLAOPT_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.fixture(autouse=True)
def _built_in_presets_not_retargeted() -> Iterator[None]:
    """sqlaopt.presets.retarget() is once per process: undone after any test (or docs page)
    that calls it, so that no other test sees the built-in presets bound to other names."""
    yield
    reset_retarget()


def _unreachable(what: str, error: Exception) -> None:
    message = f"{what} is not reachable ({type(error).__name__}: {str(error).splitlines()[0]})"
    if IN_CI:
        pytest.fail(f"{message}; CI requires it", pytrace=False)
    pytest.skip(message)


def _private_database(admin_url: str, what: str, suffix: str = "") -> Iterator[str]:
    """Create a database of our own on the server behind ``admin_url`` and yield its URL."""
    name = f"sqlaopt_{os.getpid()}{suffix}"
    isolation = "AUTOCOMMIT"
    try:
        admin = create_engine(admin_url, isolation_level=isolation)
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
            conn.execute(text(f"CREATE DATABASE {name}"))
    except Exception as error:  # any connection failure means "unreachable"
        _unreachable(what, error)
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        admin.dispose()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """URL of a fresh, private PostgreSQL database for this test run."""
    yield from _private_database(PG_ADMIN_URL, "PostgreSQL at 127.0.0.1:5432")


@pytest.fixture(scope="session")
def mariadb_url() -> Iterator[str]:
    """URL of a fresh, private MariaDB database for this test run."""
    yield from _private_database(MARIADB_ADMIN_URL, "MariaDB at 127.0.0.1:3306")


def sqlite_engine() -> Engine:
    """An in-memory SQLite engine shared by every connection (as the real backend's tests do)."""
    return create_engine(
        "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
    )


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def booking_engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """The reference schema with the deterministic sample data, on SQLite and PostgreSQL.

    Treat it as read-only; use the ``session`` fixture for writes (rolled back after the test).
    """
    if request.param == "sqlite":
        engine = sqlite_engine()
    else:
        engine = create_engine(request.getfixturevalue("pg_url"))
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        build_sample(session)
    yield engine
    Base.metadata.drop_all(engine)
    engine.dispose()


@pytest.fixture(scope="session")
def sqlite_file_booking(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """The reference schema with the sample data in a SQLite database file."""
    engine = create_engine(f"sqlite:///{tmp_path_factory.mktemp('booking') / 'booking.db'}")
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        build_sample(session)
    yield engine
    engine.dispose()


@pytest.fixture
def concurrent_engine(booking_engine: Engine, request: pytest.FixtureRequest) -> Engine:
    """``booking_engine`` for tests whose threads query at once: on SQLite a database file, so
    that each thread has a connection of its own (threads sharing the in-memory engine's one
    connection make Python 3.12's sqlite3 module fail or crash, with or without sqlaopt)."""
    if booking_engine.dialect.name != "sqlite":
        return booking_engine
    engine: Engine = request.getfixturevalue("sqlite_file_booking")
    return engine


@pytest.fixture
def session(booking_engine: Engine) -> Iterator[Session]:
    """A Session on the sample data whose changes are rolled back after the test."""
    with booking_engine.connect() as conn:
        outer = conn.begin()
        with Session(bind=conn, join_transaction_mode="create_savepoint") as s:
            yield s
        outer.rollback()
