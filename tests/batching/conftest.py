"""Fixtures for the batching tests: the kinds models with 1,000 parents on SQLite and
PostgreSQL (built once per run), and a clean process state around every test."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

import sqlaopt
from sqlaopt import batching
from sqlaopt.booking import generate
from sqlaopt.booking.models import Base as BookingBase

from ..conftest import sqlite_engine
from .models import Base, build

PARENTS = 1_000


@pytest.fixture(autouse=True)
def _no_process_defaults() -> Iterator[None]:
    """Every test starts and ends with neither detection nor batching installed."""
    sqlaopt.uninstall()
    batching.uninstall()
    yield
    sqlaopt.uninstall()
    batching.uninstall()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def kinds_engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """Every relationship kind with PARENTS parents; read-only (tests that write roll back)."""
    if request.param == "sqlite":
        engine = sqlite_engine()
    else:
        engine = create_engine(request.getfixturevalue("pg_url"))
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    with engine.begin() as conn:
        build(conn, PARENTS)
    yield engine
    Base.metadata.drop_all(engine)
    engine.dispose()


@contextmanager
def rolled_back(engine: Engine) -> Iterator[Session]:
    """A Session whose writes are rolled back at the end (its transaction already begun)."""
    with engine.connect() as conn:
        outer = conn.begin()
        with Session(bind=conn, join_transaction_mode="create_savepoint") as session:
            session.connection()  # its SAVEPOINT now, not inside a test's statement count
            yield session
        outer.rollback()


@pytest.fixture
def kinds_session(kinds_engine: Engine) -> Iterator[Session]:
    """A Session on the kinds data whose writes are rolled back after the test."""
    with rolled_back(kinds_engine) as session:
        yield session


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def flows_engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """Generated booking data (2,000 appointments), in a PostgreSQL database of its own next to
    the run's private one, so the shared booking schema there is left alone."""
    if request.param == "sqlite":
        engine = sqlite_engine()
        generate(engine, appointments=2_000, seed=3)
        yield engine
        engine.dispose()
        return
    url = make_url(request.getfixturevalue("pg_url"))
    name = f"{url.database}_batching"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        conn.execute(text(f"CREATE DATABASE {name}"))
    engine = create_engine(url.set(database=name))
    try:
        BookingBase.metadata.create_all(engine)
        generate(engine, appointments=2_000, seed=3)
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()
