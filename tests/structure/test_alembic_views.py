"""The Alembic operations, run by real Alembic: create, replace, drop and back, online on
SQLite, PostgreSQL and MariaDB, and offline (``--sql``, PostgreSQL)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, inspect, select

from sqlaopt.booking import generate
from sqlaopt.structure import BARBER_MONTHLY_STATS
from sqlaopt.structure._refreshes import REFRESHES

from ..indexes.test_alembic import ENV_PY  # the same env.py: offline mode renders PostgreSQL

CREATE = '''"""Create barber_monthly_stats."""
from alembic import op

import sqlaopt.structure.alembic  # noqa: F401  (registers the operations)
from sqlaopt.structure import BARBER_MONTHLY_STATS

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_materialized_view(BARBER_MONTHLY_STATS)


def downgrade() -> None:
    op.drop_materialized_view(BARBER_MONTHLY_STATS)
'''

REPLACE = '''"""barber_monthly_stats: revenue only (the definition as of this revision)."""
from alembic import op
from sqlalchemy import func, select

import sqlaopt.structure.alembic  # noqa: F401
from sqlaopt.booking.models import Appointment
from sqlaopt.sql import date_bucket
from sqlaopt.structure import BARBER_MONTHLY_STATS, MaterializedView

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

month = date_bucket("month", Appointment.start_time)
REVENUE_ONLY = MaterializedView(
    "barber_monthly_stats",
    select(
        Appointment.barber_id, month.label("month"), func.sum(Appointment.price).label("revenue")
    ).where(Appointment.status == "completed").group_by(Appointment.barber_id, month),
    unique=["barber_id", "month"],
)


def upgrade() -> None:
    op.replace_materialized_view(REVENUE_ONLY, replaces=BARBER_MONTHLY_STATS)


def downgrade() -> None:
    op.replace_materialized_view(BARBER_MONTHLY_STATS, replaces=REVENUE_ONLY)
'''


def project(tmp_path: Path) -> Config:
    scripts = tmp_path / "migrations"
    (scripts / "versions").mkdir(parents=True)
    (scripts / "env.py").write_text(ENV_PY)
    (scripts / "script.py.mako").write_text("")
    (scripts / "versions" / "0001_create.py").write_text(CREATE)
    (scripts / "versions" / "0002_replace.py").write_text(REPLACE)
    config = Config(output_buffer=io.StringIO())
    config.set_main_option("script_location", str(scripts))
    return config


def columns(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.exec_driver_sql("SELECT * FROM barber_monthly_stats LIMIT 0").keys())


def migrate(config: Config, engine: Engine, action: str, revision: str) -> None:
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        getattr(command, action)(config, revision)


@pytest.mark.nplusone(mode="off")  # Alembic reads its version table once per step
def test_create_replace_and_back_with_real_alembic(any_db: Engine, tmp_path: Path) -> None:
    generate(any_db, 300)
    config = project(tmp_path)
    migrate(config, any_db, "upgrade", "0001")
    assert "total_appointments" in columns(any_db)
    with any_db.connect() as conn:
        assert conn.scalar(select(REFRESHES.c.refreshed_at)) is not None
        stored = sorted(conn.execute(select(BARBER_MONTHLY_STATS.table)).all())
        assert stored == sorted(conn.execute(BARBER_MONTHLY_STATS.query).all()) != []

    migrate(config, any_db, "upgrade", "head")
    assert columns(any_db) == ["barber_id", "month", "revenue"]
    with any_db.connect() as conn:
        assert conn.scalar(select(REFRESHES.c.refreshed_at)) is not None

    migrate(config, any_db, "downgrade", "0001")
    assert "total_appointments" in columns(any_db)
    migrate(config, any_db, "downgrade", "base")
    assert not BARBER_MONTHLY_STATS.exists(any_db)
    with any_db.connect() as conn:
        assert conn.scalar(select(REFRESHES.c.name)) is None
        assert not inspect(conn).has_table("barber_monthly_stats")


def test_offline_mode_writes_the_sql(tmp_path: Path) -> None:
    config = project(tmp_path)
    command.upgrade(config, "head", sql=True)
    assert isinstance(config.output_buffer, io.StringIO)
    script = config.output_buffer.getvalue()
    assert "CREATE MATERIALIZED VIEW IF NOT EXISTS barber_monthly_stats AS" in script
    assert "DROP MATERIALIZED VIEW IF EXISTS barber_monthly_stats" in script
    assert "(now() AT TIME ZONE 'UTC')" in script
    assert "CREATE UNIQUE INDEX IF NOT EXISTS barber_monthly_stats_key" in script
    assert "INSERT INTO sqlaopt_refreshes (name, refreshed_at)" in script
