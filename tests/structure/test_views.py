"""Materialized views: DDL per dialect, refresh and staleness, the read-only ORM class, and the
dashboard served from ``barber_monthly_stats`` equal to the live one (hypothesis)."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, insert, select, text
from sqlalchemy.orm import Session

import sqlaopt
from sqlaopt.booking import optimized
from sqlaopt.booking.models import Appointment, Base, User
from sqlaopt.structure import (
    BARBER_MONTHLY_STATS,
    MaterializedView,
    ReadOnlyViewError,
    StructureError,
    monthly_dashboard,
)
from sqlaopt.structure._refreshes import REFRESHES

from ..booking.conftest import replace_rows
from ..booking.strategies import FIRST_DAY, Rows, datasets

VIEW = BARBER_MONTHLY_STATS


def view_rows(engine: Engine) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        return sorted(tuple(r) for r in conn.execute(select(VIEW.table)))


def live_rows(engine: Engine) -> list[tuple[object, ...]]:
    """The view's own query, run now."""
    with engine.connect() as conn:
        return sorted(tuple(r) for r in conn.execute(VIEW.query))


def add_completed(engine: Engine, barber: int, start: dt.datetime, price: str) -> None:
    with engine.begin() as conn:
        conn.execute(insert(Appointment).values(
            barber_id=barber, service_name="Cut", start_time=start,
            end_time=start + dt.timedelta(minutes=30), duration_minutes=30,
            status="completed", price=Decimal(price),
        ))


# --- declaration ----------------------------------------------------------------------------


def test_every_selected_column_needs_a_name() -> None:
    with pytest.raises(StructureError, match="label"):
        MaterializedView("v", select(User.id, func.count(User.id)), unique=None)


def test_every_selected_column_needs_a_type_every_database_can_store() -> None:
    with pytest.raises(StructureError, match="no SQL type"):
        MaterializedView("v", select(func.date(User.created_at).label("day")), unique=None)


def test_unique_columns_must_be_selected_and_the_error_suggests_the_closest() -> None:
    query = select(User.id.label("barber_id"), User.name)
    with pytest.raises(StructureError, match=r"'barber'.*did you mean 'barber_id'"):
        MaterializedView("v", query, unique=["barber"])


def test_names_are_plain_lower_case_identifiers() -> None:
    with pytest.raises(StructureError, match="lower-case"):
        MaterializedView("Barber Stats", select(User.id), unique=["id"])


def test_postgresql_gets_a_materialized_view_with_corrected_roles_and_a_unique_index() -> None:
    create, index = VIEW.ddl("postgresql")
    assert create.startswith("CREATE MATERIALIZED VIEW IF NOT EXISTS barber_monthly_stats AS")
    assert "users.unified_role IN ('barber', 'shop_owner')" in create
    assert "BARBER" not in create and create.endswith("WITH DATA")
    assert index == (
        "CREATE UNIQUE INDEX IF NOT EXISTS barber_monthly_stats_key ON barber_monthly_stats "
        "(barber_id, month)"
    )


@pytest.mark.parametrize("dialect", ["sqlite", "mysql", "mariadb"])
def test_other_databases_get_a_table_filled_by_the_same_query(dialect: str) -> None:
    create, index, fill = VIEW.ddl(dialect)
    assert create.startswith("CREATE TABLE barber_monthly_stats (")
    assert index.startswith("CREATE UNIQUE INDEX")
    assert fill.startswith("INSERT INTO barber_monthly_stats (barber_id, barber_name, month,")
    assert "SELECT users.id AS barber_id" in fill
    assert VIEW.ddl(dialect, with_data=False) == [create, index]


def test_mysql_stores_averages_with_their_decimals() -> None:
    create = VIEW.ddl("mariadb")[0]
    assert "avg_service_price NUMERIC(38, 10)" in create  # not DECIMAL(10,0)


def test_an_unknown_dialect_is_refused_with_the_closest_name() -> None:
    with pytest.raises(StructureError, match="did you mean 'postgresql'"):
        VIEW.ddl("postgres")


# --- against each database --------------------------------------------------------------------


def test_create_refresh_and_staleness(booked: Engine) -> None:
    assert VIEW.last_refreshed(booked) is None
    before = dt.datetime.now(dt.timezone.utc)
    assert VIEW.create(booked) is True
    assert VIEW.create(booked) is False  # idempotent
    assert view_rows(booked) == live_rows(booked) != []
    created = VIEW.last_refreshed(booked)
    assert created is not None and created >= before - dt.timedelta(seconds=1)

    add_completed(booked, 1, dt.datetime(2024, 1, 8, 7, 0), "99.50")
    assert view_rows(booked) != live_rows(booked)  # stale until refreshed
    assert VIEW.refresh_if_older(booked, dt.timedelta(hours=1)) is None
    assert view_rows(booked) != live_rows(booked)

    refresh = VIEW.refresh(booked)
    assert view_rows(booked) == live_rows(booked)
    assert refresh.concurrently and refresh.refreshed_at > created
    assert VIEW.last_refreshed(booked) == refresh.refreshed_at

    add_completed(booked, 2, dt.datetime(2024, 1, 9, 7, 0), "10.00")
    again = VIEW.refresh_if_older(booked, dt.timedelta(0))
    assert again is not None and again.refreshed_at > refresh.refreshed_at
    assert view_rows(booked) == live_rows(booked)

    VIEW.drop(booked)
    assert not VIEW.exists(booked) and VIEW.last_refreshed(booked) is None
    with pytest.raises(StructureError, match="does not exist"):
        VIEW.refresh(booked)


def test_refresh_inside_the_callers_transaction_rolls_back_with_it(booked: Engine) -> None:
    VIEW.create(booked)
    before, stamp = view_rows(booked), VIEW.last_refreshed(booked)
    add_completed(booked, 1, dt.datetime(2024, 1, 8, 7, 0), "99.50")
    with booked.connect() as conn, conn.begin() as transaction:
        VIEW.refresh(conn)
        transaction.rollback()
    assert view_rows(booked) == before and VIEW.last_refreshed(booked) == stamp


def test_without_a_unique_index_concurrent_refresh_is_refused_plain_refresh_works(
    pg: Engine,
) -> None:
    Base.metadata.create_all(pg)
    plain = MaterializedView("user_names", select(User.id, User.name), unique=None)
    plain.create(pg)
    with pytest.raises(StructureError, match=r"unique index.*concurrently=False"):
        plain.refresh(pg)
    assert plain.refresh(pg, concurrently=False).concurrently is False


def test_a_view_created_without_data_gets_a_plain_first_refresh(pg: Engine) -> None:
    generate_small(pg)
    VIEW.create(pg, with_data=False)
    assert VIEW.last_refreshed(pg) is None
    with pg.connect() as conn, pytest.raises(Exception, match="has not been populated"):
        conn.execute(select(VIEW.table))
    assert VIEW.refresh(pg).concurrently is False  # PostgreSQL cannot do the first one so
    assert VIEW.refresh(pg).concurrently is True
    assert view_rows(pg) == live_rows(pg)


def generate_small(engine: Engine) -> None:
    from sqlaopt.booking import generate

    generate(engine, 300)


def test_concurrent_refresh_does_not_block_readers(pg: Engine) -> None:
    """A reader in another transaction reads the old rows while a concurrent refresh holds
    its lock (a plain refresh's ACCESS EXCLUSIVE lock would make it wait)."""
    generate_small(pg)
    VIEW.create(pg)
    with pg.connect() as refresher, refresher.begin():
        VIEW.refresh(refresher)  # not committed yet: its lock is held
        with pg.connect() as reader:
            reader.exec_driver_sql("SET lock_timeout = '500ms'")
            assert reader.scalar(select(func.count()).select_from(VIEW.table)) > 0


def test_refresh_if_older_refreshes_once_however_many_workers_ask(pg: Engine) -> None:
    generate_small(pg)
    VIEW.create(pg)
    with pg.begin() as conn:  # make the view an hour old
        conn.execute(REFRESHES.update().values(
            refreshed_at=REFRESHES.c.refreshed_at - dt.timedelta(hours=1)))
    results: list[object] = []
    start = threading.Barrier(6)

    def worker() -> None:
        start.wait()
        results.append(VIEW.refresh_if_older(pg, dt.timedelta(minutes=5)))

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 6
    assert sum(r is not None for r in results) == 1


# --- ORM --------------------------------------------------------------------------------------


def test_the_orm_class_reads_rows_and_refuses_every_write(booked: Engine) -> None:
    VIEW.create(booked)
    stats = VIEW.orm_class(Base)
    assert VIEW.orm_class(Base) is stats
    assert "barber_monthly_stats" not in Base.metadata.tables
    with Session(booked) as session:
        rows = session.scalars(select(stats).order_by(stats.barber_id, stats.month)).all()
        assert [(r.barber_id, r.month) for r in rows] == [r[:1] + r[2:3] for r in view_rows(booked)]
        rows[0].total_revenue = Decimal("1.00")
        with pytest.raises(ReadOnlyViewError, match="cannot be updated"):
            session.flush()
        session.rollback()
        session.delete(session.scalars(select(stats)).first())
        with pytest.raises(ReadOnlyViewError, match="cannot be deleted"):
            session.flush()
        session.rollback()
        session.add(stats(barber_id=99, month=dt.date(2024, 1, 1)))
        with pytest.raises(ReadOnlyViewError, match="cannot be inserted"):
            session.flush()


# --- the dashboard served from the view equals the live one -------------------------------------

EXAMPLES = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _months(rows: Rows) -> st.SearchStrategy[tuple[int, dt.date]]:
    barbers = [u["id"] for u in rows["users"] if u["unified_role"] == "barber"]
    months = [FIRST_DAY.replace(day=1), dt.date(2025, 10, 1), dt.date(2025, 11, 1)]
    return st.tuples(st.sampled_from(barbers), st.sampled_from(months))


@pytest.mark.nplusone(mode="off")  # hypothesis repeats each statement per example
@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
@EXAMPLES
@given(data=st.data())
def test_dashboard_from_the_view_equals_the_live_dashboard_after_a_refresh(
    kind: str, data: st.DataObject, request: pytest.FixtureRequest
) -> None:
    engine = _dashboard_engine(request, kind)
    rows = data.draw(datasets())
    replace_rows(engine, rows)
    VIEW.refresh(engine, concurrently=kind == "postgresql")
    for barber, month in data.draw(st.lists(_months(rows), min_size=1, max_size=3)):
        following = (month + dt.timedelta(days=32)).replace(day=1)
        with Session(engine) as session, sqlaopt.count_queries() as queries:
            served = monthly_dashboard(session, barber, month)
        with Session(engine) as session:
            live = optimized.analytics_dashboard(session, barber, month, following)
        assert served == live
        assert queries.count == 1


_ENGINES: dict[str, Engine] = {}


def _dashboard_engine(request: pytest.FixtureRequest, kind: str) -> Engine:
    """One database per kind for all examples (hypothesis reuses function fixtures)."""
    if kind not in _ENGINES:
        if kind == "sqlite":
            from ..conftest import sqlite_engine

            engine = sqlite_engine()
        else:
            engine = request.getfixturevalue("pg")
        Base.metadata.create_all(engine)
        VIEW.create(engine)
        _ENGINES[kind] = engine
        request.addfinalizer(lambda: _ENGINES.pop(kind, None))
    return _ENGINES[kind]


def test_refresh_records_are_per_view(sqlite: Engine) -> None:
    Base.metadata.create_all(sqlite)
    other = MaterializedView("user_count", select(func.count(User.id).label("n")), unique=["n"])
    other.create(sqlite)
    VIEW.create(sqlite)
    with sqlite.connect() as conn:
        names = set(conn.scalars(select(REFRESHES.c.name)))
        assert names == {"user_count", "barber_monthly_stats"}
        assert conn.execute(text("SELECT n FROM user_count")).scalar() == 0
