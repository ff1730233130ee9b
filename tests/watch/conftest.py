"""Fixtures for sqlaopt.watch: PostgreSQL with pg_stat_statements and HypoPG, MariaDB, and a
database of the reference schema filled with generated data.

Outside CI, a server without what a test needs skips it with the reason; with ``CI=true``
it fails (``.ci/run`` preloads pg_stat_statements, installs HypoPG and turns MariaDB's
performance_schema on).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text

from sqlaopt.booking import generate
from sqlaopt.booking.models import Base
from tests.booking.conftest import _sibling_database
from tests.conftest import IN_CI

#: Appointments in the generated database: a size at which PostgreSQL's plan
#: costs let every optimized flow's index prove a 2x cut (5,000 is too small: measured).
APPOINTMENTS = 20_000


def missing(what: str) -> None:
    """Skip (or, in CI, fail) a test whose server lacks ``what``."""
    message = f"the server has no {what}"
    if IN_CI:
        pytest.fail(f"{message}; CI requires it", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def pg_engine(pg_url: str) -> Iterator[Engine]:
    """The private PostgreSQL database with pg_stat_statements and hypopg created."""
    engine = create_engine(pg_url)
    with engine.begin() as conn:
        preload = conn.execute(text("SHOW shared_preload_libraries")).scalar() or ""
        available = set(conn.execute(text(
            "SELECT name FROM pg_available_extensions WHERE name IN "
            "('pg_stat_statements', 'hypopg')")).scalars())
    if "pg_stat_statements" not in preload or available != {"pg_stat_statements", "hypopg"}:
        engine.dispose()
        missing("pg_stat_statements preloaded and HypoPG installed")
    with engine.begin() as conn:
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_stat_statements"))
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS hypopg"))
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def mariadb_engine(mariadb_url: str) -> Iterator[Engine]:
    engine = create_engine(mariadb_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def performance_schema(mariadb_engine: Engine) -> Engine:
    """The MariaDB engine, when its server runs with performance_schema on."""
    with mariadb_engine.connect() as conn:
        row = conn.execute(text("SHOW GLOBAL VARIABLES LIKE 'performance_schema'")).first()
    if row is None or str(row[1]).upper() != "ON":
        missing("performance_schema (MariaDB needs performance_schema=ON and a restart)")
    return mariadb_engine


@pytest.fixture(scope="session")
def bookings(pg_engine: Engine, pg_url: str) -> Iterator[Engine]:
    """The reference schema with no secondary indexes and APPOINTMENTS generated
    appointments, in a database of its own, with HypoPG."""
    for url in _sibling_database(pg_url, " WITH (FORCE)", suffix="watch"):
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("CREATE EXTENSION hypopg"))
        Base.metadata.create_all(engine)
        generate(engine, APPOINTMENTS, progress=False)
        yield engine
        engine.dispose()


@pytest.fixture
def scratch_pg(pg_engine: Engine, pg_url: str) -> Iterator[str]:
    """A fresh empty PostgreSQL database for one test (extensions come and go in it)."""
    yield from _sibling_database(pg_url, " WITH (FORCE)", suffix="scratch")
