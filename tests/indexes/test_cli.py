"""``sqlaopt indexes sql|check|create|migration`` through the real entry point."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from sqlaopt.cli import main

from .conftest import reference_copy

BACKEND = "tests.indexes.backend_schema:Base"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(["indexes", *argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_sql_for_postgresql(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "sql", "--dialect", "postgresql")
    statements = [line for line in out.splitlines() if line and not line.startswith("--")]
    assert status == 0
    assert statements[0] == "CREATE EXTENSION IF NOT EXISTS btree_gist;"
    assert "-- Run each statement on its own, outside a transaction block" in out
    assert "-- idx_payments_daily_analytics: adapted: created_at is timestamptz" in out


def test_sql_for_mysql_says_what_was_adapted_or_skipped(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "sql", "--dialect", "mysql")
    assert status == 0
    assert "-- idx_users_ltv_tracking: adapted: MySQL has no partial indexes" in out
    assert "-- no_double_booking: skipped: exclusion constraints exist only in PostgreSQL" in out
    assert " WHERE " not in "\n".join(
        line for line in out.splitlines() if not line.startswith("--")
    )


def test_models_that_do_not_fit_exit_2_with_the_reason(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "sql", "--models", BACKEND)
    assert status == 2
    assert "table 'appointments' has no column 'end_time'" in err


def test_models_with_renames_and_warn(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(
        capsys,
        "sql",
        "--models",
        BACKEND,
        "--on-missing",
        "warn",
        "--rename",
        "clients.last_visit=last_visit_date",
        "--rename",
        "clients.user_id=barber_id",
        "--rename",
        "ai_insight_cache=ai_insights_cache",
    )
    assert status == 0
    assert "warning: idx_users_org_role_active: skipped" in err
    assert "ON ai_insights_cache (user_id, insight_type, created_at, is_active);" in out
    assert "ON clients (barber_id, last_visit_date, created_at, total_spent);" in out
    assert "no_double_booking" not in "\n".join(
        line for line in out.splitlines() if not line.startswith("--")
    )


def test_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "sql", "--models", "no_such_module:Base")
    assert status == 2 and "No module named 'no_such_module'" in err
    status, _, err = run(capsys, "sql", "--models", "sqlaopt.booking.models")
    assert status == 2 and "MODULE:BASE" in err
    status, _, err = run(capsys, "sql", "--rename", "users.email=mail")
    assert status == 2 and "not a column the spec uses" in err
    with pytest.raises(SystemExit):
        main(["indexes", "sql", "--rename", "no-equals-sign"])
    with pytest.raises(SystemExit):
        main(["indexes", "sql", "--dialect", "oracle"])


def test_check_and_create_on_sqlite(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    engine = create_engine(url)
    reference_copy().create_all(engine)
    engine.dispose()
    status, out, _ = run(capsys, "check", "--url", url)
    assert status == 1 and "missing" in out
    status, out, _ = run(capsys, "create", "--url", url)
    assert status == 0 and "created" in out
    status, out, _ = run(capsys, "check", "--url", url)
    assert status == 0 and "missing" not in out
    assert out.splitlines()[0].split() == ["entry", "table", "status", "detail"]


def test_check_and_create_on_postgresql(
    capsys: pytest.CaptureFixture[str], pg_engine: Engine
) -> None:
    reference_copy().create_all(pg_engine)
    with pg_engine.connect() as conn:
        schema = conn.execute(text("SELECT current_schema()")).scalar()
    url = pg_engine.url.update_query_dict({"options": f"-csearch_path={schema}"})
    rendered = url.render_as_string(hide_password=False)
    assert run(capsys, "check", "--url", rendered)[0] == 1
    status, out, _ = run(capsys, "create", "--url", rendered)
    assert status == 0
    assert {line.split()[1] for line in out.splitlines()[1:]} == {"created"}
    assert run(capsys, "check", "--url", rendered)[0] == 0


def test_unreachable_database_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, _, err = run(capsys, "check", "--url", f"sqlite:///{tmp_path}/no/such/dir.db")
    assert status == 2 and "OperationalError" in err


def test_migration(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "migration")
    assert status == 0
    assert "def upgrade() -> None:" in out and "autocommit_block()" in out
    compile(out, "revision body", "exec")  # valid Python


def test_the_installed_command(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sqlaopt", "indexes", "sql", "--dialect", "sqlite"],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("CREATE INDEX IF NOT EXISTS") == 13
