"""REPORT: every index of the performance report, deduplicated and corrected.

The report (sections 1.1, 1.2, 2.1, 2.2, 2.3 and the Phase 1 list in section 7) gives 17
``CREATE INDEX`` statements. Three Phase 1 statements repeat earlier ones (one of them with
different columns under the same name), and the GiST "time range" index is replaced by the
``no_double_booking`` exclusion constraint, which prevents double booking and whose own GiST
index serves the same lookups. That leaves 13 indexes and one constraint. A key column that
an equality predicate pins (``status`` in ``... (status, created_at) WHERE status =
'completed'``) is left out of the key: PostgreSQL drops the implied condition from the index
conditions, so the column bounded nothing and stopped the next one from bounding the scan.
Each entry's ``note`` says what was corrected; an empty note means the report's SQL is used
as written.
"""

from __future__ import annotations

from ._predicates import in_
from ._spec import ExclusionSpec, IndexSpec, Spec, date, date_trunc, tsrange

__all__ = ["REPORT", "REPORT_ORIGINS", "SUPPLEMENT"]

_COMPLETED = {"status": "completed"}
# A key column the predicate fixes to one value: PostgreSQL removes the implied condition from
# the index conditions, so the column bounds nothing and pushes the useful ones to the right
# (verified: with it leading, a created_at range scanned the whole index).
_PINNED = (
    "status is fixed by the predicate; PostgreSQL drops it from the index conditions, so as "
    "a key column it only kept the next column from bounding the scan: left out of the key."
)
_OPEN = in_("status", ["confirmed", "pending"])

REPORT = Spec(
    [
        IndexSpec(
            "idx_payments_analytics_optimized",
            "payments",
            ["created_at", "amount", "user_id"],
            where=_COMPLETED,
            section="1.1, 7",
            note="Listed twice (1.1, Phase 1): kept once. " + _PINNED,
        ),
        IndexSpec(
            "idx_payments_daily_analytics",
            "payments",
            [date("created_at"), "amount"],
            where=_COMPLETED,
            section="1.1",
            note="DATE() on timestamptz is not IMMUTABLE and the index fails: PostgreSQL gets "
            "((created_at AT TIME ZONE 'UTC')::date). status, pinned by the predicate, is "
            "left out of the key.",
        ),
        IndexSpec(
            "idx_payments_weekly_analytics",
            "payments",
            [date_trunc("week", "created_at"), "amount"],
            where=_COMPLETED,
            section="1.1",
            note="date_trunc() on timestamptz is not IMMUTABLE: PostgreSQL gets "
            "date_trunc('week', created_at AT TIME ZONE 'UTC'). status, pinned by the "
            "predicate, is left out of the key.",
        ),
        IndexSpec(
            "idx_appointments_conflict_detection",
            "appointments",
            ["barber_id", "status", "start_time", "end_time"],
            where=_OPEN,
            section="1.2, 7",
            note="Listed twice (1.2 and the Phase 1 list) with the same definition: kept once.",
        ),
        ExclusionSpec(
            "no_double_booking",
            "appointments",
            [("barber_id", "="), (tsrange("start_time", "end_time", "[)"), "&&")],
            where=_OPEN,
            section="1.2",
            note="Replaces idx_appointments_time_range: a GiST index cannot prevent double "
            "booking, this constraint can, and its own GiST index serves the same lookups "
            "(needs btree_gist; '[)' lets back-to-back slots through).",
        ),
        IndexSpec(
            "idx_appointments_org_status_date",
            "appointments",
            ["organization_id", "status", "start_time", "end_time"],
            section="2.1, 7",
            note="The name was used twice (2.1 with end_time, Phase 1 without): one "
            "definition, whose left prefix is the Phase 1 one, serves both.",
        ),
        IndexSpec(
            "idx_payments_org_status_created",
            "payments",
            ["organization_id", "status", "created_at", "amount"],
            section="2.1",
        ),
        IndexSpec(
            "idx_users_org_role_active",
            "users",
            ["organization_id", "unified_role", "is_active"],
            section="2.1",
        ),
        IndexSpec(
            "idx_appointments_revenue_tracking",
            "appointments",
            ["barber_id", "start_time", "price"],
            where=_COMPLETED,
            section="2.2",
            note=_PINNED,
        ),
        IndexSpec(
            "idx_payments_commission_calculations",
            "payments",
            ["barber_id", "created_at", "amount", "commission_rate"],
            where=_COMPLETED,
            section="2.2",
            note=_PINNED,
        ),
        IndexSpec(
            "idx_users_ltv_tracking",
            "users",
            ["lifetime_value", "created_at"],
            where={"unified_role": "client"},
            section="2.2",
            note="Roles are stored lower-case: the report's unified_role = 'CLIENT' would "
            "never match a query; the predicate is 'client' (which pins unified_role, so it "
            "is left out of the key).",
        ),
        IndexSpec(
            "idx_appointments_daily_revenue_report",
            "appointments",
            [date("start_time"), "price", "barber_id"],
            where=_COMPLETED,
            section="2.3",
            note=_PINNED,
        ),
        IndexSpec(
            "idx_clients_retention_analysis",
            "clients",
            ["user_id", "last_visit", "created_at", "total_spent"],
            section="2.3",
        ),
        IndexSpec(
            "idx_ai_insights_cache_lookup",
            "ai_insight_cache",
            ["user_id", "insight_type", "created_at", "is_active"],
            section="2.3",
        ),
    ]
)

#: Each ``CREATE INDEX`` of the report, as (section, name as written), mapped to the REPORT
#: entry that carries it: the audit trail of the deduplication.
REPORT_ORIGINS: tuple[tuple[str, str, str], ...] = (
    ("1.1", "idx_payments_analytics_optimized", "idx_payments_analytics_optimized"),
    ("1.1", "idx_payments_daily_analytics", "idx_payments_daily_analytics"),
    ("1.1", "idx_payments_weekly_analytics", "idx_payments_weekly_analytics"),
    ("1.2", "idx_appointments_conflict_detection", "idx_appointments_conflict_detection"),
    ("1.2", "idx_appointments_time_range", "no_double_booking"),
    ("2.1", "idx_appointments_org_status_date", "idx_appointments_org_status_date"),
    ("2.1", "idx_payments_org_status_created", "idx_payments_org_status_created"),
    ("2.1", "idx_users_org_role_active", "idx_users_org_role_active"),
    ("2.2", "idx_appointments_revenue_tracking", "idx_appointments_revenue_tracking"),
    ("2.2", "idx_payments_commission_calculations", "idx_payments_commission_calculations"),
    ("2.2", "idx_users_ltv_tracking", "idx_users_ltv_tracking"),
    ("2.3", "idx_appointments_daily_revenue_report", "idx_appointments_daily_revenue_report"),
    ("2.3", "idx_clients_retention_analysis", "idx_clients_retention_analysis"),
    ("2.3", "idx_ai_insights_cache_lookup", "idx_ai_insights_cache_lookup"),
    ("7", "idx_payments_analytics_optimized", "idx_payments_analytics_optimized"),
    ("7", "idx_appointments_conflict_detection", "idx_appointments_conflict_detection"),
    ("7", "idx_appointments_org_status_date", "idx_appointments_org_status_date"),
)


# Measured with benchmarks/report_targets.py at 100,000 appointments on PostgreSQL, REPORT
# applied: daily schedule p95 9.5 ms and analytics dashboard 10.0 ms (sequential scans of
# appointments), user dashboard 9.2 ms (of which ~7.5 ms a sequential scan of
# user_organizations).
SUPPLEMENT = Spec(
    [
        IndexSpec(
            "idx_appointments_barber_start",
            "appointments",
            ["barber_id", "start_time"],
            section="3.1, 5.2",
            note="Not in the report: its daily schedule and dashboard filter a barber's "
            "appointments by time over every status, and the report's appointment indexes are "
            "partial or lead with organization_id.",
        ),
        IndexSpec(
            "idx_clients_preferred_barber",
            "clients",
            ["preferred_barber_id"],
            section="3.1",
            note="Not in the report: the dashboard's client metrics are a barber's clients.",
        ),
        IndexSpec(
            "idx_user_organizations_user",
            "user_organizations",
            ["user_id"],
            section="1.3",
            note="Not in the report: a user's memberships; PostgreSQL does not index foreign "
            "keys.",
        ),
        IndexSpec(
            "idx_appointments_user_start",
            "appointments",
            ["user_id", "start_time"],
            section="9.1",
            note="Not in the report: a user's upcoming appointments (user dashboard).",
        ),
        IndexSpec(
            "idx_payments_user_created",
            "payments",
            ["user_id", "created_at"],
            section="9.1",
            note="Not in the report: a user's latest payments (user dashboard).",
        ),
    ]
)
"""Indexes the report's own flows need that its list leaves out (``sqlaopt.booking``'s
optimized flows): use ``REPORT + SUPPLEMENT``. Each note names the flow it serves."""
