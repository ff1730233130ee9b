"""``sqlaopt indexes sql|check|create|migration`` through the real entry point."""

from __future__ import annotations

import contextlib
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
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
    status, _, err = run(capsys, "check", "--url", "nosuchdb://x/y")
    assert status == 2 and err.startswith("sqlaopt indexes: --url: ")
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


def test_unusable_database_exits_3(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, _, err = run(capsys, "check", "--url", f"sqlite:///{tmp_path}/no/such/dir.db")
    assert status == 3
    assert err == "sqlaopt indexes: database error: unable to open database file\n"


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


# --- any spec, any models, from the project's directory -------------------------------------

MODELS = Path(__file__).with_name("backend_schema.py").read_text()
SPEC_MODULE = """
from sqlaopt.indexes import IndexSpec, Spec

SPEC = Spec([IndexSpec("ix_clients_last_visit", "clients", ["last_visit_date"])])
NOT_A_SPEC = "ix_clients_last_visit"
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project directory with ``app/models.py`` (the backend's base) and ``app/indexes.py``
    (a spec of its own), as the docs show; ``app/broken.py`` fails while importing."""
    app = tmp_path / "app"
    app.mkdir()
    (app / "__init__.py").write_text("")
    (app / "models.py").write_text(MODELS + "\nBase = backend_base()\n")
    (app / "indexes.py").write_text(SPEC_MODULE)
    (app / "broken.py").write_text("import sqlaopt\nratio = 1 / 0\n")
    return tmp_path


def command(project: Path, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """The installed ``sqlaopt`` console script, run from ``project``."""
    script = Path(sys.executable).with_name("sqlaopt")
    return subprocess.run([str(script), *argv], capture_output=True, text=True, check=False,
                          cwd=project, timeout=timeout)


def test_models_and_spec_import_from_the_current_directory(project: Path) -> None:
    done = command(project, "indexes", "sql", "--dialect", "sqlite",
                   "--models", "app.models:Base", "--spec", "app.indexes:SPEC")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "CREATE INDEX IF NOT EXISTS ix_clients_last_visit ON clients (last_visit_date);"
    ]


@pytest.fixture
def in_project(project: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """In-process runs from ``project`` (a subprocess costs seconds); sys.path and the
    imported ``app`` modules are restored afterwards."""
    monkeypatch.chdir(project)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(project))])
    before = set(sys.modules)
    yield project
    for name in set(sys.modules) - before:
        del sys.modules[name]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--models", "app.broken:Base"],
         "--models app.broken:Base: cannot import app.broken from {project}: "
         "ZeroDivisionError: division by zero"),
        (["--models", "app.models:Bsae"],
         "--models app.models:Bsae: app.models has no attribute 'Bsae' (did you mean 'Base'?)"),
        (["--models", "app.models:backend_base"],
         "--models app.models:backend_base is a function, not a declarative base or a MetaData"),
        (["--spec", "app.indexes:NOT_A_SPEC"],
         "--spec app.indexes:NOT_A_SPEC is a str, not a Spec or a list of "
         "IndexSpec/ExclusionSpec"),
        (["--spec", "app.nothing:SPEC"],
         "--spec app.nothing:SPEC: cannot import app.nothing from {project}: "
         "ModuleNotFoundError: No module named 'app.nothing'"),
    ],
)
def test_import_problems_exit_2_with_one_line(
    in_project: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    status, out, err = run(capsys, "sql", *argv)
    assert (status, out) == (2, "")
    assert err == f"sqlaopt indexes: {message.format(project=in_project)}\n"


def test_hints_are_written_as_command_line_flags(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "sql", "--models", BACKEND)
    assert status == 2
    assert "--rename table.column=real_name --rename table=real_table" in err
    assert "--on-missing warn" in err and "rename={" not in err and "on_missing=" not in err


def test_each_entry_that_does_not_fit_is_reported_once(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    fit = ["--models", BACKEND, "--rename", "clients.last_visit=last_visit_date",
           "--rename", "ai_insight_cache=ai_insights_cache"]
    left_out = ["no_double_booking", "idx_users_org_role_active", "idx_clients_retention_analysis"]
    status, out, err = run(capsys, "sql", *fit, "--on-missing", "warn")
    assert status == 0
    for name in left_out:
        assert (out + err).count(f"{name}:") == 1, name
        assert f"warning: {name}: skipped (" in err
    status, out, err = run(capsys, "sql", *fit, "--on-missing", "skip")
    assert status == 0 and err == ""
    assert not any(name in out for name in left_out)
    status, out, err = run(capsys, "migration", *fit, "--on-missing", "warn")
    assert status == 0
    for name in left_out:
        assert (out + err).count(f"{name}: skipped") == 1, name

    url = f"sqlite:///{tmp_path / 'app.db'}"
    status, out, err = run(capsys, "check", "--url", url, *fit, "--on-missing", "warn")
    for name in left_out:
        assert (out + err).count(f"{name}: skipped") == 1, name
        row = next(line for line in out.splitlines() if line.startswith(name))
        assert row.split(None, 3)[2:] == ["skipped", "left out: does not fit the models"]


# --- timeouts: a hung server, a held lock ------------------------------------------------------


@pytest.fixture
def hung_server() -> Iterator[int]:
    """A port whose server accepts connections and never says a word."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                accepted.append(server.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    server.close()


def test_a_hung_server_fails_within_the_connect_timeout(
    hung_server: int, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """PostgreSQL in-process (libpq's own timeout, 2 s at least, ends the attempt); MySQL
    through the console script: PyMySQL's connect_timeout covers only the TCP connect, the
    server's greeting never comes, and the process must still end."""
    where = f"127.0.0.1:{hung_server}/booking"
    started = time.monotonic()
    status, _, err = run(capsys, "check", "--url", f"postgresql+psycopg://app@{where}",
                         "--connect-timeout", "1")
    assert time.monotonic() - started < 5
    assert status == 3
    assert err == (f"sqlaopt indexes: cannot connect to postgresql at {where}: connection "
                   "timeout expired\n")
    started = time.monotonic()
    done = command(tmp_path, "indexes", "check", "--url", f"mysql+pymysql://app@{where}",
                   "--connect-timeout", "1", timeout=30)
    assert time.monotonic() - started < 15  # 2 s of waiting, plus the interpreter's start
    assert done.returncode == 3
    assert done.stderr == (
        f"sqlaopt indexes: no answer from mysql at {where} within 1 s (connect timeout): the "
        "server accepted no connection or never replied\n"
    )


def test_the_default_timeouts_are_shown_and_configurable(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["indexes", "create", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--connect-timeout SECONDS give up connecting after this long (default 10)" in help_text
    assert "(default 60)" in help_text
    with pytest.raises(SystemExit) as exited:
        main(["indexes", "check", "--url", "sqlite://", "--connect-timeout", "0"])
    assert exited.value.code == 2


def test_a_held_lock_exits_3_within_the_lock_timeout(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "app.db"
    engine = create_engine(f"sqlite:///{path}")
    reference_copy().create_all(engine)
    engine.dispose()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer, mid-transaction
    try:
        started = time.monotonic()
        status, out, err = run(capsys, "create", "--url", f"sqlite:///{path}",
                               "--lock-timeout", "0.3")
        assert time.monotonic() - started < 5
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert status == 3 and out == ""
    assert err.startswith("sqlaopt indexes: waited 0.3 s for SQLite's write lock")
