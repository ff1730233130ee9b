"""Fixtures for the structure tests: a database of the test's own on each server.

PostgreSQL tests get a schema of their own inside the run's private database (``pg_url``),
with ``btree_gist`` installed once in ``public``; MariaDB tests a database of their own;
SQLite a file in the test's temporary directory (threads and processes can share it).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url

from sqlaopt.booking import generate
from sqlaopt.booking.models import Base


@pytest.fixture(scope="session")
def pg_admin_engine(pg_url: str) -> Iterator[Engine]:
    """Autocommit engine on the run's private PostgreSQL database (btree_gist installed)."""
    engine = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS btree_gist SCHEMA public")
    yield engine
    engine.dispose()


def schema_url(pg_url: str, schema: str) -> tuple[str, dict[str, Any]]:
    """URL and connect arguments of an engine whose tables live in ``schema``."""
    return pg_url, {"options": f"-csearch_path={schema}"}


@pytest.fixture
def pg_schema(pg_url: str, pg_admin_engine: Engine) -> Iterator[str]:
    """A schema of this test's own (dropped afterwards)."""
    schema = f"st_{uuid.uuid4().hex[:10]}"
    with pg_admin_engine.connect() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    yield schema
    with pg_admin_engine.connect() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def pg(pg_url: str, pg_schema: str) -> Iterator[Engine]:
    """An engine whose unqualified tables live in this test's own schema."""
    url, connect_args = schema_url(pg_url, pg_schema)
    engine = create_engine(url, connect_args=connect_args)
    yield engine
    engine.dispose()


@pytest.fixture
def mariadb(mariadb_url: str) -> Iterator[Engine]:
    """An engine on a MariaDB database of this test's own."""
    name = f"st_{uuid.uuid4().hex[:10]}"
    admin = create_engine(mariadb_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    engine = create_engine(make_url(mariadb_url).set(database=name))
    yield engine
    engine.dispose()
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
    admin.dispose()


@pytest.fixture
def sqlite(tmp_path: Path) -> Iterator[Engine]:
    """A SQLite database in a file of this test's own."""
    engine = create_engine(f"sqlite:///{tmp_path / 'structure.db'}")
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def any_db(request: pytest.FixtureRequest) -> Engine:
    """An empty database of each kind."""
    name = {"postgresql": "pg", "mariadb": "mariadb", "sqlite": "sqlite"}[request.param]
    engine: Engine = request.getfixturevalue(name)
    return engine


@pytest.fixture
def booked(any_db: Engine) -> Engine:
    """The reference schema with 600 generated appointments (two barbers, two months)."""
    generate(any_db, 600)
    return any_db


def reference_tables(engine: Engine) -> None:
    Base.metadata.create_all(engine)
