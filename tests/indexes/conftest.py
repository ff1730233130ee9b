"""Fixtures for the index spec tests: fresh schema copies and private database namespaces.

``apply()`` mutates Tables, so no test touches the shared reference ``Base.metadata``: each
builds a fresh copy with :func:`reference_copy`. PostgreSQL tests get a schema of their own
inside the run's private database (``pg_url``), MariaDB tests a database of their own on the
server behind ``mariadb_url``; both are dropped afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, MetaData, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

from sqlaopt.booking import SampleSize, build_sample
from sqlaopt.booking.models import Base
from sqlaopt.indexes import Spec, apply, create
from sqlaopt.indexes._build import private_copy


def reference_copy() -> MetaData:
    """A fresh MetaData with the reference schema's tables and none of sqlaopt's objects
    (even if some other code applied the spec to the shared ``Base``)."""
    return private_copy(Base.metadata)


def fill_sample(engine: Engine, size: SampleSize | None = None) -> None:
    """The deterministic sample rows (the ORM classes map the same table names)."""
    with Session(engine) as session:
        build_sample(session, size or SampleSize())


def memory_sqlite() -> Engine:
    """An in-memory SQLite database shared by every connection of the engine."""
    return create_engine(
        "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
    )


@pytest.fixture
def sqlite_engine() -> Iterator[Engine]:
    """A private in-memory SQLite database."""
    engine = memory_sqlite()
    yield engine
    engine.dispose()


def in_schema(pg_url: str, schema: str, **kwargs: Any) -> Engine:
    """An engine whose search path is ``schema`` alone: other tests' tables (the shared
    ``booking_engine`` fixture's, in ``public``) are invisible, so ``create_all`` never skips
    a table because one of that name exists elsewhere."""
    return create_engine(pg_url, connect_args={"options": f"-csearch_path={schema}"}, **kwargs)


@pytest.fixture(scope="session")
def pg_admin(pg_url: str) -> Iterator[Engine]:
    """An autocommit engine on the run's private PostgreSQL database, with btree_gist
    installed once (GiST finds its operator classes whatever the search path)."""
    engine = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS btree_gist SCHEMA public")
    yield engine
    engine.dispose()


@pytest.fixture
def pg_engine(pg_url: str, pg_admin: Engine) -> Iterator[Engine]:
    """An engine whose unqualified tables live in a schema of this test's own."""
    schema = f"ix_{uuid.uuid4().hex[:10]}"
    with pg_admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    engine = in_schema(pg_url, schema)
    yield engine
    engine.dispose()
    with pg_admin.connect() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def pg_fresh_url(pg_url: str, pg_admin: Engine) -> Iterator[str]:
    """A brand-new PostgreSQL database (no btree_gist), dropped afterwards."""
    name = f"ix_fresh_{uuid.uuid4().hex[:10]}"
    with pg_admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    yield make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    with pg_admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def mariadb_engine(mariadb_url: str) -> Iterator[Engine]:
    """An engine on a MariaDB database of this test's own."""
    name = f"ix_{uuid.uuid4().hex[:10]}"
    admin = create_engine(mariadb_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    engine = create_engine(make_url(mariadb_url).set(database=name))
    yield engine
    engine.dispose()
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
    admin.dispose()


def sample_with_indexes(
    request: pytest.FixtureRequest, spec: Spec, size: SampleSize
) -> Iterator[Connection]:
    """A connection to ``size`` sample rows with ``spec`` built, on ``request.param``'s database.

    SQLite: no ANALYZE (with statistics of a 3-organization sample it prefers skip-scans of a
    covering index, a choice that only holds for so few organizations). PostgreSQL: analysed,
    in a schema of its own, with ``enable_seqscan = off``: on tables this small a sequential
    scan is the cheapest plan for most queries, so the question becomes "which index serves
    this query best".
    """
    if request.param == "sqlite":
        engine = memory_sqlite()
        metadata = reference_copy()
        apply(metadata, spec)
        metadata.create_all(engine)
        fill_sample(engine, size)
        with engine.connect() as conn:
            yield conn
        engine.dispose()
        return
    pg_url: str = request.getfixturevalue("pg_url")
    admin: Engine = request.getfixturevalue("pg_admin")
    schema = f"ix_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    engine = in_schema(pg_url, schema)
    reference_copy().create_all(engine)
    fill_sample(engine, size)
    create(engine, spec)  # CONCURRENTLY, as in production
    with engine.connect() as conn:
        conn.execute(text("ANALYZE"))
        conn.execute(text("SET enable_seqscan = off"))
        yield conn
    engine.dispose()
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")


def record_statements(engine: Engine) -> list[str]:
    """A list that every statement ``engine`` sends to the driver is appended to, from now on."""
    statements: list[str] = []
    event.listen(
        engine,
        "before_cursor_execute",
        lambda conn, cursor, statement, *rest: statements.append(statement),
    )
    return statements
