"""Alembic: autogenerate sees applied indexes; the generated revision runs for real."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import IntegrityError

from sqlaopt.indexes import REPORT, alembic_migration, apply, check, create

from .conftest import reference_copy

ENV_PY = """
from alembic import context

config = context.config
if context.is_offline_mode():
    context.configure(dialect_name="postgresql", literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    context.configure(connection=config.attributes["connection"])
    with context.begin_transaction():
        context.run_migrations()
"""

HEADER = '''"""Add the performance report's indexes.

Revision ID: 0001
Revises:
"""
revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

'''


def alembic_project(tmp_path: Path, body: str) -> Config:
    """A real Alembic project whose only revision is ``body`` under a standard header."""
    scripts = tmp_path / "migrations"
    (scripts / "versions").mkdir(parents=True)
    (scripts / "env.py").write_text(ENV_PY)
    (scripts / "script.py.mako").write_text("")
    (scripts / "versions" / "0001_indexes.py").write_text(HEADER + body)
    config = Config()
    config.set_main_option("script_location", str(scripts))
    return config


def upgrade(config: Config, conn: Connection, revision: str = "head") -> None:
    config.attributes["connection"] = conn
    command.upgrade(config, revision)


# Alembic inspects each table with the same catalog queries, which the N+1 detector flags.
def test_autogenerate_picks_up_applied_indexes_and_then_sees_no_difference(
    pg_engine: Engine,
) -> None:
    metadata = reference_copy()
    metadata.create_all(pg_engine)
    apply(metadata)
    with pg_engine.connect() as conn:
        before = compare_metadata(MigrationContext.configure(conn), metadata)
    added = {diff[1].name for diff in before if diff[0] == "add_index"}
    assert added == {e.name for e in REPORT if e.name != "no_double_booking"}
    create(pg_engine, target=metadata)
    with pg_engine.connect() as conn:
        after = compare_metadata(MigrationContext.configure(conn), metadata)
    # Expression indexes included: the timestamptz forms compare equal to PostgreSQL's own.
    assert [d for d in after if d[0] in ("add_index", "remove_index")] == []


def test_the_generated_revision_runs_in_a_real_alembic_migration(
    pg_engine: Engine, tmp_path: Path
) -> None:
    reference_copy().create_all(pg_engine)
    body = alembic_migration()
    assert "with op.get_context().autocommit_block():" in body
    config = alembic_project(tmp_path, body)
    with pg_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO users (id, email, name, unified_role, is_active, lifetime_value)"
                " VALUES (1, 'a@x', 'a', 'client', true, 1), (2, 'b@x', 'b', 'client', true, 2)"
            )
        )
    # A leftover of an earlier failed concurrent build, under a REPORT name.
    with (
        pg_engine.connect() as conn,
        pytest.raises(IntegrityError, match="could not create unique"),
    ):
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
            "CREATE UNIQUE INDEX CONCURRENTLY idx_users_ltv_tracking ON users (unified_role)"
        )
    assert check(pg_engine)["idx_users_ltv_tracking"].status == "invalid"
    with pg_engine.connect() as conn:
        upgrade(config, conn)
    assert check(pg_engine).ok  # CONCURRENTLY worked: every build ran outside a transaction
    with pg_engine.connect() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "base")
    assert {e.status for e in check(pg_engine)} == {"missing"}
    with pg_engine.connect() as conn:
        upgrade(config, conn)
    assert check(pg_engine).ok


def test_offline_sql_commits_around_each_concurrent_build(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = alembic_project(tmp_path, alembic_migration())
    command.upgrade(config, "head", sql=True)
    sql = capsys.readouterr().out
    first = sql.index("CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_payments_analytics_optimized")
    assert sql.rindex("COMMIT;", 0, first) > sql.index("CREATE EXTENSION IF NOT EXISTS btree_gist")
    assert "BEGIN;" in sql[first:]
    assert sql.count("CREATE INDEX CONCURRENTLY IF NOT EXISTS") == 13
    assert "ADD CONSTRAINT no_double_booking EXCLUDE USING gist" in sql


def test_the_revision_refuses_another_dialect(sqlite_engine: Engine, tmp_path: Path) -> None:
    reference_copy().create_all(sqlite_engine)
    config = alembic_project(tmp_path, alembic_migration())
    with (
        sqlite_engine.connect() as conn,
        pytest.raises(RuntimeError, match="generated for postgresql"),
    ):
        upgrade(config, conn)


def test_a_sqlite_revision_runs_on_sqlite(sqlite_engine: Engine, tmp_path: Path) -> None:
    reference_copy().create_all(sqlite_engine)
    body = alembic_migration(dialect="sqlite")
    assert (
        "autocommit_block" not in body and "sqlite_where=sa.text(\"status = 'completed'\")" in body
    )
    config = alembic_project(tmp_path, body)
    with sqlite_engine.connect() as conn:
        upgrade(config, conn)
        conn.commit()
    assert check(sqlite_engine).ok
