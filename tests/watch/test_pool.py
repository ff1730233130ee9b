"""pool_settings() per driver, check_pool() against live servers, and the report's
OptimizedDatabaseConfig explained problem by problem."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from sqlaopt.watch import WatchError, check_pool, pool_settings


class OptimizedDatabaseConfig:
    """The performance report's section 4.1, verbatim."""

    def __init__(self) -> None:
        # Production optimizations
        self.pool_size = 75  # Increase from current 50
        self.max_overflow = 150  # Increase from current 100
        self.pool_timeout = 45  # Increase from 30
        self.pool_recycle = 1200  # Decrease to 20 minutes

        # Connection health monitoring
        self.pool_pre_ping = True
        self.pool_reset_on_return = "commit"

        # Query performance settings
        self.query_timeout = 30  # Add query timeout
        self.statement_cache_size = 100  # Enable statement caching

    def get_engine_config(self) -> dict[str, Any]:
        return {
            "pool_size": self.pool_size,
            "max_overflow": self.max_overflow,
            "pool_timeout": self.pool_timeout,
            "pool_recycle": self.pool_recycle,
            "pool_pre_ping": self.pool_pre_ping,
            "pool_reset_on_return": self.pool_reset_on_return,
            "connect_args": {
                "connect_timeout": 10,
                "command_timeout": self.query_timeout,
                "application_name": "bookedbarber_v2",
            },
        }


def report_config() -> dict[str, Any]:
    config = OptimizedDatabaseConfig()
    # The report sets statement_cache_size "to enable statement caching"; get_engine_config()
    # drops it, and passed on, create_engine() rejects it. Both ways it does nothing.
    return {**config.get_engine_config(), "statement_cache_size": config.statement_cache_size}


def test_the_reports_configuration_problem_by_problem(pg_engine: Engine) -> None:
    check = check_pool(pg_engine, report_config(), processes=1)
    problems = {p.setting: p for p in check.problems}
    assert list(problems) == [
        "pool_size/max_overflow", "statement_cache_size", "connect_args.command_timeout",
        "pool_reset_on_return", "statement timeout"]
    size = problems["pool_size/max_overflow"]
    assert check.max_connections == 100 and check.reserved == 3 and check.available == 97
    assert size.problem == ("1 process(es) x (75 + 150) = 225 connections, the server allows "
                            "100 - 3 reserved = 97")
    assert "create_engine() raises TypeError" in problems["statement_cache_size"].problem
    assert "psycopg rejects it" in problems["connect_args.command_timeout"].problem
    assert "half-done work becomes permanent" in problems["pool_reset_on_return"].problem
    assert not check.ok and "225" in check.table()


def test_each_claim_about_the_report_is_what_the_driver_does(pg_url: str) -> None:
    with pytest.raises(TypeError, match="Invalid argument\\(s\\) 'statement_cache_size'"):
        create_engine(pg_url, statement_cache_size=100)
    engine = create_engine(pg_url, connect_args={"command_timeout": 30})
    with pytest.raises(DBAPIError, match='invalid connection option "command_timeout"'):
        engine.connect()
    engine.dispose()


def test_the_check_reports_what_the_driver_refuses(mariadb_engine: Engine) -> None:
    config = OptimizedDatabaseConfig().get_engine_config()
    check = check_pool(mariadb_engine, config, processes=2)
    settings = [p.setting for p in check.problems]
    assert settings[0] == "pool_size/max_overflow"  # 2 x 225 > max_connections
    assert "connect_args.command_timeout" in settings
    refused = next(p for p in check.problems if p.setting == "connect_args")
    assert "unexpected keyword argument 'application_name'" in refused.problem


@pytest.mark.parametrize("processes", [1, 4, 13])  # 13 x 8 = 104 > 97
def test_recommended_settings_fit_the_server(pg_engine: Engine, mariadb_engine: Engine,
                                             processes: int) -> None:
    for engine in (pg_engine, mariadb_engine):
        settings = pool_settings(engine.url, processes=processes, threads=8, mariadb=True)
        check = check_pool(engine, settings.kwargs, processes=processes)
        fits = settings.total <= check.available
        assert check.ok == fits, check.table()
        if not fits:
            assert check.problems[0].setting == "pool_size/max_overflow"
            assert f"at most {check.available // processes} per process" in check.problems[0].fix


def _assert_cancelled(conn: Any, sleep: str, message: str) -> None:
    """``sleep`` (5 s) is cancelled by the 0.3 s statement timeout, well before it ends."""
    started = time.perf_counter()
    with pytest.raises(DBAPIError, match=message):
        conn.execute(text(sleep))
    assert time.perf_counter() - started < 3


def _pg_driver_url(pg_url: str, driver: str) -> str:
    return pg_url.replace("+psycopg:", f"+{driver}:")


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_statement_timeout_and_application_name_libpq(pg_url: str, driver: str) -> None:
    url = _pg_driver_url(pg_url, driver)
    settings = pool_settings(url, threads=2, statement_timeout=0.3,
                             application_name=f"watch-{driver}")
    engine = create_engine(url, **settings.kwargs)
    try:
        with engine.connect() as conn:
            name = conn.execute(text("SELECT application_name FROM pg_stat_activity "
                                     "WHERE pid = pg_backend_pid()")).scalar()
            assert name == f"watch-{driver}"
            _assert_cancelled(conn, "SELECT pg_sleep(5)", "due to statement timeout")
    finally:
        engine.dispose()


def test_statement_timeout_and_application_name_asyncpg(pg_url: str) -> None:
    url = _pg_driver_url(pg_url, "asyncpg")
    settings = pool_settings(url, statement_timeout=0.3, application_name="watch-asyncpg")

    async def run() -> tuple[str, float, str]:
        engine = create_async_engine(url, **settings.kwargs)
        try:
            async with engine.connect() as conn:
                name = (await conn.execute(text(
                    "SELECT application_name FROM pg_stat_activity "
                    "WHERE pid = pg_backend_pid()"))).scalar()
                started = time.perf_counter()
                try:
                    await conn.execute(text("SELECT pg_sleep(5)"))
                except DBAPIError as error:
                    return str(name), time.perf_counter() - started, str(error)
                return str(name), time.perf_counter() - started, ""
        finally:
            await engine.dispose()

    name, took, error = asyncio.run(run())
    assert name == "watch-asyncpg"
    assert "canceling statement due to statement timeout" in error and took < 3


def test_statement_timeout_mariadb(mariadb_url: str) -> None:
    settings = pool_settings(mariadb_url, statement_timeout=0.3, mariadb=True)
    assert settings.kwargs["connect_args"]["init_command"] == (
        "SET SESSION max_statement_time=0.3")
    engine = create_engine(mariadb_url, **settings.kwargs)
    try:
        with engine.connect() as conn:
            _assert_cancelled(conn, "SELECT SLEEP(5)", "max_statement_time exceeded")
    finally:
        engine.dispose()


def test_program_name_visible_in_performance_schema(performance_schema: Engine) -> None:
    url = performance_schema.url
    settings = pool_settings(url, application_name="watch-pymysql", mariadb=True)
    engine = create_engine(url, **settings.kwargs)
    try:
        with engine.connect() as conn:
            name = conn.execute(text(
                "SELECT ATTR_VALUE FROM performance_schema.session_connect_attrs "
                "WHERE PROCESSLIST_ID = CONNECTION_ID() AND ATTR_NAME = 'program_name'"
            )).scalar()
    finally:
        engine.dispose()
    assert name == "watch-pymysql"


def test_aiosqlite_and_pysqlite_get_the_busy_timeout(tmp_path: Any) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'app.db'}"
    settings = pool_settings(url, processes=2, threads=4, connect_timeout=7)
    assert settings.kwargs == {"connect_args": {"timeout": 7}}

    async def run() -> int:
        engine = create_async_engine(url, **settings.kwargs)
        try:
            async with engine.connect() as conn:
                return int((await conn.execute(text("SELECT 1"))).scalar_one())
        finally:
            await engine.dispose()

    assert asyncio.run(run()) == 1
    assert "no statement timeout" in " ".join(settings.notes)
    assert pool_settings(f"sqlite:///{tmp_path / 'b.db'}").kwargs == {
        "connect_args": {"timeout": 10}}


def test_spellings_per_driver() -> None:
    common = {"pool_size": 8, "max_overflow": 0, "pool_timeout": 30, "pool_recycle": 540,
              "pool_pre_ping": True, "pool_reset_on_return": "rollback"}
    for driver in ("psycopg", "psycopg2"):
        settings = pool_settings(f"postgresql+{driver}://u@h/d", processes=3, threads=8,
                                 statement_timeout=30, application_name="app",
                                 idle_timeout=600, connect_timeout=0.5)
        assert dict(settings.kwargs) == {**common, "connect_args": {
            "connect_timeout": 2, "application_name": "app",
            "options": "-c statement_timeout=30000"}}
        assert settings.total == 24
    asyncpg = pool_settings("postgresql+asyncpg://u@h/d", threads=8, application_name="app",
                            idle_timeout=600)
    assert asyncpg.kwargs["connect_args"] == {"timeout": 10, "server_settings": {
        "application_name": "app", "statement_timeout": "30000"}}
    mysql = pool_settings("mysql+pymysql://u@h/d", statement_timeout=2.5)
    assert mysql.kwargs["connect_args"]["init_command"] == (
        "SET SESSION max_execution_time=2500")
    mariadb = pool_settings("mariadb+pymysql://u@h/d", statement_timeout=2.5)
    assert mariadb.kwargs["connect_args"]["init_command"] == "SET SESSION max_statement_time=2.5"
    assert pool_settings("postgresql+psycopg://u@h/d").kwargs["pool_recycle"] == 1800
    untimed = pool_settings("postgresql+psycopg://u@h/d", statement_timeout=None)
    assert "options" not in untimed.kwargs["connect_args"]


def test_bad_input() -> None:
    with pytest.raises(WatchError, match=r"knows the drivers .* not 'pg8000'"):
        pool_settings("postgresql+pg8000://u@h/d")
    with pytest.raises(WatchError, match="threads must be a positive int"):
        pool_settings("postgresql+psycopg://u@h/d", threads=0)
    with pytest.raises(WatchError, match="overflow must be a non-negative int"):
        pool_settings("postgresql+psycopg://u@h/d", overflow=-1)
