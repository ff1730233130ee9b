"""slow_statements(): pg_stat_statements of this database only, columns by extension version,
MariaDB digests, and errors that say how to enable what is missing."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from sqlaopt.watch import NotEnabledError, WatchError, slow_statements
from sqlaopt.watch._statements import pg_time_columns
from tests.conftest import PG_ADMIN_URL

from .conftest import missing

MARKER = f"watch_marker_{os.getpid()}"
# These tests repeat statements on purpose, to give the server something to count.
pytestmark = pytest.mark.nplusone(mode="off")


def _sleep(engine: Engine, times: int, seconds: float = 0.02) -> None:
    with engine.connect() as conn:
        for _ in range(times):
            conn.execute(text(f"SELECT pg_sleep(:s) AS {MARKER}"), {"s": seconds})


def _find(stats: object) -> list[object]:
    return [s for s in stats.statements if MARKER in s.text]  # type: ignore[attr-defined]


def test_top_statements_of_this_database(pg_engine: Engine) -> None:
    before = _find(slow_statements(pg_engine, limit=500))
    calls = before[0].calls if before else 0  # type: ignore[attr-defined]
    _sleep(pg_engine, 3)
    stats = slow_statements(pg_engine, limit=500)
    [entry] = _find(stats)
    assert entry.calls == calls + 3
    assert entry.text == f"SELECT pg_sleep(?) AS {MARKER}"
    assert entry.sql == f"SELECT pg_sleep($1) AS {MARKER}"  # runnable, with $1
    assert entry.mean_ms >= 20 and entry.total_ms >= 60
    assert entry.rows >= 3
    assert stats.source == "pg_stat_statements 1.10"
    totals = [s.total_ms for s in stats.statements]
    assert totals == sorted(totals, reverse=True)
    by_mean = slow_statements(pg_engine, order_by="mean", limit=5)
    means = [s.mean_ms for s in by_mean.statements]
    assert means == sorted(means, reverse=True) and len(means) <= 5
    assert MARKER in stats.table()


def test_other_databases_are_left_out(pg_engine: Engine) -> None:
    other = create_engine(PG_ADMIN_URL)  # the cluster's postgres database
    try:
        with other.connect() as conn:
            conn.execute(text(f"SELECT 1 AS {MARKER}_elsewhere"))
    finally:
        other.dispose()
    texts = [s.text for s in slow_statements(pg_engine, limit=5000).statements]
    assert not any(f"{MARKER}_elsewhere" in t for t in texts)


def test_entries_differing_only_in_list_length_are_merged(pg_engine: Engine) -> None:
    with pg_engine.connect() as conn:
        for size in (1, 2, 3):
            values = ", ".join(str(n) for n in range(size))
            conn.execute(text(f"SELECT {MARKER}_list FROM (SELECT 1 AS {MARKER}_list) AS t "
                              f"WHERE {MARKER}_list IN ({values})"))
    merged = [s for s in slow_statements(pg_engine, limit=5000).statements
              if f"{MARKER}_list IN" in s.text]
    assert len(merged) == 1 and merged[0].calls >= 3
    assert merged[0].text.endswith(f"WHERE {MARKER}_list IN (...)")


# pg_stat_statements ships 1.7 with PostgreSQL 12, 1.8 with 13, 1.9 with 14, 1.10 with 15 and
# 16, 1.11 with 17. This server's extension scripts can install 1.4 to 1.10 in any database.
@pytest.mark.parametrize("version", ["1.7", "1.8", "1.9", "1.10"])
def test_columns_follow_the_extension_version(scratch_pg: str, version: str) -> None:
    engine = create_engine(scratch_pg)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE EXTENSION pg_stat_statements VERSION '1.4'"))
            conn.execute(text(f"ALTER EXTENSION pg_stat_statements UPDATE TO '{version}'"))
        _sleep(engine, 2)
        stats = slow_statements(engine, limit=500)
        assert stats.source == f"pg_stat_statements {version}"
        [entry] = _find(stats)
        assert entry.calls >= 2 and entry.total_ms >= 40
        assert (stats.since is not None) == (version in ("1.9", "1.10"))
    finally:
        engine.dispose()


SCRIPTS = Path("/usr/share/postgresql")


def _columns_by_version() -> dict[str, set[str]]:
    """The view's columns per extension version, from this server's install scripts."""
    scripts = sorted(SCRIPTS.glob("*/extension/pg_stat_statements--*.sql"))
    columns: set[str] = set()
    found = {}
    base = [s for s in scripts if re.search(r"--1\.4\.sql$", s.name)]
    upgrades = sorted((s for s in scripts if re.search(r"--1\.\d+--1\.\d+\.sql$", s.name)),
                      key=lambda s: [int(n) for n in re.findall(r"\d+", s.name.split("--")[2])])
    for script in base + [u for u in upgrades if u.name >= "pg_stat_statements--1.4"]:
        body = script.read_text()
        if "CREATE VIEW pg_stat_statements" in body or script in base:
            columns = set(re.findall(r"OUT (\w+) ", body))
        version = re.search(r"--(1\.\d+)\.sql$", script.name)
        assert version is not None
        found[version.group(1)] = set(columns)
    return found


def test_the_column_table_matches_each_versions_view() -> None:
    versions = _columns_by_version()
    if not versions:
        missing("pg_stat_statements install scripts (postgresql-contrib)")
    for version in ("1.7", "1.8", "1.9", "1.10"):
        assert set(pg_time_columns(version)) <= versions[version], version
        assert {"queryid", "query", "dbid", "calls", "rows"} <= versions[version]
        # read from 1.9 on: the query filters on it there
        assert ("toplevel" in versions[version]) == (version in ("1.9", "1.10"))
    assert pg_time_columns("1.7") == ("total_time", "mean_time")
    assert pg_time_columns("1.11") == ("total_exec_time", "mean_exec_time")  # PostgreSQL 17


def test_missing_extension_says_how_to_enable_it(scratch_pg: str) -> None:
    engine = create_engine(scratch_pg)
    try:
        with pytest.raises(NotEnabledError) as caught:
            slow_statements(engine)
    finally:
        engine.dispose()
    message = str(caught.value)
    assert "pg_stat_statements extension, which is not created in this database" in message
    assert f"CREATE EXTENSION pg_stat_statements; in database {scratch_pg.rsplit('/', 1)[1]}" \
        in caught.value.fix
    assert "shared_preload_libraries" not in caught.value.fix  # it is preloaded here


def test_bad_arguments(pg_engine: Engine) -> None:
    with pytest.raises(WatchError, match=r"order_by='totl' is not one of total, mean, calls, "
                       r"rows \(did you mean 'total'\?\)"):
        slow_statements(pg_engine, order_by="totl")
    with pytest.raises(WatchError, match="limit must be a positive int"):
        slow_statements(pg_engine, limit=0)


def test_sqlite_keeps_no_statistics() -> None:
    with pytest.raises(NotEnabledError, match="sqlite keeps no statement statistics"):
        slow_statements(create_engine("sqlite://"))


def test_mariadb_digests(performance_schema: Engine) -> None:
    with performance_schema.connect() as conn:
        for _ in range(2):
            conn.execute(text(f"SELECT SLEEP(0.02) AS {MARKER}, :x AS y"), {"x": 1})
    stats = slow_statements(performance_schema, limit=500)
    [entry] = _find(stats)
    assert entry.text == f"SELECT SLEEP (?) AS {MARKER}, ? AS y"
    assert entry.calls >= 2 and entry.mean_ms >= 20 and entry.rows >= 2
    assert stats.source == "performance_schema"


@pytest.fixture
def schema_off(mariadb_engine: Engine) -> Iterator[Engine]:
    with mariadb_engine.connect() as conn:
        row = conn.execute(text("SHOW GLOBAL VARIABLES LIKE 'performance_schema'")).first()
    if row is not None and str(row[1]).upper() == "ON":
        pytest.skip("performance_schema is on here: the error path cannot be seen")
    yield mariadb_engine


def test_mariadb_without_performance_schema(schema_off: Engine) -> None:
    with pytest.raises(NotEnabledError) as caught:
        slow_statements(schema_off)
    assert "performance_schema, which is OFF" in str(caught.value)
    assert "performance_schema = ON under [mysqld]" in caught.value.fix
    assert "restart" in caught.value.fix
