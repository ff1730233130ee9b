"""Fixtures for the loader-preset tests: a large sample on SQLite and PostgreSQL, and helpers."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.orm import Session

from sqlaopt.booking import SampleSize, build_sample
from sqlaopt.booking.models import Base

from ..conftest import sqlite_engine
from .backend_models import BackendModels, add_rows, declare_backend_models

# At least 500 roots for every built-in preset: 604 users, 1,400 appointments, 986 payments.
LARGE = SampleSize(clients=600, appointments=1400)
_LARGE_SCHEMA = "sqlaopt_loading_large"


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def large_engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """The reference schema with at least 500 rows of every preset's root, on both backends.

    On PostgreSQL it lives in a schema of its own inside the run's private database (through
    ``search_path``), so it never meets the shared ``booking_engine`` tables.
    """
    if request.param == "sqlite":
        engine = sqlite_engine()
    else:
        url = request.getfixturevalue("pg_url")
        admin = create_engine(url)
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {_LARGE_SCHEMA}"))
        admin.dispose()  # a pooled connection left open would block DROP DATABASE at the end
        engine = create_engine(url, connect_args={"options": f"-csearch_path={_LARGE_SCHEMA}"})
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        build_sample(session, LARGE)
    yield engine
    Base.metadata.drop_all(engine)
    engine.dispose()


def touch(instances: Iterable[Any], path: str) -> int:
    """Read every hop of ``path`` on every instance the way application code does (lazy loads
    happen if anything is missing); returns how many objects the last hop reached."""
    level = list(instances)
    for key in path.split("."):
        reached: list[Any] = []
        for instance in level:
            value = getattr(instance, key)
            if isinstance(value, list):
                reached.extend(value)
            elif value is not None:
                reached.append(value)
        level = reached
    return len(level)


def identity(instance: Any) -> tuple[str, Any]:
    """(class name, primary key): how two sessions' copies of a row are compared."""
    return type(instance).__name__, inspect(instance).identity


@pytest.fixture
def db(booking_engine: Engine) -> Iterator[Session]:
    """A fresh, read-only Session on the sample data (an empty identity map for every test,
    and no savepoint statements to disturb statement counts)."""
    with Session(booking_engine) as session:
        yield session


@pytest.fixture(scope="session")
def backend() -> BackendModels:
    """A second, differently named base with the same class and relationship names."""
    return declare_backend_models()


@pytest.fixture(scope="session")
def lacking_payment() -> BackendModels:
    """Like ``backend`` but Appointment has ``payments`` (a collection), not ``payment``."""
    return declare_backend_models(one_to_one_payment=False)


@pytest.fixture(scope="session")
def backend_engine(backend: BackendModels) -> Iterator[Engine]:
    """SQLite with ``backend``'s tables and a few rows."""
    engine = sqlite_engine()
    backend.base.metadata.create_all(engine)
    with Session(engine) as session:
        add_rows(session, backend)
    yield engine
    engine.dispose()
