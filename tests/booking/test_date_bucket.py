"""``date_bucket`` gives the same buckets on PostgreSQL, SQLite and MariaDB as Python does."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import (
    Column,
    Date,
    DateTime,
    Engine,
    Integer,
    MetaData,
    Table,
    create_engine,
    delete,
    func,
    insert,
    literal,
    select,
)
from sqlalchemy.dialects import mssql, mysql
from sqlalchemy.engine import make_url
from sqlalchemy.exc import CompileError

from sqlaopt import SqlaoptError
from sqlaopt.sql import UNITS, DateBucketUnitError, date_bucket
from sqlaopt.sql._buckets import bucket_start

from .conftest import sqlite_engine

# Hypothesis runs the same statement once per example, which the detector would report.
pytestmark = pytest.mark.nplusone(mode="off")

UTC = dt.timezone.utc
FIXTURE = HealthCheck.function_scoped_fixture
# Microseconds matter at midnight: MySQL's default DATETIME(0) would round them away.
PRECISE = DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
PRECISE_TZ = DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")

metadata = MetaData()
probe = Table(
    "date_bucket_probe",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("naive", PRECISE),
    Column("aware", PRECISE_TZ),
    Column("day", Date),
)

timestamps = st.datetimes(min_value=dt.datetime(1971, 1, 1), max_value=dt.datetime(2099, 12, 31))
EDGES = [
    dt.datetime(2020, 12, 31, 23, 59, 59, 999999),  # Thursday; ISO week starts 2020-12-28
    dt.datetime(2021, 1, 1),  # Friday; its ISO week belongs to 2020
    dt.datetime(2021, 1, 4),  # the first Monday
    dt.datetime(2024, 2, 29, 12),  # leap day
    dt.datetime(2025, 9, 28, 23, 59, 59, 999999),  # Sunday, last instant of a week
]


@pytest.fixture(scope="module")
def engines(pg_booking_engine: Engine, mariadb_booking_engine: Engine) -> Iterator[list[Engine]]:
    """SQLite, PostgreSQL with a non-UTC session time zone, and MariaDB, each with the probe."""
    pg_url = pg_booking_engine.url.render_as_string(hide_password=False)
    # Newfoundland is UTC-03:30: a session time zone that would shift dates if it were used.
    postgres = create_engine(pg_url, connect_args={"options": "-c timezone=America/St_Johns"})
    engines = [sqlite_engine(), postgres, mariadb_booking_engine]
    for engine in engines:
        metadata.drop_all(engine)
        metadata.create_all(engine)
    yield engines
    for engine in engines:
        metadata.drop_all(engine)
    postgres.dispose()


def buckets(engine: Engine, values: list[dt.datetime]) -> list[tuple[dt.date, ...]]:
    """Store ``values`` (naive, as aware UTC, as a date); return every unit's bucket of each."""
    columns = [date_bucket(unit, column) for column in (probe.c.naive, probe.c.aware, probe.c.day)
               for unit in UNITS]
    with engine.begin() as conn:
        conn.execute(delete(probe))
        conn.execute(insert(probe), [
            {"id": i, "naive": v, "aware": v.replace(tzinfo=UTC), "day": v.date()}
            for i, v in enumerate(values)
        ])
        rows = conn.execute(select(*columns).order_by(probe.c.id)).all()
    return [tuple(row) for row in rows]


def expected(values: list[dt.datetime]) -> list[tuple[dt.date, ...]]:
    return [
        tuple(bucket_start(unit, v.date()) for _ in range(3) for unit in UNITS) for v in values
    ]


@settings(max_examples=100, deadline=None, suppress_health_check=[FIXTURE])
@given(values=st.lists(timestamps, min_size=1, max_size=8))
@example(values=EDGES)
def test_same_buckets_on_every_database(engines: list[Engine], values: list[dt.datetime]) -> None:
    results = [buckets(engine, values) for engine in engines]
    assert results[0] == expected(values), "sqlite"
    assert results[1] == expected(values), "postgresql"
    assert results[2] == expected(values), "mariadb"
    assert all(type(b) is dt.date for row in results[1] + results[2] for b in row)


@settings(max_examples=40, deadline=None, suppress_health_check=[FIXTURE])
@given(
    value=st.datetimes(
        min_value=dt.datetime(1971, 1, 1),
        max_value=dt.datetime(2099, 12, 31),
        timezones=st.sampled_from([dt.timezone(dt.timedelta(hours=h)) for h in (-11, -3, 5, 14)]),
    ),
    unit=st.sampled_from(UNITS),
)
def test_postgresql_buckets_timestamptz_by_its_utc_date(
    engines: list[Engine], value: dt.datetime, unit: str
) -> None:
    """Whatever the value's offset and the session's TimeZone, the bucket is of the UTC date."""
    postgres = engines[1]
    with postgres.connect() as conn:
        got = conn.scalar(select(date_bucket(unit, literal(value, DateTime(timezone=True)))))
    assert got == bucket_start(unit, value.astimezone(UTC).date())


def test_unit_is_part_of_the_cache_key(engines: list[Engine]) -> None:
    """Two units on the same column must not share a cached compiled statement."""
    sqlite = engines[0]
    value = dt.datetime(2025, 9, 30, 10)  # Tuesday
    with sqlite.begin() as conn:
        conn.execute(delete(probe))
        conn.execute(insert(probe), [{"id": 1, "naive": value}])
        got = [conn.scalar(select(date_bucket(unit, probe.c.naive))) for unit in UNITS * 2]
    assert got == [dt.date(2025, 9, 30), dt.date(2025, 9, 29), dt.date(2025, 9, 1)] * 2


def test_groups_and_orders_like_any_column(engines: list[Engine]) -> None:
    for engine in engines:
        week = date_bucket("week", probe.c.naive).label("week")
        days = [dt.datetime(2025, 9, d, 12) for d in (28, 29, 30, 28)]  # Sun, Mon, Tue, Sun
        with engine.begin() as conn:
            conn.execute(delete(probe))
            conn.execute(insert(probe), [{"id": i, "naive": d} for i, d in enumerate(days)])
            rows = conn.execute(
                select(week, func.count()).group_by(week).order_by(week)
            ).all()
        assert [tuple(r) for r in rows] == [(dt.date(2025, 9, 22), 2), (dt.date(2025, 9, 29), 2)]


@pytest.mark.parametrize(
    ("unit", "hint"), [("wek", "week"), ("Day", "day"), ("months", "month"), ("year", None)]
)
def test_a_bad_unit_names_the_accepted_ones_and_the_closest(unit: str, hint: str | None) -> None:
    with pytest.raises(DateBucketUnitError) as raised:
        date_bucket(unit, probe.c.naive)
    message = str(raised.value)
    assert "accepted: 'day', 'week', 'month'" in message
    assert (f"did you mean {hint!r}?" in message) if hint else ("did you mean" not in message)
    assert isinstance(raised.value, ValueError)
    assert isinstance(raised.value, SqlaoptError)


def test_other_dialects_get_a_clear_compile_error() -> None:
    with pytest.raises(CompileError, match="postgresql, sqlite, mysql and mariadb"):
        select(date_bucket("day", probe.c.naive)).compile(dialect=mssql.dialect())


def test_mariadb_dialect_name_renders_too() -> None:
    url = make_url("mariadb+pymysql://")
    dialect = url.get_dialect()()
    sql = str(select(date_bucket("week", probe.c.naive)).compile(dialect=dialect))
    assert "WEEKDAY(date_bucket_probe.naive)" in sql
