"""advise(): the acceptance run at a small scale (the 100,000-appointment run is
benchmarks/index_advisor.py), every workload source, the outputs, and the errors.

The acceptance: on the reference schema with no secondary indexes, with the naive and the
optimized report flows as the workload, the advised indexes, built for real, are used by
every optimized flow (checked with sqlaopt.explain.assert_uses_index), and they cover the
access paths of REPORT + SUPPLEMENT (no entry "missed").
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session

import sqlaopt
from sqlaopt import indexes
from sqlaopt.booking import FLOWS, flow_arguments
from sqlaopt.booking.models import Base
from sqlaopt.watch import (
    Advice,
    NotEnabledError,
    WatchError,
    Workload,
    WorkloadStatement,
    advise,
    compare,
)
from tests.scripts import load_benchmark

# The naive flows are N+1s on purpose: they are the "before" of the workload.
pytestmark = pytest.mark.nplusone(mode="off")

bench = load_benchmark("index_advisor")  # the tests run its checks at 20,000 appointments


@pytest.fixture(scope="module")
def acceptance(bookings: Engine) -> tuple[Workload, list[Any], Advice]:
    workload, ran = bench.run_flows(bookings, ("naive", "optimized"))
    return workload, ran, advise(bookings, workload)


@pytest.fixture
def built(bookings: Engine, acceptance: tuple[Workload, list[Any], Advice]) -> Iterator[Advice]:
    """The advised indexes built for real (and dropped afterwards)."""
    advice = acceptance[2]
    bench.build(bookings, advice)
    yield advice
    bench.drop(bookings, advice)


def test_every_optimized_flow_uses_an_advised_index(
    bookings: Engine, built: Advice, acceptance: tuple[Workload, list[Any], Advice]
) -> None:
    _, ran, advice = acceptance
    assert len(advice.spec) == len(advice.recommendations)  # all of them are IndexSpec entries
    used = bench.check_flows(bookings, advice, ran)  # assert_uses_index on each statement
    assert {u.flow for u in used} == {flow.name for flow in FLOWS}
    assert sum(u.predicted for u in used) * 2 >= len(used)  # mostly the predicted index


def test_recommendations_cover_the_reports_access_paths(
    bookings: Engine, acceptance: tuple[Workload, list[Any], Advice]
) -> None:
    workload, _, advice = acceptance
    coverage = compare(bookings, workload, indexes.REPORT + indexes.SUPPLEMENT, advice,
                       target=Base)
    assert coverage.with_status("missed") == ()
    status = {entry.name: entry.status for entry in coverage.entries}
    assert status["no_double_booking"] == "not tried"  # HypoPG has no GiST
    for name in ("idx_appointments_conflict_detection", "idx_appointments_barber_start",
                 "idx_user_organizations_user", "idx_appointments_user_start",
                 "idx_payments_user_created"):
        assert status[name] == "covered", (name, coverage[name].reason)
    for name in ("idx_users_org_role_active", "idx_users_ltv_tracking",
                 "idx_ai_insights_cache_lookup", "idx_clients_retention_analysis",
                 "idx_appointments_org_status_date", "idx_payments_org_status_created"):
        assert status[name] == "unused", name  # no flow reads these paths
    assert "served by idx_" in coverage["idx_user_organizations_user"].reason


def test_the_advice_proves_each_index(acceptance: tuple[Workload, list[Any], Advice]) -> None:
    _, _, advice = acceptance
    assert advice.recommendations and not advice.skipped and not advice.rejected
    for recommendation in advice.recommendations:
        assert recommendation.statements
        assert recommendation.best >= advice.factor, recommendation
        assert recommendation.ddl.startswith(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {recommendation.name} ON public.")
    tables = {r.table for r in advice.recommendations}
    assert {"appointments", "payments", "user_organizations"} <= tables
    before = sum(s.cost_before * s.calls for s in advice.statements)
    after = sum(s.cost_after * s.calls for s in advice.statements)
    assert after * advice.factor < before


def test_outputs(acceptance: tuple[Workload, list[Any], Advice], tmp_path: Path) -> None:
    _, _, advice = acceptance
    namespace: dict[str, Any] = {}
    exec(advice.python(), namespace)  # the IndexSpec code is the spec itself
    assert namespace["ADVISED"] == advice.spec
    migration = advice.migration(Base)
    for recommendation in advice.recommendations:
        assert f'"{recommendation.name}",' in migration
    assert "postgresql_concurrently=True" in migration and "def downgrade()" in migration
    assert advice.sql().count("CREATE INDEX CONCURRENTLY") == len(advice.recommendations)
    document = json.loads(json.dumps(advice.to_dict()))
    assert [r["name"] for r in document["recommendations"]] == [
        r.name for r in advice.recommendations]
    assert "index advice (" in advice.table()


def test_a_workload_file_gives_the_same_advice(
    bookings: Engine, acceptance: tuple[Workload, list[Any], Advice], tmp_path: Path
) -> None:
    workload, _, advice = acceptance
    path = tmp_path / "workload.json"
    workload.to_json(path)
    loaded = Workload.from_json(path)
    assert loaded == workload  # dates, times and decimals survive the round trip
    again = advise(bookings, loaded)
    assert [r.definition for r in again.recommendations] == [
        r.definition for r in advice.recommendations]


def test_count_queries_statements_get_generic_plans(bookings: Engine) -> None:
    with Session(bookings) as session:
        arguments = flow_arguments(session)
    with sqlaopt.count_queries() as counted:
        for flow in FLOWS:
            with Session(bookings) as session:
                flow.optimized(session, **arguments[flow.name])
    workload = Workload.from_statements(counted.statements)
    assert all(s.parameters is None for s in workload)
    advice = advise(bookings, workload)
    assert not advice.skipped
    assert {"appointments", "payments", "user_organizations"} <= {
        r.table for r in advice.recommendations}


def test_a_literal_in_every_use_makes_a_partial_index(bookings: Engine) -> None:
    workload, _ = bench.run_flows(bookings, ("optimized",))
    advice = advise(bookings, workload)
    partial = [r for r in advice.recommendations if r.spec is not None and r.spec.conditions]
    assert partial, advice.table()
    for recommendation in partial:
        # only constants written into the SQL (the status lists), never a bound parameter
        assert [c.column for c in recommendation.spec.conditions] == ["status"]  # type: ignore
        assert recommendation.size_bytes * advice.factor <= _full_size(bookings, recommendation)


def _full_size(engine: Engine, recommendation: Any) -> float:
    """HypoPG's size for the same key without the predicate."""
    key = ", ".join(str(p) for p in recommendation.spec.key_parts)
    with engine.connect() as conn:
        oid = conn.execute(text("SELECT indexrelid FROM hypopg_create_index(:d)"),
                           {"d": f"CREATE INDEX ON {recommendation.table} ({key})"}).scalar()
        size = conn.execute(text("SELECT hypopg_relation_size(:o)"), {"o": oid}).scalar()
        conn.execute(text("SELECT hypopg_reset()"))
    return float(size or 0)


def test_a_callers_connection_is_left_as_it_was(bookings: Engine) -> None:
    workload = Workload((WorkloadStatement(
        "SELECT count(*) FROM appointments WHERE user_id = %(u)s", {"u": 300}),))
    with bookings.connect() as conn:
        conn.execute(text("SET plan_cache_mode = force_custom_plan"))
        advice = advise(conn, workload)
        assert conn.execute(text("SHOW plan_cache_mode")).scalar() == "force_custom_plan"
        assert conn.execute(text("SELECT count(*) FROM hypopg_list_indexes")).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM pg_prepared_statements "
                                 "WHERE name LIKE 'sqlaopt%'")).scalar() == 0
        assert conn.in_transaction()  # still usable: every step ran in a savepoint
    assert advice.recommendations[0].definition == "appointments (user_id)"


def test_statements_the_database_cannot_plan_are_skipped(bookings: Engine) -> None:
    workload = Workload.from_statements([
        "SELECT * FROM no_such_table WHERE id = %(id)s",
        "BEGIN",  # not a query: ignored
        "SELECT count(*) FROM appointments WHERE barber_id = %(b)s",
    ])
    advice = advise(bookings, workload)
    assert advice.skipped == (("SELECT * FROM no_such_table WHERE id = ?",
                               'relation "no_such_table" does not exist'),)
    assert len(advice.statements) == 1


def test_without_hypopg_it_says_how_to_install_it(scratch_pg: str) -> None:
    engine = create_engine(scratch_pg)
    try:
        with pytest.raises(NotEnabledError) as caught:
            advise(engine, Workload.from_statements(["SELECT 1"]))
    finally:
        engine.dispose()
    assert "needs the hypopg extension, which is not created in this database" in str(
        caught.value)
    assert "CREATE EXTENSION hypopg;" in caught.value.fix


def test_mariadb_has_no_hypothetical_indexes(mariadb_engine: Engine) -> None:
    with pytest.raises(NotEnabledError, match="mariadb has no hypothetical indexes"):
        advise(mariadb_engine, Workload.from_statements(["SELECT 1"]))


def test_bad_input(bookings: Engine, tmp_path: Path) -> None:
    with pytest.raises(WatchError, match="factor must be a number above 1"):
        advise(bookings, Workload(), factor=1)
    with pytest.raises(WatchError, match="unknown paramstyle 'pyfromat' \\(did you mean "
                       "'pyformat'\\?\\)"):
        WorkloadStatement("SELECT 1", paramstyle="pyfromat")
    with pytest.raises(WatchError, match="unknown key 'call' \\(did you mean 'calls'\\?\\)"):
        Workload.from_json({"statements": [{"sql": "SELECT 1", "call": 2}]})
    with pytest.raises(WatchError, match="cannot read workload file"):
        Workload.from_json(tmp_path / "missing.json")
    with pytest.raises(WatchError, match="calls must be a positive int"):
        WorkloadStatement("SELECT 1", calls=0)


def test_capture_counts_and_merges(bookings: Engine) -> None:
    with Workload.capture(bookings) as captured, bookings.connect() as conn:
        for barber in (1, 2, 3):
            conn.execute(text("SELECT count(*) FROM appointments WHERE barber_id = :b"),
                         {"b": barber})
    with bookings.connect() as conn:  # after the block nothing is recorded any more
        conn.execute(text("SELECT count(*) FROM appointments WHERE user_id = 1"))
    assert not any("user_id = 1" in s.sql for s in captured)
    workload = Workload(tuple(captured))
    [entry] = [s for s in workload if "barber_id" in s.sql]
    assert entry.calls == 3 and entry.parameters == {"b": 1} and entry.paramstyle == "pyformat"
    assert (Workload(tuple(captured)) + Workload(tuple(captured))).statements[0].calls == (
        2 * workload.statements[0].calls)
    stamp = dt.datetime(2024, 6, 1, 9, 30)
    round_trip = Workload.from_json(json.loads(Workload((WorkloadStatement(
        "SELECT %(t)s", {"t": stamp}),)).to_json()))
    assert round_trip.statements[0].parameters == {"t": stamp}
