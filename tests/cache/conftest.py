"""Fixtures for the cache tests: a database of their own (they commit), Redis, installs.

The cache tests commit writes, so they never use the shared read-only ``booking_engine``:
``cache_db`` is the reference schema with the sample data, rebuilt for each test, on SQLite (a
file, so each Session has its own connection) and on a private PostgreSQL database. Redis
keys live under a namespace unique to this test run and each test, deleted afterwards.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, delete, event, insert, select
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


@contextlib.contextmanager
def installed_on(backend: object, namespace: str) -> Iterator[str]:
    """The cache installed on ``backend`` for the block; its keys deleted afterwards."""
    cache.install(backend, namespace=namespace)
    try:
        yield namespace
    finally:
        cache.clear()
        cache.uninstall()


@pytest.fixture
def installed(backend: str | None, namespace: str) -> Iterator[str]:
    """The cache installed on each backend; yields the namespace."""
    with installed_on(backend, namespace):
        yield namespace


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


class Sample:
    """The sample data of one engine, put back in a few milliseconds (no DDL)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = fresh_schema(engine)
        with engine.connect() as conn:
            self.rows = {table: [dict(row._mapping) for row in conn.execute(select(table))]
                         for table in Base.metadata.sorted_tables}

    def restore(self) -> Engine:
        with self.engine.begin() as conn:
            for table in reversed(Base.metadata.sorted_tables):
                conn.execute(delete(table))
            for table, rows in self.rows.items():
                if rows:
                    conn.execute(insert(table), rows)
        return self.engine


@pytest.fixture(scope="session")
def pg_sample(cache_pg_url: str) -> Iterator[Sample]:
    engine = create_engine(cache_pg_url)
    yield Sample(engine)
    engine.dispose()


@pytest.fixture(scope="session")
def sqlite_sample(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sample]:
    engine = create_engine(f"sqlite:///{tmp_path_factory.mktemp('cache') / 'cache.db'}")
    yield Sample(engine)
    engine.dispose()


@pytest.fixture
def pg_engine(pg_sample: Sample) -> Engine:
    """PostgreSQL with the sample data as built."""
    return pg_sample.restore()


@pytest.fixture
def sqlite_db(sqlite_sample: Sample) -> Engine:
    """SQLite (a file: each Session its own connection) with the sample data as built."""
    return sqlite_sample.restore()


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest) -> Engine:
    """The sample data as built, on SQLite and PostgreSQL."""
    fixture = "sqlite_db" if request.param == "sqlite" else "pg_engine"
    engine: Engine = request.getfixturevalue(fixture)
    return engine


class DatabaseCalls:
    """Statements that reached SQLite itself (its trace callback), not those the cache served."""

    def __init__(self) -> None:
        self.sql: list[str] = []

    def trace(self, dbapi_connection: object, record: object) -> None:
        dbapi_connection.set_trace_callback(self._record)  # type: ignore[attr-defined]

    def _record(self, sql: str) -> None:
        if sql.lstrip().upper().startswith("SELECT"):
            self.sql.append(sql)

    def selects(self, fragment: str = "") -> int:
        return sum(fragment in sql for sql in self.sql)


@pytest.fixture
def sqlite_calls(sqlite_db: Engine) -> Iterator[DatabaseCalls]:
    """What reaches SQLite from ``sqlite_db`` during the test."""
    calls = DatabaseCalls()
    event.listen(sqlite_db, "connect", calls.trace)
    sqlite_db.dispose()  # new connections get the callback
    yield calls
    event.remove(sqlite_db, "connect", calls.trace)
    sqlite_db.dispose()
