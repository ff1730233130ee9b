"""ddl(): separate, idempotent statements per dialect, extension first."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from sqlaopt.indexes import REPORT, ddl

from .conftest import reference_copy


def test_postgresql_statements() -> None:
    statements = ddl()
    assert statements[0] == "CREATE EXTENSION IF NOT EXISTS btree_gist"
    indexes = [s for s in statements if s.startswith("CREATE INDEX")]
    assert len(indexes) == 13
    assert all(s.startswith("CREATE INDEX CONCURRENTLY IF NOT EXISTS ") for s in indexes)
    assert all(";" not in s for s in indexes)  # one statement each
    assert (
        statements[-1].startswith("DO $sqlaopt$")
        and "ADD CONSTRAINT no_double_booking EXCLUDE USING gist" in statements[-1]
    )
    assert (
        "IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'no_double_booking'"
        in statements[-1]
    )
    daily = next(s for s in statements if "idx_payments_daily_analytics" in s)
    assert daily.endswith(
        "ON payments (((created_at AT TIME ZONE 'UTC')::date), amount) WHERE status = 'completed'"
    )


def test_no_extension_when_nothing_needs_it() -> None:
    statements = ddl(REPORT.without("no_double_booking"))
    assert not any("btree_gist" in s for s in statements)


@pytest.mark.parametrize("dialect", ["mysql", "mariadb"])
def test_mysql_family_statements(dialect: str) -> None:
    statements = ddl(dialect=dialect)
    assert not any(" WHERE " in s for s in statements)  # partial became full, reported as adapted
    assert not any("EXCLUDE" in s or "date_trunc" in s for s in statements)
    prefix = "CREATE INDEX IF NOT EXISTS " if dialect == "mariadb" else "CREATE INDEX idx"
    assert all(s.startswith(prefix) for s in statements)
    expression = any("(date(" in s for s in statements)
    assert expression == (dialect == "mysql")  # MariaDB rejects expression key parts


# Running each statement twice is the point here; the N+1 detector would call it a repeat.
def test_sqlite_statements_run_and_run_again(sqlite_engine: Engine) -> None:
    metadata = reference_copy()
    metadata.create_all(sqlite_engine)
    statements = ddl(dialect="sqlite")
    assert all(s.startswith("CREATE INDEX IF NOT EXISTS ") for s in statements)
    with sqlite_engine.begin() as conn:
        for _ in range(2):  # idempotent
            for statement in statements:
                conn.exec_driver_sql(statement)
        count = conn.exec_driver_sql(
            "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name LIKE 'idx_%'"
        ).scalar()
    assert count == 13


def test_a_percent_sign_stays_single_in_the_text() -> None:
    from sqlaopt.indexes import IndexSpec

    spec = [IndexSpec("ix_pct", "payments", ["status"], where={"status": "100%"})]
    assert ddl(spec, "postgresql", reference_copy())[0].endswith("WHERE status = '100%'")


def test_a_backslash_is_not_doubled_for_postgresql() -> None:
    """standard_conforming_strings is on (PostgreSQL's default): '\\' is two backslashes."""
    from sqlaopt.indexes import IndexSpec

    spec = [IndexSpec("ix_bs", "payments", ["status"], where={"status": "a\\b"})]
    assert ddl(spec, "postgresql", reference_copy())[0].endswith("WHERE status = 'a\\b'")
