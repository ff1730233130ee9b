"""index_health(): every flag with its reason, and DDL that really does what it says."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DBAPIError

from sqlaopt.watch import IndexUsage, WatchError, index_health
from sqlaopt.watch._health import seq_scan_finding, unused_reason

DAY = dt.timedelta(days=1)
# The fixtures repeat scans on purpose, to give the server something to count.
pytestmark = pytest.mark.nplusone(mode="off")
NOW = dt.datetime(2025, 6, 1, tzinfo=dt.timezone.utc)


@pytest.fixture
def flagged(scratch_pg: str) -> Iterator[Engine]:
    """A table with one index of every kind, in a database of its own."""
    engine = create_engine(scratch_pg, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        for statement in [
            "CREATE EXTENSION btree_gist",
            "CREATE TABLE bookings (id serial PRIMARY KEY, code text UNIQUE, barber int, "
            "starts timestamp, ends timestamp, status text, note text)",
            "INSERT INTO bookings (code, barber, starts, ends, status, note) "
            "SELECT 'c' || n, n % 40, timestamp '2024-01-01' + n * interval '1 hour', "
            "timestamp '2024-01-01' + n * interval '1 hour' + interval '30 minutes', "
            "CASE WHEN n % 7 = 0 THEN 'pending' ELSE 'done' END, "
            "CASE WHEN n % 2 = 0 THEN 'same' ELSE 'x' || n END "
            "FROM generate_series(1, 3000) AS n",
            "CREATE INDEX bookings_barber ON bookings (barber)",
            "CREATE INDEX bookings_barber_starts ON bookings (barber, starts)",
            "CREATE INDEX bookings_barber_starts_again ON bookings (barber, starts)",
            "CREATE INDEX bookings_status ON bookings (status) WHERE status = 'pending'",
            "CREATE INDEX bookings_status_all ON bookings (status)",
            "ALTER TABLE bookings ADD CONSTRAINT no_overlap EXCLUDE USING gist "
            "(barber WITH =, tsrange(starts, ends) WITH &&)",
            "CREATE INDEX bookings_overlap ON bookings USING gist (barber, tsrange(starts, ends))",
            "CREATE TABLE visits AS SELECT n AS id, n % 100 AS shop "
            "FROM generate_series(1, 5000) AS n",
            "ANALYZE bookings, visits",
        ]:
            conn.execute(text(statement))
        with pytest.raises(DBAPIError, match="could not create unique index"):
            conn.execute(text("CREATE UNIQUE INDEX CONCURRENTLY bookings_note ON bookings (note)"))
        for shop in range(3):  # sequential scans, and one use of the two-column index
            conn.execute(text("SELECT count(*) FROM visits WHERE shop = :s"), {"s": shop})
        conn.execute(text("SET enable_seqscan = off"))
        conn.execute(text("SELECT * FROM bookings WHERE barber = 3 AND starts > '2024-02-01'"))
        conn.execute(text("SELECT pg_stat_force_next_flush()"))  # counters visible at once
    yield engine
    engine.dispose()


def _by_index(health: object) -> dict[str, list[object]]:
    found: dict[str, list[object]] = {}
    for finding in health.findings:  # type: ignore[attr-defined]
        found.setdefault(finding.index or finding.table, []).append(finding)
    return found


def test_every_flag_with_its_reason_and_ddl(flagged: Engine) -> None:
    health = index_health(flagged, min_window=dt.timedelta(0), min_rows=1000)
    names = {i.name for i in health.indexes}
    assert {"bookings_pkey", "bookings_code_key", "no_overlap", "bookings_note"} <= names
    found = _by_index(health)
    kinds = {name: [f.kind for f in found[name]] for name in found}  # type: ignore[attr-defined]
    assert kinds["bookings_note"] == ["invalid"]
    # of two identical indexes the one the planner used is kept, the other is the duplicate
    scans = {i.name: i.scans for i in health.indexes}
    used, spare = sorted(["bookings_barber_starts", "bookings_barber_starts_again"],
                         key=lambda name: -(scans[name] or 0))
    assert scans[used] == 1 and scans[spare] == 0
    assert kinds[spare] == ["duplicate"] and used not in kinds
    assert kinds["bookings_overlap"] == ["duplicate"]  # of the exclusion constraint's index
    assert kinds["bookings_barber"] == ["redundant"]
    assert kinds["bookings_status"] == ["unused"]  # partial: a different predicate, not redundant
    assert kinds["bookings_status_all"] == ["unused"]
    assert kinds["visits"] == ["seq_scans"]
    # guarantees are never flagged: primary key, unique constraint, exclusion constraint
    assert not {"bookings_pkey", "bookings_code_key", "no_overlap"} & set(found)
    overlap = found["bookings_overlap"][0]
    assert "same definition as no_overlap, which is kept (it backs a constraint)" in (
        overlap.reason)  # type: ignore[attr-defined]
    redundant = found["bookings_barber"][0]
    assert f"is a left prefix of {used}" in redundant.reason  # type: ignore[attr-defined]
    unused = found["bookings_status_all"][0]
    assert "never scanned since statistics began" in unused.reason  # type: ignore
    assert "track_commit_timestamp" in unused.reason  # type: ignore[attr-defined]
    scans = found["visits"][0]
    assert "sequential scans read" in scans.reason  # type: ignore[attr-defined]
    assert "track_commit_timestamp is off: index ages are unknown" in health.notes
    assert "[invalid] bookings_note" in health.table()


def test_the_ddl_does_what_it_says(flagged: Engine) -> None:
    health = index_health(flagged, min_window=dt.timedelta(0), min_rows=1000)
    with flagged.connect() as conn:
        # the unique build failed on duplicates: the data must be fixed before a rebuild
        conn.execute(text("UPDATE bookings SET note = 'n' || id"))
        for finding in health.findings:
            for statement in finding.ddl:
                if not statement.startswith("--"):
                    conn.execute(text(statement))
    after = index_health(flagged, min_window=dt.timedelta(0), min_rows=1000)
    names = {i.name for i in after.indexes}
    assert "bookings_note" in names and all(i.valid for i in after.indexes)  # REINDEXed
    assert not {"bookings_barber", "bookings_overlap", "bookings_status",
                "bookings_status_all"} & names
    assert len({"bookings_barber_starts", "bookings_barber_starts_again"} & names) == 1
    assert {f.kind for f in after.findings} <= {"seq_scans", "unused"}


def test_a_short_statistics_window_calls_nothing_unused(flagged: Engine) -> None:
    with flagged.connect() as conn:
        conn.execute(text("SELECT pg_stat_reset()"))  # this database's counters only
    health = index_health(flagged, min_rows=1000)  # the default window: 7 days
    assert not health.flagged("unused")
    assert health.stats_since is not None
    assert any("less than the 7 days window: no index is called unused yet" in note
               for note in health.notes)


def _index(**changes: object) -> IndexUsage:
    base = IndexUsage(schema="public", table="t", name="ix", method="btree", size_bytes=8192,
                      scans=0, unique=False, constraint=None, valid=True,
                      definition="CREATE INDEX ix ON t (a)", parts=("a",))
    return IndexUsage(**{**base.__dict__, **changes})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("index", "window_start", "expected"),
    [
        (_index(), NOW - 30 * DAY, "never scanned since"),
        (_index(scans=1), NOW - 30 * DAY, None),
        (_index(unique=True), NOW - 30 * DAY, None),
        (_index(constraint="x"), NOW - 30 * DAY, None),
        (_index(), NOW - DAY, None),  # the window is shorter than 7 days
        (_index(created=NOW - 2 * DAY), NOW - 30 * DAY, None),  # built during the window
        (_index(created=NOW - 60 * DAY), NOW - 30 * DAY, "never scanned since 2025-05-02"),
        (_index(), None, "never scanned since statistics began"),
    ],
)
def test_unused_rule(index: IndexUsage, window_start: dt.datetime | None,
                     expected: str | None) -> None:
    reason = unused_reason(index, window_start, NOW, 7 * DAY)
    if expected is None:
        assert reason is None
    else:
        assert reason is not None and expected in reason
        assert ("age is unknown" in reason) == (index.created is None)


def test_sequential_scan_rule() -> None:
    assert seq_scan_finding("t", 10, 100_000, 1000, 50_000, 10_000) is None  # 99% indexed
    assert seq_scan_finding("t", 10, 100_000, 10, 5_000, 10_000) is None  # a small table
    flag = seq_scan_finding("t", 10, 500_000, 90, 50_000, 10_000)
    assert flag is not None and "10 sequential scans read 500,000 rows (50,000 a scan)" in (
        flag.reason) and "index scans are 90%" in flag.reason


def test_bad_arguments(pg_engine: Engine) -> None:
    with pytest.raises(WatchError, match="min_window must be a non-negative timedelta"):
        index_health(pg_engine, min_window=7)  # type: ignore[arg-type]
    with pytest.raises(WatchError, match="min_rows must be a non-negative int"):
        index_health(pg_engine, min_rows=-1)


@pytest.fixture
def mariadb_tables(mariadb_engine: Engine) -> Iterator[Engine]:
    with mariadb_engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS watch_health"))
        conn.execute(text("CREATE TABLE watch_health (id int PRIMARY KEY, a int, b int, "
                          "c varchar(20), UNIQUE KEY watch_c (c), KEY watch_a (a), "
                          "KEY watch_ab (a, b), KEY watch_ab_again (a, b))"))
    yield mariadb_engine
    with mariadb_engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS watch_health"))


def test_mariadb_duplicates_and_redundant_indexes(mariadb_tables: Engine) -> None:
    health = index_health(mariadb_tables, min_window=dt.timedelta(0))
    mine = [f for f in health.findings if f.table == "watch_health"]
    kinds = {f.index: f.kind for f in mine if f.kind in ("duplicate", "redundant")}
    assert kinds == {"watch_a": "redundant", "watch_ab_again": "duplicate"}
    assert {f.index for f in mine} <= {"watch_a", "watch_ab_again", "watch_ab"}
    with mariadb_tables.begin() as conn:
        for finding in mine:
            if finding.kind in ("duplicate", "redundant"):
                conn.execute(text(finding.ddl[0]))
        left = {r[2] for r in conn.execute(text("SHOW INDEX FROM watch_health"))}
    assert left == {"PRIMARY", "watch_c", "watch_ab"}


def test_mariadb_usage_counters(performance_schema: Engine) -> None:
    with performance_schema.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS watch_usage"))
        conn.execute(text("CREATE TABLE watch_usage (id int PRIMARY KEY, shop int, note int, "
                          "KEY watch_usage_note (note))"))
        conn.execute(text("INSERT INTO watch_usage SELECT seq, seq % 50, seq FROM seq_1_to_3000"))
    try:
        with performance_schema.connect() as conn:
            conn.execute(text("ANALYZE TABLE watch_usage")).all()
            for shop in range(3):
                conn.execute(text("SELECT count(*) FROM watch_usage WHERE shop = :s"), {"s": shop})
        health = index_health(performance_schema, min_window=dt.timedelta(0), min_rows=1000)
        found = {(f.kind, f.index or f.table) for f in health.findings}
        assert ("unused", "watch_usage_note") in found
        assert ("seq_scans", "watch_usage") in found
        assert ("unused", "PRIMARY") not in found
        usage = {i.name: i for i in health.indexes if i.table == "watch_usage"}
        assert usage["watch_usage_note"].scans == 0 and health.stats_since is not None
    finally:
        with performance_schema.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS watch_usage"))
