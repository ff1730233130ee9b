"""``sqlaopt db report|advise``: thin adapters, JSON and text, exit statuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine

import sqlaopt
from sqlaopt.cli import main
from sqlaopt.watch import Workload, WorkloadStatement, check_pool, report

USER_APPOINTMENTS = WorkloadStatement(
    "SELECT * FROM appointments WHERE user_id = %(u)s ORDER BY start_time", {"u": 300}, 4)


def test_report_json(pg_engine: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    url = pg_engine.url.render_as_string(hide_password=False)
    assert main(["db", "report", "--url", url, "--json", "--processes", "4"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert set(document) == {"slow_statements", "index_health", "index_advice", "pool_check",
                             "pool_settings", "unavailable"}
    assert document["unavailable"] == {}
    assert document["slow_statements"]["source"].startswith("pg_stat_statements")
    assert document["pool_check"]["processes"] == 4 and document["pool_check"]["ok"] is True
    assert document["pool_settings"]["kwargs"]["pool_reset_on_return"] == "rollback"


def test_report_text_names_what_the_server_cannot_give(
    mariadb_engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    url = mariadb_engine.url.render_as_string(hide_password=False)
    assert main(["db", "report", "--url", url]) == 0
    out = capsys.readouterr().out
    assert "pool check (mariadb)" in out and "index health (mariadb" in out
    if "slow statements (performance_schema" not in out:
        assert "slow statements: unavailable: Reading slow statements needs performance_schema" \
            in out


@pytest.mark.parametrize("output", ["table", "python", "sql", "migration", "json"])
def test_advise_a_workload_file(bookings: Engine, tmp_path: Path, output: str,
                                capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "workload.json"
    Workload((USER_APPOINTMENTS,)).to_json(path)
    url = bookings.url.render_as_string(hide_password=False)
    assert main(["db", "advise", "--url", url, "--workload", str(path),
                 "--output", output]) == 0
    out = capsys.readouterr().out
    expected = {
        "table": "idx_appointments_user_id: appointments (user_id)",
        "python": "IndexSpec('idx_appointments_user_id', 'appointments', ['user_id'])",
        "sql": "CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_appointments_user_id "
               "ON public.appointments (user_id);",
        "migration": '"idx_appointments_user_id",',
        "json": '"name": "idx_appointments_user_id"',
    }[output]
    assert expected in out


def test_bad_input_exits_2(tmp_path: Path, pg_engine: Engine,
                           capsys: pytest.CaptureFixture[str]) -> None:
    url = pg_engine.url.render_as_string(hide_password=False)
    assert main(["db", "advise", "--url", url, "--workload", str(tmp_path / "none.json")]) == 2
    assert "sqlaopt db: WatchError: cannot read workload file" in capsys.readouterr().err
    assert main(["db", "report", "--url", "postgresql+psycopg://nobody@127.0.0.1:1/x"]) == 2
    assert "sqlaopt db: OperationalError" in capsys.readouterr().err
    assert main(["db", "advise", "--url", "sqlite://"]) == 2
    assert "sqlite keeps no statement statistics" in capsys.readouterr().err


def test_monitoring_is_not_the_applications_sql(pg_engine: Engine) -> None:
    """Its catalog reads and repeated EXPLAINs neither trip the N+1 detector nor count."""
    with sqlaopt.detect("raise"), sqlaopt.count_queries() as counted:
        result = report(pg_engine, processes=2)
        workload = Workload((USER_APPOINTMENTS,))
        check_pool(pg_engine, result.settings.kwargs if result.settings else {})
    assert counted.count == 0
    assert workload.statements[0].calls == 4
