"""The MySQL-family rules on a real MariaDB: partial becomes full (adapted), expression
indexes are skipped with the reason and never emitted, check/create/explain work."""

from __future__ import annotations

import datetime as dt

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, func, select, text

from sqlaopt.booking.models import Appointment, Payment
from sqlaopt.explain import assert_uses_index, explain
from sqlaopt.indexes import (
    REPORT,
    alembic_include_object,
    apply,
    check,
    create,
    indexed_date,
    indexed_date_trunc,
)

from .conftest import fill_sample, record_statements, reference_copy

EXPRESSION_ENTRIES = {
    "idx_payments_daily_analytics",
    "idx_payments_weekly_analytics",
    "idx_appointments_daily_revenue_report",
}




def test_create_all_builds_partial_as_full_and_never_emits_expressions(
    mariadb_engine: Engine,
) -> None:
    metadata = reference_copy()
    result = apply(metadata)
    statements = record_statements(mariadb_engine)
    metadata.create_all(mariadb_engine)
    indexes = [s for s in statements if s.startswith("CREATE INDEX")]
    assert len(indexes) == len(REPORT) - len(EXPRESSION_ENTRIES) - 1  # minus the constraint
    assert not any("WHERE" in s or "date(" in s.lower() for s in indexes)
    assert not any("EXCLUDE" in s or "btree_gist" in s for s in statements)
    assert result["idx_users_ltv_tracking"].on("mariadb").status == "adapted"
    for name in EXPRESSION_ENTRIES:
        assert "MariaDB rejects expression key parts" in result[name].on("mariadb").detail
    checked = check(mariadb_engine, target=metadata)
    assert checked.dialect == "mariadb" and checked.ok
    skipped = {e.name for e in checked if e.status == "skipped"}
    assert skipped == EXPRESSION_ENTRIES | {"no_double_booking"}


def test_a_dropped_index_is_rebuilt_by_create(mariadb_engine: Engine) -> None:
    reference_copy().create_all(mariadb_engine)
    first = create(mariadb_engine)
    assert {a.action for a in first} == {"created", "skipped"}
    assert all("IF NOT EXISTS" in s for s in first.statements)  # MariaDB accepts it
    with mariadb_engine.begin() as conn:
        conn.execute(text("DROP INDEX idx_appointments_conflict_detection ON appointments"))
    assert check(mariadb_engine)["idx_appointments_conflict_detection"].status == "missing"
    assert create(mariadb_engine)["idx_appointments_conflict_detection"].action == "created"
    assert check(mariadb_engine).ok


def test_a_partial_entry_built_as_full_is_present_and_used(mariadb_engine: Engine) -> None:
    reference_copy().create_all(mariadb_engine)
    fill_sample(mariadb_engine)
    create(mariadb_engine)
    with mariadb_engine.connect() as conn:
        conn.execute(text("ANALYZE TABLE appointments"))
        statement = select(Appointment.id).where(
            Appointment.barber_id == 1,
            Appointment.status.in_(["confirmed", "pending"]),
            Appointment.start_time < dt.datetime(2025, 7, 1, 12),
            Appointment.end_time > dt.datetime(2025, 7, 1, 10),
        )
        assert_uses_index(conn, statement, "idx_appointments_conflict_detection")
        plan = explain(conn, statement)
        assert '"query_block"' in plan.text  # EXPLAIN FORMAT=JSON, walked for "key"


def test_the_query_helpers_work_on_mariadb(mariadb_engine: Engine) -> None:
    """No index there for these expressions, but the same query code must still run."""
    reference_copy().create_all(mariadb_engine)
    fill_sample(mariadb_engine)
    with mariadb_engine.connect() as conn:
        rows = conn.execute(
            select(
                indexed_date(Payment.created_at),
                indexed_date_trunc("week", Payment.created_at),
                indexed_date_trunc("month", Payment.created_at),
                Payment.created_at,
            )
        ).all()
        explained = explain(
            conn,
            select(func.count()).where(
                indexed_date_trunc("month", Payment.created_at) == dt.datetime(2025, 7, 1)
            ),
        )
    for day, week, month, created in rows:
        assert day == created.date()
        assert week == dt.datetime.combine(
            created.date() - dt.timedelta(days=created.weekday()), dt.time()
        )
        assert month == dt.datetime(created.year, created.month, 1)
    assert "%Y-%m-01" in explained.sql


def test_alembic_include_object_hides_what_mariadb_does_not_get(mariadb_engine: Engine) -> None:
    metadata = reference_copy()
    metadata.create_all(mariadb_engine)
    apply(metadata)
    with mariadb_engine.connect() as conn:
        plain = compare_metadata(MigrationContext.configure(conn), metadata)
        filtered = compare_metadata(
            MigrationContext.configure(
                conn, opts={"include_object": alembic_include_object(conn.dialect)}
            ),
            metadata,
        )
    added = {d[1].name for d in plain if d[0] == "add_index"}
    assert added >= EXPRESSION_ENTRIES  # autogenerate ignores ddl_if: it would emit them
    kept = {d[1].name for d in filtered if d[0] == "add_index"}
    assert not EXPRESSION_ENTRIES & kept and len(kept) == len(added) - len(EXPRESSION_ENTRIES)
