"""create() from several sessions at once: one builds, the others wait and find it present;
nothing another session is building is dropped; ``created`` means valid afterwards; lock waits
are bounded; MySQL/MariaDB refuse a caller's open transaction."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, create_engine, insert, select, text
from sqlalchemy.exc import OperationalError

from sqlaopt.booking.models import Organization
from sqlaopt.indexes import (
    REPORT,
    CreateResult,
    IndexBuildError,
    IndexLockError,
    IndexSpecError,
    _create,
    check,
    create,
    ddl,
)
from sqlaopt.indexes._check import CheckResult, EntryCheck

from .conftest import fill_sample, reference_copy

RUNS = 4


def at_once(runs: int, work: Callable[[int], Any]) -> list[Any]:
    """Run ``work(i)`` in ``runs`` threads released together; each result or exception."""
    barrier = threading.Barrier(runs)
    results: list[Any] = [None] * runs

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except Exception as error:
            results[i] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(runs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    return results


@pytest.fixture(params=["postgresql", "sqlite", "mariadb"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Engine:
    if request.param == "sqlite":
        engine = create_engine(f"sqlite:///{tmp_path / 'app.db'}")  # a connection per thread
        request.addfinalizer(engine.dispose)
    else:
        engine = request.getfixturevalue("pg_engine" if request.param == "postgresql"
                                         else "mariadb_engine")
    reference_copy().create_all(engine)
    fill_sample(engine)
    return engine


def test_concurrent_runs_build_each_entry_once_and_leave_nothing_invalid(engine: Engine) -> None:
    results = at_once(RUNS, lambda _: create(engine))
    assert all(isinstance(r, CreateResult) for r in results), results
    actions = Counter((a.name, a.action) for result in results for a in result)
    built = {name for name, action in actions if action == "created"}
    expected = {e.name for e in check(engine).entries if e.status != "skipped"}
    assert built == expected
    for name in expected:  # one run built it, every other one found it present
        assert actions[(name, "created")] == 1 and actions[(name, "present")] == RUNS - 1
    assert check(engine).ok


def test_concurrent_command_line_runs(pg_engine: Engine, tmp_path: Path) -> None:
    """Three ``sqlaopt indexes create`` processes at once, as pods of one deployment: every
    one exits 0, each entry is reported created once, nothing is INVALID."""
    reference_copy().create_all(pg_engine)
    fill_sample(pg_engine)
    with pg_engine.connect() as conn:
        schema = conn.execute(text("SELECT current_schema()")).scalar()
    url = pg_engine.url.update_query_dict({"options": f"-csearch_path={schema}"})
    rendered = url.render_as_string(hide_password=False)
    command = [sys.executable, "-m", "sqlaopt", "indexes", "create", "--url", rendered]
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(3)]
    outputs = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0, 0], outputs
    lines = [line.split() for out, _ in outputs for line in out.splitlines()[1:]]
    created = Counter(cells[0] for cells in lines if cells[1] == "created")
    assert set(created.values()) == {1} and len(created) == len(REPORT)
    assert check(pg_engine).ok


def hold_open_writer(engine: Engine) -> Connection:
    """A connection with an open writing transaction on ``payments``: a concurrent build on
    that table waits for it (after registering its INVALID index)."""
    writer = engine.connect()
    writer.execute(text("UPDATE payments SET amount = amount WHERE id = 1"))
    return writer


def wait_until(condition: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


NAME = "idx_payments_org_status_created"


def building(engine: Engine) -> bool:
    with engine.connect() as conn:
        return conn.execute(text(
            "SELECT 1 FROM pg_stat_progress_create_index WHERE index_relid = to_regclass(:n)"
        ), {"n": NAME}).first() is not None


def test_an_index_another_session_is_building_is_never_dropped(pg_engine: Engine) -> None:
    reference_copy().create_all(pg_engine)
    statement = next(s for s in ddl() if NAME in s)
    writer = hold_open_writer(pg_engine)
    other = threading.Thread(target=lambda: _autocommit(pg_engine, statement))
    other.start()
    try:
        wait_until(lambda: building(pg_engine))
        assert check(pg_engine)[NAME].status == "invalid"  # in progress looks INVALID
        with pytest.raises(IndexBuildError) as raised:
            create(pg_engine, REPORT.only(NAME))
        action = raised.value.result[NAME]
        assert action.action == "failed" and "another session builds it" in action.detail
        assert action.statements == ()  # no DROP
    finally:
        writer.rollback()
        writer.close()
        other.join(timeout=60)
    assert check(pg_engine)[NAME].status == "present"  # the other build finished


def _autocommit(engine: Engine, statement: str, timeout: str | None = None) -> None:
    """Run ``statement`` outside a transaction; cancelled after ``timeout`` if given."""
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        if timeout:
            conn.exec_driver_sql(f"SET statement_timeout = '{timeout}'")
        with contextlib.suppress(OperationalError):
            conn.exec_driver_sql(statement)


def test_created_is_reported_only_for_a_valid_index(
    pg_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race the build lock closes between sqlaopt runs, replayed with a foreign builder:
    the check found the index missing, then another session started building it and was
    cancelled, so CREATE INDEX CONCURRENTLY IF NOT EXISTS skipped the INVALID leftover. That
    is a failure, not ``created``."""
    reference_copy().create_all(pg_engine)
    statement = next(s for s in ddl() if NAME in s)
    check_plan = _create.check_plan

    def missing_then_started(conn: Connection, fitted: Any) -> CheckResult:
        result = check_plan(conn, fitted)
        wait_until(lambda: building(pg_engine))
        entries = tuple(EntryCheck(e.name, e.table, "missing") for e in result.entries)
        return CheckResult(result.dialect, entries)

    monkeypatch.setattr(_create, "check_plan", missing_then_started)
    writer = hold_open_writer(pg_engine)
    other = threading.Thread(target=lambda: _autocommit(pg_engine, statement, timeout="1500ms"))
    other.start()
    try:
        with pytest.raises(IndexBuildError) as raised:
            create(pg_engine, REPORT.only(NAME))
        action = raised.value.result[NAME]
        assert (action.action, action.detail) == ("failed", "after the build the index is INVALID")
    finally:
        writer.rollback()
        writer.close()
        other.join(timeout=60)


@pytest.mark.parametrize("dialect", ["postgresql", "mariadb", "sqlite"])
def test_a_held_build_lock_bounds_the_wait(
    dialect: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if dialect == "sqlite":
        engine = create_engine(f"sqlite:///{tmp_path / 'app.db'}")
        request.addfinalizer(engine.dispose)
    else:
        engine = request.getfixturevalue("pg_engine" if dialect == "postgresql"
                                         else "mariadb_engine")
    reference_copy().create_all(engine)
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        from sqlaopt.indexes._locks import build_lock

        with engine.connect() as conn:
            if dialect != "mariadb":
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            tables = list(reference_copy().tables.values())
            with build_lock(conn, dialect, tables, None):
                holding.set()
                release.wait(60)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(30)
        started = time.monotonic()
        with pytest.raises(IndexLockError, match=r"waited 0\.5 s for"):
            create(engine, lock_timeout=0.5)
        assert time.monotonic() - started < 5
    finally:
        release.set()
        holder.join(timeout=60)
    assert {a.action for a in create(engine, lock_timeout=5)} <= {"created", "skipped"}


def test_mariadb_refuses_a_callers_open_transaction(mariadb_engine: Engine) -> None:
    """DDL commits implicitly on MariaDB: create() inside the caller's transaction would
    commit the caller's work half-way. It refuses, and the caller's work stays uncommitted."""
    reference_copy().create_all(mariadb_engine)
    organizations = reference_copy().tables["organizations"]
    with mariadb_engine.connect() as conn:
        conn.execute(insert(organizations), [{"id": 1, "name": "Shop"}])
        with pytest.raises(IndexSpecError, match="commits implicitly"):
            create(conn)
        conn.rollback()
    with mariadb_engine.connect() as conn:
        assert conn.execute(select(Organization.id)).all() == []
    assert not check(mariadb_engine).ok  # nothing built either
