"""Fixtures for the cache tests: a database of their own (they commit), Redis, installs.

The cache tests commit writes, so they never use the shared read-only ``booking_engine``:
``cache_db`` is the reference schema with the sample data, rebuilt for each test, on SQLite (a
file, so each Session has its own connection) and on a private PostgreSQL database. Redis
keys live under a namespace unique to this test run and each test, deleted afterwards.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session

import sqlaopt.cache as cache
from sqlaopt.booking import build_sample
from sqlaopt.booking.models import Base
from tests.conftest import PG_ADMIN_URL, _private_database, _unreachable

REDIS_URL = os.environ.get("SQLAOPT_REDIS_URL", "redis://127.0.0.1:6379/0")
RUN = f"test-{os.getpid()}"
_namespaces = itertools.count()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """The Redis server's URL; this run's keys are deleted at the end."""
    import redis

    try:
        client = redis.Redis.from_url(REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
        client.ping()
    except Exception as error:  # any failure means "unreachable"
        _unreachable("Redis at 127.0.0.1:6379", error)
    yield REDIS_URL
    for key in client.scan_iter(match=f"sqlaopt:{RUN}-*", count=500):
        client.delete(key)
    client.close()


@pytest.fixture
def namespace() -> str:
    """A namespace of this test's own."""
    return f"{RUN}-{next(_namespaces)}"


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> str | None:
    """What ``install()`` gets: None (in-process) or the Redis URL."""
    return None if request.param == "memory" else request.getfixturevalue("redis_url")


@pytest.fixture
def installed(backend: str | None, namespace: str) -> Iterator[str]:
    """The cache installed on each backend; yields the namespace."""
    cache.install(backend, namespace=namespace)
    try:
        yield namespace
    finally:
        cache.clear()
        cache.uninstall()


@pytest.fixture(scope="session")
def cache_pg_url() -> Iterator[str]:
    """A private PostgreSQL database for the cache tests (they commit)."""
    yield from _private_database(PG_ADMIN_URL, "PostgreSQL at 127.0.0.1:5432", suffix="_cache")


def fresh_schema(engine: Engine) -> Engine:
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        build_sample(session)
        session.commit()
    return engine


@pytest.fixture(scope="session")
def pg_engine(cache_pg_url: str) -> Iterator[Engine]:
    engine = create_engine(cache_pg_url)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """The reference schema and sample data, fresh for this test, on SQLite and PostgreSQL."""
    if request.param == "postgresql":
        yield fresh_schema(request.getfixturevalue("pg_engine"))
        return
    engine = create_engine(f"sqlite:///{tmp_path / 'cache.db'}")
    yield fresh_schema(engine)
    engine.dispose()


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Engine]:
    engine = create_engine(f"sqlite:///{tmp_path / 'cache.db'}")
    yield fresh_schema(engine)
    engine.dispose()


class DatabaseCalls:
    """Statements that reached SQLite itself (its trace callback), not those the cache served."""

    def __init__(self, engine: Engine) -> None:
        self.sql: list[str] = []
        event.listen(engine, "connect", self._trace)
        engine.dispose()  # new connections get the callback

    def _trace(self, dbapi_connection: object, record: object) -> None:
        dbapi_connection.set_trace_callback(self._record)  # type: ignore[attr-defined]

    def _record(self, sql: str) -> None:
        if sql.lstrip().upper().startswith("SELECT"):
            self.sql.append(sql)

    def selects(self, fragment: str = "") -> int:
        return sum(fragment in sql for sql in self.sql)
