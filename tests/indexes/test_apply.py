"""apply(): attach real schema objects, fit them to the target, refuse before changing anything."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from sqlalchemy import Column, DateTime, Engine, Index, Integer, MetaData, Table
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.dialects.postgresql import ExcludeConstraint
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.schema import CreateIndex

from sqlaopt.indexes import (
    REPORT,
    IndexSpec,
    IndexSpecError,
    IndexSpecWarning,
    Spec,
    apply,
    date,
    date_trunc,
    ddl,
    eq,
)

from .backend_schema import BACKEND_RENAMES, backend_base
from .conftest import record_statements, reference_copy


def snapshot(metadata: MetaData) -> dict[str, tuple[str, ...]]:
    """Every index and constraint name per table: what 'nothing changed' compares."""
    return {
        t.name: tuple(sorted(str(x.name) for x in [*t.indexes, *t.constraints]))
        for t in metadata.tables.values()
    }




def test_apply_attaches_real_indexes_and_the_exclusion_constraint() -> None:
    metadata = reference_copy()
    result = apply(metadata)
    payments = metadata.tables["payments"]
    names = {ix.name for ix in payments.indexes}
    assert {"idx_payments_analytics_optimized", "idx_payments_daily_analytics"} <= names
    [constraint] = [
        c for c in metadata.tables["appointments"].constraints if isinstance(c, ExcludeConstraint)
    ]
    assert constraint.name == "no_double_booking"
    assert result.with_status("applied") == REPORT.names


def test_a_declarative_base_is_a_target() -> None:
    class FreshBase(DeclarativeBase):
        metadata = reference_copy()

    result = apply(FreshBase)
    assert len(result) == len(REPORT)
    assert any(
        ix.name == "idx_users_ltv_tracking" for ix in FreshBase.metadata.tables["users"].indexes
    )


def test_applying_twice_is_a_no_op() -> None:
    metadata = reference_copy()
    first = apply(metadata)
    before = snapshot(metadata)
    second = apply(metadata)
    assert second == first
    assert snapshot(metadata) == before
    # The btree_gist hook is attached once, not once per apply().
    assert len(list(metadata.tables["appointments"].dispatch.before_create)) == 1


def test_a_changed_definition_under_an_applied_name_is_refused() -> None:
    metadata = reference_copy()
    apply(metadata, REPORT.only("idx_users_ltv_tracking"))
    before = snapshot(metadata)
    changed = IndexSpec("idx_users_ltv_tracking", "users", ["lifetime_value"])
    with pytest.raises(IndexSpecError, match="was applied before as"):
        apply(metadata, [changed])
    assert snapshot(metadata) == before


def test_a_model_index_with_the_same_name_is_refused() -> None:
    metadata = reference_copy()
    Index("idx_users_ltv_tracking", metadata.tables["users"].c.email)
    before = snapshot(metadata)
    with pytest.raises(IndexSpecError, match="already declares 'idx_users_ltv_tracking'"):
        apply(metadata)
    assert snapshot(metadata) == before


def test_timestamptz_gets_the_timezone_safe_form_automatically() -> None:
    metadata = MetaData()
    table = Table(
        "events",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("at_tz", DateTime(timezone=True)),
        Column("at", DateTime),
    )
    spec = [
        IndexSpec("ix_tz", "events", [date("at_tz")]),
        IndexSpec("ix_plain", "events", [date("at")]),
        IndexSpec("ix_week", "events", [date_trunc("week", "at_tz")]),
    ]
    result = apply(metadata, spec)
    sql = {
        ix.name: str(CreateIndex(ix).compile(dialect=postgresql.dialect())) for ix in table.indexes
    }
    assert "(((at_tz AT TIME ZONE 'UTC')::date))" in sql["ix_tz"]
    assert "(date(at))" in sql["ix_plain"]
    assert "date_trunc('week', (at_tz AT TIME ZONE 'UTC'))" in sql["ix_week"]
    assert result["ix_tz"].on("postgresql").status == "adapted"
    assert result["ix_plain"].on("postgresql").status == "applied"


def test_create_all_on_sqlite_follows_the_dialect_rules(sqlite_engine: Engine) -> None:
    """GiST, INCLUDE and exclusion entries never reach SQLite, where SQLAlchemy would drop
    their options silently and build something else."""
    metadata = reference_copy()
    extra = [
        IndexSpec("ix_cover", "payments", ["barber_id"], include=["amount"]),
        IndexSpec("ix_brin", "payments", ["created_at"], using="brin"),
        IndexSpec("ix_hash", "payments", ["status"], using="hash"),
    ]
    apply(metadata, [*REPORT, *extra])
    statements = record_statements(sqlite_engine)
    metadata.create_all(sqlite_engine)
    text = "\n".join(statements)
    for name in ("ix_cover", "ix_brin", "ix_hash", "no_double_booking", "EXCLUDE", "btree_gist"):
        assert name not in text
    assert "CREATE INDEX idx_payments_weekly_analytics ON payments (strftime(" in text


def test_mysql_family_never_gets_a_silently_widened_unique_index() -> None:
    metadata = reference_copy()
    spec = [
        IndexSpec(
            "ux_open",
            "appointments",
            ["barber_id", "start_time"],
            unique=True,
            where=eq("status", "confirmed"),
        )
    ]
    result = apply(metadata, spec)
    assert result["ux_open"].on("mysql").status == "skipped"
    assert "stricter" in result["ux_open"].on("mariadb").detail
    assert ddl(spec, "mysql", metadata) == []


def test_the_rendering_per_dialect() -> None:
    metadata = reference_copy()
    apply(metadata)
    index = next(
        ix
        for ix in metadata.tables["appointments"].indexes
        if ix.name == "idx_appointments_daily_revenue_report"
    )
    assert str(CreateIndex(index).compile(dialect=sqlite.dialect())).endswith(
        "(date(start_time), price, barber_id) WHERE status = 'completed'"
    )
    assert "((date(start_time)), price" in str(CreateIndex(index).compile(dialect=mysql.dialect()))


# --- the real backend's schema ---------------------------------------------------------------


def test_real_backend_schema_raises_a_helpful_error_and_changes_nothing() -> None:
    base = backend_base()
    before = snapshot(base.metadata)
    with pytest.raises(IndexSpecError) as error:
        apply(base)
    message = str(error.value)
    assert (
        "idx_appointments_conflict_detection: table 'appointments' has no column 'end_time'"
        in message
    )
    assert "(columns: id, user_id, barber_id, client_id, organization_id, start_time," in message
    assert "no column 'last_visit' (did you mean 'last_visit_date'?)" in message
    assert "table 'users' has no column 'organization_id'" in message
    assert "table 'clients' has no column 'user_id'" in message
    assert (
        "no table 'ai_insight_cache' in the target (did you mean 'ai_insights_cache'?)" in message
    )
    assert "rename=" in message and "Nothing was attached" in message
    assert snapshot(base.metadata) == before


def test_real_backend_schema_with_warn_and_rename_gives_a_sensible_partial_result() -> None:
    base = backend_base()
    with pytest.warns(IndexSpecWarning) as caught:
        result = apply(base, on_missing="warn", rename=BACKEND_RENAMES)
    statuses = {e.name: e.status for e in result}
    assert statuses == {
        "idx_payments_analytics_optimized": "applied",
        "idx_payments_daily_analytics": "applied",
        "idx_payments_weekly_analytics": "applied",
        # end_time is missing: the key keeps its prefix (barber_id, status, start_time).
        "idx_appointments_conflict_detection": "adapted",
        "no_double_booking": "skipped",
        "idx_appointments_org_status_date": "adapted",
        "idx_payments_org_status_created": "applied",
        "idx_users_org_role_active": "skipped",  # its first column does not exist
        "idx_appointments_revenue_tracking": "applied",
        "idx_payments_commission_calculations": "applied",
        "idx_users_ltv_tracking": "applied",
        "idx_appointments_daily_revenue_report": "applied",
        "idx_clients_retention_analysis": "adapted",  # renamed columns
        "idx_ai_insights_cache_lookup": "adapted",  # renamed table
    }
    conflict = result["idx_appointments_conflict_detection"]
    assert conflict.definition is not None
    assert conflict.definition.key_parts == ("barber_id", "status", "start_time")
    assert "left prefix (barber_id, status, start_time)" in conflict.changes[0]
    assert "end_time" in (result["no_double_booking"].reason or "")
    assert "first key column is missing" in (result["idx_users_org_role_active"].reason or "")
    retention = result["idx_clients_retention_analysis"].definition
    assert retention is not None and retention.key_parts[:2] == ("barber_id", "last_visit_date")
    assert len(caught) == 4  # one per entry that did not fit as declared
    tables = base.metadata.tables
    assert "idx_ai_insights_cache_lookup" in {ix.name for ix in tables["ai_insights_cache"].indexes}
    assert not [c for c in tables["appointments"].constraints if isinstance(c, ExcludeConstraint)]


def test_skip_is_warn_without_warnings() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = apply(backend_base(), on_missing="skip", rename=BACKEND_RENAMES)
    assert result["idx_users_org_role_active"].status == "skipped"


def test_a_missing_table_is_skipped_with_a_suggestion() -> None:
    result = apply(
        backend_base(), on_missing="skip", rename={"clients.last_visit": "last_visit_date"}
    )
    reason = result["idx_ai_insights_cache_lookup"].reason or ""
    assert result["idx_ai_insights_cache_lookup"].status == "skipped"
    assert "no table 'ai_insight_cache' in the target (did you mean 'ai_insights_cache'?)" in reason
    assert result["idx_ai_insights_cache_lookup"].on("postgresql").status == "skipped"


def test_the_other_operations_reuse_the_applied_outcome() -> None:
    base = backend_base()
    apply(base, on_missing="skip", rename=BACKEND_RENAMES)
    statements = ddl(target=base)
    assert not any("no_double_booking" in s or "idx_users_org_role_active" in s for s in statements)
    assert any(
        "idx_appointments_conflict_detection ON appointments (barber_id, status, start_time)" in s
        for s in statements
    )
    assert any("ON ai_insights_cache (user_id" in s for s in statements)


# --- bad input: a clear error, nothing half-applied ------------------------------------------


@pytest.mark.parametrize(
    ("spec", "kwargs", "message"),
    [
        (
            [IndexSpec("ix_a", "paymnets", ["status"])],
            {},
            r"no table 'paymnets'.*did you mean 'payments'",
        ),
        (
            [IndexSpec("ix_a", "payments", ["stauts"])],
            {},
            r"no column 'stauts' \(did you mean 'status'\?\)",
        ),
        (
            [IndexSpec("ix_a", "payments", ["status"], where=eq("state", "x"))],
            {},
            "no column 'state'",
        ),
        ([IndexSpec("ix_a", "payments", [date("status")])], {}, "needs a date or timestamp column"),
        ([IndexSpec("ix_a", "payments", [date("status")])], {"on_missing": "skip"}, "needs a date"),
        (
            [IndexSpec("ix_a", "payments", ["status"])],
            {"rename": {"payment": "x"}},
            "did you mean 'payments'",
        ),
        (
            [IndexSpec("ix_a", "payments", ["status"])],
            {"rename": {"payments.stat": "x"}},
            "not a column the spec uses",
        ),
        (
            [IndexSpec("ix_a", "payments", ["status"])],
            {"on_missing": "ignore"},
            "on_missing must be",
        ),
        ([IndexSpec("payments", "payments", ["status"])], {}, "also a table name"),
    ],
)
def test_bad_input_is_a_clear_error_and_nothing_is_attached(
    spec: list[IndexSpec], kwargs: dict[str, Any], message: str
) -> None:
    metadata = reference_copy()
    before = snapshot(metadata)
    with pytest.raises(IndexSpecError, match=message):
        apply(metadata, [*REPORT.only("idx_users_ltv_tracking"), *spec], **kwargs)
    assert snapshot(metadata) == before  # the valid entry before it was not attached either


def test_predicate_on_a_missing_column_is_skipped_with_the_reason_when_warned() -> None:
    spec = [IndexSpec("ix_a", "payments", ["status"], where=eq("state", "x"))]
    with pytest.warns(IndexSpecWarning, match="predicate reads a missing column"):
        result = apply(reference_copy(), spec, on_missing="warn")
    assert result["ix_a"].status == "skipped"


def test_unknown_dialect_and_target() -> None:
    with pytest.raises(
        IndexSpecError, match=r"unknown dialect 'postgres' \(did you mean 'postgresql'\?\)"
    ):
        ddl(dialect="postgres")
    with pytest.raises(IndexSpecError, match="target must be a MetaData"):
        apply(object())


def test_a_plain_list_is_a_spec() -> None:
    entries = [IndexSpec("ix_status", "payments", ["status"])]
    assert apply(reference_copy(), entries).names == ("ix_status",)
    assert Spec(entries).names == ("ix_status",)


def test_the_result_reads_as_a_table() -> None:
    result = apply(backend_base(), on_missing="skip", rename=BACKEND_RENAMES)
    text = result.table()
    assert text.splitlines()[0].split() == ["entry", "table", "status", "detail"]
    assert "idx_users_org_role_active" in text and "skipped" in text
    assert "error 1064" in result.table("mariadb")
    assert str(result["idx_users_org_role_active"]).startswith(
        "idx_users_org_role_active: skipped ("
    )
    with pytest.raises(KeyError, match="did you mean"):
        result["idx_users_ltv_trackin"]
