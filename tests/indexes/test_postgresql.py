"""check() and create() on a real PostgreSQL: present, missing, invalid, different, repaired."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from sqlaopt.indexes import (
    REPORT,
    IndexBuildError,
    IndexSpec,
    IndexSpecError,
    apply,
    check,
    create,
    ddl,
)

from .conftest import fill_sample, reference_copy

ALL = set(REPORT.names)


def bare_tables(engine: Engine) -> None:
    """The reference tables with no index of the spec (as a database before adoption)."""
    reference_copy().create_all(engine)


def statuses(engine: Engine) -> dict[str, str]:
    return check(engine).statuses()


def test_create_all_of_an_applied_model_then_check_reports_everything_present(
    pg_engine: Engine,
) -> None:
    metadata = reference_copy()
    apply(metadata)
    metadata.create_all(pg_engine)
    result = check(pg_engine, target=metadata)
    assert result.ok and set(result.statuses().values()) == {"present"}
    assert result.redundant == ()


def test_create_builds_what_is_missing_concurrently_and_is_safe_to_repeat(
    pg_engine: Engine,
) -> None:
    bare_tables(pg_engine)
    fill_sample(pg_engine)
    assert set(statuses(pg_engine).values()) == {"missing"}
    first = create(pg_engine)
    assert {a.action for a in first} == {"created"}
    assert first.preamble == ("CREATE EXTENSION IF NOT EXISTS btree_gist",)
    # Each CONCURRENTLY statement ran on its own: inside a transaction block it would fail.
    assert sum("CREATE INDEX CONCURRENTLY IF NOT EXISTS" in s for s in first.statements) == 13
    assert set(statuses(pg_engine).values()) == {"present"}
    second = create(pg_engine)
    assert {a.action for a in second} == {"present"} and second.statements == ()


def test_a_dropped_index_is_missing_and_create_repairs_it(pg_engine: Engine) -> None:
    bare_tables(pg_engine)
    create(pg_engine)
    with pg_engine.begin() as conn:
        conn.execute(text("DROP INDEX idx_payments_weekly_analytics"))
        conn.execute(text("ALTER TABLE appointments DROP CONSTRAINT no_double_booking"))
    result = check(pg_engine)
    assert not result.ok
    assert {p.name for p in result.problems} == {
        "idx_payments_weekly_analytics",
        "no_double_booking",
    }
    assert result["no_double_booking"].status == "missing"
    repaired = create(pg_engine)
    assert repaired["idx_payments_weekly_analytics"].action == "created"
    assert repaired["no_double_booking"].action == "created"
    assert check(pg_engine).ok


def test_an_interrupted_concurrent_build_leaves_an_invalid_index_that_create_rebuilds(
    pg_engine: Engine,
) -> None:
    bare_tables(pg_engine)
    fill_sample(pg_engine)
    create(pg_engine)
    name = "idx_payments_org_status_created"
    with pg_engine.begin() as conn:
        conn.execute(text(f"DROP INDEX {name}"))
    statement = next(s for s in ddl() if name in s)
    # An open writing transaction makes CREATE INDEX CONCURRENTLY wait after it has already
    # registered the index; the statement timeout cancels it there: an INVALID leftover.
    with pg_engine.connect() as writer, pg_engine.connect() as builder:
        writer.execute(text("UPDATE payments SET amount = amount WHERE id = 1"))
        builder.execution_options(isolation_level="AUTOCOMMIT")
        builder.execute(text("SET statement_timeout = '300ms'"))
        with pytest.raises(OperationalError, match="statement timeout"):
            builder.exec_driver_sql(statement)
        writer.rollback()
    result = check(pg_engine)
    assert result[name].status == "invalid"
    # IF NOT EXISTS alone would keep it: the rerun of the same statement is a no-op.
    with pg_engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(statement)
    assert check(pg_engine)[name].status == "invalid"
    repaired = create(pg_engine)
    assert repaired[name].action == "rebuilt"
    assert repaired[name].statements[0] == f"DROP INDEX CONCURRENTLY IF EXISTS {name}"
    assert check(pg_engine).ok


def test_a_failed_unique_build_is_reported_left_invalid_and_rebuilt_once_fixed(
    pg_engine: Engine,
) -> None:
    bare_tables(pg_engine)
    fill_sample(pg_engine)
    spec = [IndexSpec("ux_payment_status", "payments", ["barber_id", "status"], unique=True)]
    with pytest.raises(IndexBuildError, match="could not create unique index") as error:
        create(pg_engine, spec)
    assert error.value.result["ux_payment_status"].action == "failed"
    assert check(pg_engine, spec)["ux_payment_status"].status == "invalid"
    with pg_engine.begin() as conn:  # make the data fit the constraint
        conn.execute(
            text(
                "DELETE FROM payments WHERE id NOT IN "
                "(SELECT min(id) FROM payments GROUP BY barber_id, status)"
            )
        )
    assert create(pg_engine, spec)["ux_payment_status"].action == "rebuilt"
    assert check(pg_engine, spec).ok


def test_the_reports_own_sql_is_detected_as_different_and_left_alone(pg_engine: Engine) -> None:
    bare_tables(pg_engine)
    create(pg_engine, REPORT.without("idx_users_ltv_tracking"))
    with pg_engine.begin() as conn:  # as the report wrote it: upper-case role
        conn.execute(
            text(
                "CREATE INDEX idx_users_ltv_tracking ON users "
                "(lifetime_value, created_at, unified_role) WHERE unified_role = 'CLIENT'"
            )
        )
        conn.execute(text("DROP INDEX idx_appointments_org_status_date"))
        conn.execute(
            text(
                "CREATE INDEX idx_appointments_org_status_date ON appointments "
                "(organization_id, status, start_time)"
            )
        )  # the Phase 1 variant
    result = check(pg_engine)
    ltv = result["idx_users_ltv_tracking"]
    assert ltv.status == "different" and "'CLIENT'" in ltv.detail
    org = result["idx_appointments_org_status_date"]
    assert org.status == "different" and "key (organization_id, status, start_time)" in org.detail
    outcome = create(pg_engine)
    assert outcome["idx_users_ltv_tracking"].action == "different"
    assert outcome.statements == ()


def test_redundant_indexes_are_listed_and_exempt_ones_are_not(pg_engine: Engine) -> None:
    bare_tables(pg_engine)
    create(pg_engine)
    with pg_engine.begin() as conn:
        conn.execute(text("CREATE INDEX ix_pay_org ON payments (organization_id, status)"))
        conn.execute(text("CREATE UNIQUE INDEX ux_pay ON payments (organization_id, id)"))
        conn.execute(text("CREATE INDEX ix_pay_hash ON payments USING hash (organization_id)"))
        conn.execute(
            text("CREATE INDEX ix_appt_barber ON appointments (barber_id)")
        )  # entries are partial
        conn.execute(text("CREATE INDEX ix_users_lower ON users (lower(email))"))
    result = check(pg_engine)
    assert result.ok
    assert [(r.name, r.covered_by) for r in result.redundant] == [
        ("ix_pay_org", "idx_payments_org_status_created")
    ]
    assert "ix_pay_org on payments (organization_id, status) is covered by" in result.table()


def test_a_missing_table_is_named(pg_engine: Engine) -> None:
    result = check(pg_engine)
    assert result["idx_users_ltv_tracking"].detail == "table users does not exist"


def test_create_refuses_a_connection_inside_a_transaction(pg_engine: Engine) -> None:
    bare_tables(pg_engine)
    with pg_engine.connect() as conn:
        conn.execute(text("SELECT 1"))
        with pytest.raises(IndexSpecError, match="outside any transaction"):
            create(conn)
        conn.rollback()
        assert {a.action for a in create(conn)} == {"created"}  # now it is outside one
        assert conn.get_isolation_level() != "AUTOCOMMIT"  # and it is given back as it was


def test_a_session_is_a_bind(pg_engine: Engine) -> None:
    bare_tables(pg_engine)
    with Session(pg_engine) as session:
        create(session, REPORT.only("idx_users_ltv_tracking"))
        assert check(session, REPORT.only("idx_users_ltv_tracking")).ok


# The same statements run twice on purpose (idempotency), which the N+1 detector would flag.
def test_ddl_statements_run_as_printed_and_again(pg_engine: Engine) -> None:
    bare_tables(pg_engine)
    with pg_engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        for _ in range(2):
            for statement in ddl():
                conn.exec_driver_sql(statement)
    assert check(pg_engine).ok


def test_a_fresh_database_gets_btree_gist_from_create_and_from_create_all(
    pg_fresh_url: str,
) -> None:
    engine = create_engine(pg_fresh_url)
    try:
        bare_tables(engine)
        executed: list[str] = []
        event.listen(engine, "before_cursor_execute", lambda *args: executed.append(args[2]))
        assert create(engine)["no_double_booking"].action == "created"
        assert executed.index("CREATE EXTENSION IF NOT EXISTS btree_gist") < min(
            i for i, s in enumerate(executed) if "no_double_booking" in s
        )
        with engine.begin() as conn:
            conn.execute(text("DROP EXTENSION btree_gist CASCADE"))
            reference_copy().drop_all(conn)
        metadata = reference_copy()
        apply(metadata)
        metadata.create_all(engine)  # the before_create hook installs the extension
        assert check(engine, target=metadata).ok
    finally:
        engine.dispose()
