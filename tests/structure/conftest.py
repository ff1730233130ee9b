"""Fixtures for the structure tests: a database of the test's own on each server.

PostgreSQL tests get a schema of their own inside the run's private database (``pg_url``),
with ``btree_gist`` installed once in ``public`` (``pg_admin``); MariaDB tests a database of
their own (``mariadb_engine``; both shared with the index tests); SQLite a file in the test's
temporary directory (threads and processes can share it).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine

from sqlaopt.booking import generate

from ..indexes.conftest import mariadb_engine, pg_admin

# The index tests' fixtures, shared.
__all__ = ["mariadb_engine", "pg_admin", "quick_deadlocks", "schema_url"]


def schema_url(pg_url: str, schema: str) -> tuple[str, dict[str, Any]]:
    """URL and connect arguments of an engine whose tables live in ``schema``."""
    return pg_url, {"options": f"-csearch_path={schema}"}


def quick_deadlocks(pg_url: str, schema: str) -> Engine:
    """An engine on ``schema`` whose sessions detect deadlocks after 20 ms, not 1 s: for
    tests where concurrent writers deadlock by design and retry or count it as a refusal."""
    options = f"-csearch_path={schema} -cdeadlock_timeout=20ms"
    return create_engine(pg_url, connect_args={"options": options})


@pytest.fixture
def pg_schema(pg_url: str, pg_admin: Engine) -> Iterator[str]:
    """A schema of this test's own (dropped afterwards)."""
    schema = f"st_{uuid.uuid4().hex[:10]}"
    with pg_admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    yield schema
    with pg_admin.connect() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def pg(pg_url: str, pg_schema: str) -> Iterator[Engine]:
    """An engine whose unqualified tables live in this test's own schema."""
    url, connect_args = schema_url(pg_url, pg_schema)
    engine = create_engine(url, connect_args=connect_args)
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite(tmp_path: Path) -> Iterator[Engine]:
    """A SQLite database in a file of this test's own."""
    engine = create_engine(f"sqlite:///{tmp_path / 'structure.db'}")
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def any_db(request: pytest.FixtureRequest) -> Engine:
    """An empty database of each kind."""
    name = {"postgresql": "pg", "mariadb": "mariadb_engine", "sqlite": "sqlite"}[request.param]
    engine: Engine = request.getfixturevalue(name)
    return engine


@pytest.fixture
def booked(any_db: Engine) -> Engine:
    """The reference schema with 600 generated appointments (two barbers, two months)."""
    generate(any_db, 600)
    return any_db
