"""REPORT: every index of the report, deduplicated and corrected, each with its section."""

from __future__ import annotations

import re
from pathlib import Path

from sqlaopt.indexes import (
    REPORT,
    REPORT_ORIGINS,
    ExclusionSpec,
    IndexSpec,
    apply,
    date,
    date_trunc,
    eq,
    in_,
    tsrange,
)
from sqlaopt.indexes._predicates import canonical

from .conftest import reference_copy

# The report sits beside the project checkout (../shared); a bare clone skips that part.
REPORT_TEXT = Path(__file__).resolve().parents[3] / "shared" / "performance-report.md"


def test_every_create_index_of_the_report_is_accounted_for() -> None:
    if REPORT_TEXT.exists():  # the report lives next to the project, not in a clone
        named = re.findall(r"CREATE INDEX CONCURRENTLY (\w+)", REPORT_TEXT.read_text())
        in_scope = [n for n in named if n != "idx_barber_monthly_stats_lookup"]  # 6.1: a view
        assert sorted(in_scope) == sorted(name for _, name, _ in REPORT_ORIGINS)
    assert {target for _, _, target in REPORT_ORIGINS} == set(REPORT.names)
    assert len(REPORT_ORIGINS) == 17 and len(REPORT) == 14


def test_names_are_unique_and_portable() -> None:
    assert len(set(REPORT.names)) == len(REPORT)
    assert all(len(name) <= 63 for name in REPORT.names)


def test_the_name_collision_is_one_definition_whose_prefix_is_the_other() -> None:
    entry = REPORT["idx_appointments_org_status_date"]
    assert isinstance(entry, IndexSpec)
    phase_one = ("organization_id", "status", "start_time")
    assert entry.key_parts[:3] == phase_one
    assert entry.section == "2.1, 7" and "left prefix" in entry.note


def test_timestamptz_expressions_are_declared_portably() -> None:
    assert REPORT["idx_payments_daily_analytics"].key_parts[0] == date("created_at")
    assert REPORT["idx_payments_weekly_analytics"].key_parts[0] == date_trunc("week", "created_at")
    assert "IMMUTABLE" in REPORT["idx_payments_daily_analytics"].note


def test_the_gist_index_became_the_exclusion_constraint() -> None:
    assert "idx_appointments_time_range" not in REPORT
    constraint = REPORT["no_double_booking"]
    assert isinstance(constraint, ExclusionSpec)
    assert constraint.elements == (
        ("barber_id", "="),
        (tsrange("start_time", "end_time", "[)"), "&&"),
    )
    assert canonical(constraint.conditions) == canonical([in_("status", ["confirmed", "pending"])])
    assert "btree_gist" in constraint.note


def test_predicates_are_exact_and_roles_lower_case() -> None:
    assert REPORT["idx_users_ltv_tracking"].conditions == (eq("unified_role", "client"),)
    assert "CLIENT" in REPORT["idx_users_ltv_tracking"].note
    completed = (eq("status", "completed"),)
    for name in (
        "idx_payments_analytics_optimized",
        "idx_payments_daily_analytics",
        "idx_appointments_revenue_tracking",
        "idx_appointments_daily_revenue_report",
    ):
        assert REPORT[name].conditions == completed
    assert not REPORT["idx_appointments_org_status_date"].conditions


def test_a_key_column_pinned_by_the_predicate_is_left_out() -> None:
    """``(status, created_at) WHERE status = 'completed'``: PostgreSQL drops the implied
    condition, so a leading status kept created_at from bounding the scan (see the query
    pattern tests, where the planner then preferred another index)."""
    for entry in REPORT:
        pinned = {c.column for c in entry.conditions if c.op == "="}
        assert not pinned & set(entry.key_parts), entry.name
    assert REPORT["idx_payments_analytics_optimized"].key_parts == (
        "created_at",
        "amount",
        "user_id",
    )
    conflict = REPORT["idx_appointments_conflict_detection"]
    assert "status" in conflict.key_parts  # IN ('confirmed', 'pending') pins nothing


def test_duplicates_were_merged_with_both_sections() -> None:
    assert REPORT["idx_payments_analytics_optimized"].section == "1.1, 7"
    assert REPORT["idx_appointments_conflict_detection"].section == "1.2, 7"
    assert all(entry.section for entry in REPORT)


# What each database gets for the reference schema: the dialect rules, entry by entry.
EXPECTED = {
    # name: (postgresql, sqlite, mysql, mariadb)
    "idx_payments_analytics_optimized": ("applied", "applied", "adapted", "adapted"),
    "idx_payments_daily_analytics": ("adapted", "applied", "adapted", "skipped"),
    "idx_payments_weekly_analytics": ("adapted", "applied", "skipped", "skipped"),
    "idx_appointments_conflict_detection": ("applied", "applied", "adapted", "adapted"),
    "no_double_booking": ("applied", "skipped", "skipped", "skipped"),
    "idx_appointments_org_status_date": ("applied",) * 4,
    "idx_payments_org_status_created": ("applied",) * 4,
    "idx_users_org_role_active": ("applied",) * 4,
    "idx_appointments_revenue_tracking": ("applied", "applied", "adapted", "adapted"),
    "idx_payments_commission_calculations": ("applied", "applied", "adapted", "adapted"),
    "idx_users_ltv_tracking": ("applied", "applied", "adapted", "adapted"),
    "idx_appointments_daily_revenue_report": ("applied", "applied", "adapted", "skipped"),
    "idx_clients_retention_analysis": ("applied",) * 4,
    "idx_ai_insights_cache_lookup": ("applied",) * 4,
}


def test_per_dialect_status_on_the_reference_schema() -> None:
    result = apply(reference_copy())
    actual = {
        e.name: tuple(e.on(d).status for d in ("postgresql", "sqlite", "mysql", "mariadb"))
        for e in result
    }
    assert actual == EXPECTED
    assert all(e.status == "applied" for e in result)  # schema-level: nothing renamed or cut
    assert "btree_gist" in result["no_double_booking"].on("postgresql").detail
    assert "AT TIME ZONE 'UTC'" in result["idx_payments_daily_analytics"].on("postgresql").detail
    assert "error 1064" in result["idx_payments_daily_analytics"].on("mariadb").detail
    assert "full index" in result["idx_users_ltv_tracking"].on("mysql").detail
