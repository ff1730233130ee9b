"""Fixtures for the booking tests: databases of their own, DDL and data helpers.

PostgreSQL and MariaDB tests here run in a database of their own next to the run's private one
(``<name>_booking``), so dropping tables or adding the exclusion constraint never touches what
other test packages see.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, delete, insert, text
from sqlalchemy.engine import make_url

from sqlaopt.booking import EXCLUSION_CONSTRAINT
from sqlaopt.booking.models import Base

from ..conftest import sqlite_engine

__all__ = ["add_exclusion_constraint", "fresh_schema", "replace_rows", "sqlite_engine"]


def _sibling_database(url: str, drop_suffix: str, suffix: str = "booking") -> Iterator[str]:
    """Create ``<database>_<suffix>`` on the server behind ``url``; yield its URL; drop it."""
    parsed = make_url(url)
    name = f"{parsed.database}_{suffix}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name}{drop_suffix}"))
        conn.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield parsed.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name}{drop_suffix}"))
        admin.dispose()


@pytest.fixture(scope="session")
def pg_booking_engine(pg_url: str) -> Iterator[Engine]:
    """An engine on a PostgreSQL database used only by the booking tests."""
    for url in _sibling_database(pg_url, " WITH (FORCE)"):
        engine = create_engine(url)
        yield engine
        engine.dispose()


@pytest.fixture(scope="session")
def mariadb_booking_engine(mariadb_url: str) -> Iterator[Engine]:
    """An engine on a MariaDB database used only by the booking tests."""
    for url in _sibling_database(mariadb_url, ""):
        engine = create_engine(url)
        yield engine
        engine.dispose()


def fresh_schema(engine: Engine, *, exclusion_constraint: bool = False) -> None:
    """Drop and recreate the reference schema; optionally add ``no_double_booking``."""
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    if exclusion_constraint:
        add_exclusion_constraint(engine)


def add_exclusion_constraint(engine: Engine) -> None:
    """The report's booking guarantee on PostgreSQL (needs the btree_gist extension)."""
    with engine.begin() as conn:
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS btree_gist"))
        conn.execute(
            text(
                f"ALTER TABLE appointments ADD CONSTRAINT {EXCLUSION_CONSTRAINT} "
                "EXCLUDE USING gist (barber_id WITH =, tsrange(start_time, end_time, '[)') "
                "WITH &&) WHERE (status IN ('confirmed', 'pending'))"
            )
        )


def replace_rows(engine: Engine, rows: Mapping[str, Sequence[Mapping[str, Any]]]) -> None:
    """Empty every table of the reference schema, then insert ``rows`` (table name → rows)."""
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(delete(table))
        for table in Base.metadata.sorted_tables:
            if rows.get(table.name):
                conn.execute(insert(table), list(rows[table.name]))
