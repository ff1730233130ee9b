"""DDL for hostile names, run on PostgreSQL, SQLite and MariaDB.

Table and column names with quotes, ``$$``, semicolons, spaces, reserved words and mixed case;
entry names that are reserved words; predicate values with quotes, ``$$``, a backslash, ``%``
and ``:name``. Every statement :func:`ddl` renders runs as rendered (twice: idempotent),
:func:`create` builds the same and :func:`check` then finds each entry present; the Alembic
body is valid Python. Entry names that would need quoting are refused where they are written.
"""

from __future__ import annotations

import datetime as dt
import re
import warnings
from collections.abc import Iterator

import pytest
import sqlalchemy
from sqlalchemy import Column, DateTime, Engine, Integer, MetaData, String, Table, insert, select

from sqlaopt.indexes import (
    ExclusionSpec,
    IndexSpec,
    IndexSpecError,
    Spec,
    alembic_migration,
    check,
    create,
    date,
    ddl,
    eq,
    in_,
    tsrange,
)
from sqlaopt.indexes._dialects import dialect_key

TABLE = "O'Brien; $$ Orders"
VALUE = "it's $$ a; \"value\" \\ 100% :x"
SPEC = Spec([
    IndexSpec("order", TABLE, ["select", "Customer Name"], where=eq("status", VALUE)),
    IndexSpec("group", TABLE, ["it's", "$$qty$$", "a;b"]),
    IndexSpec("from", TABLE, [date("starts at")]),
    ExclusionSpec(
        "table", TABLE, [("barber", "="), (tsrange("starts at", "ends at"), "&&")],
        where=in_("status", ["it's", "$$", VALUE]),
    ),
])


def hostile_metadata() -> MetaData:
    metadata = MetaData()
    Table(
        TABLE, metadata,
        Column("id", Integer, primary_key=True),
        Column("select", Integer),
        Column("Customer Name", String(40)),
        Column("it's", Integer),
        Column("$$qty$$", Integer),
        Column("a;b", Integer),
        Column("status", String(60)),
        Column("barber", Integer),
        Column("starts at", DateTime),
        Column("ends at", DateTime),
    )
    return metadata


@pytest.fixture(params=["postgresql", "sqlite", "mariadb"])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    fixture = {"postgresql": "pg_engine", "sqlite": "sqlite_engine", "mariadb": "mariadb_engine"}
    yield request.getfixturevalue(fixture[request.param])


def built(engine: Engine) -> set[str]:
    return {name for name, status in check(engine, SPEC, hostile_metadata()).statuses().items()
            if status == "present"}


def expected(engine: Engine) -> set[str]:
    key = dialect_key(engine.dialect)
    return {"postgresql": {"order", "group", "from", "table"}, "sqlite": {"order", "group", "from"},
            "mariadb": {"order", "group"}}[key]


def as_sent(engine: Engine, statement: str) -> str:
    """What to pass to the driver: format/pyformat drivers read ``%%`` as ``%``."""
    return statement.replace("%", "%%") if "format" in engine.dialect.paramstyle else statement


def test_rendered_ddl_runs_twice_and_builds_every_entry(engine: Engine) -> None:
    metadata = hostile_metadata()
    metadata.create_all(engine)
    statements = ddl(SPEC, dialect_key(engine.dialect), metadata)
    for _ in range(2):
        for statement in statements:
            with engine.connect() as conn:
                if engine.dialect.name == "postgresql":
                    conn = conn.execution_options(isolation_level="AUTOCOMMIT")
                conn.exec_driver_sql(as_sent(engine, statement))
                conn.commit()
    assert built(engine) == expected(engine)


def test_create_builds_them_and_the_predicate_value_survives(engine: Engine) -> None:
    metadata = hostile_metadata()
    metadata.create_all(engine)
    result = create(engine, SPEC, metadata)
    assert {a.name for a in result if a.action == "created"} == expected(engine)
    assert built(engine) == expected(engine)
    table = metadata.tables[TABLE]
    with engine.begin() as conn:
        start = dt.datetime(2025, 1, 1, 10)
        conn.execute(insert(table), [{"status": VALUE, "barber": 1, "starts at": start,
                                      "ends at": start + dt.timedelta(hours=1)}])
        assert conn.execute(select(table.c.status)).scalar_one() == VALUE


def test_the_alembic_body_is_valid_python_and_keeps_the_value() -> None:
    for dialect in ("postgresql", "sqlite", "mariadb"):
        body = alembic_migration(SPEC, hostile_metadata(), dialect=dialect)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # an invalid escape sequence is a warning
            compile(body, "revision body", "exec")
        where = re.search(r"_where=(sa\.text\(.*\)),$", body, re.MULTILINE)
        if dialect != "mariadb":
            assert where is not None
            clause = eval(where.group(1), {"sa": sqlalchemy})  # the text() Alembic will run
            assert not clause._bindparams  # ':x' in the value is not a bind parameter
            assert VALUE.replace("'", "''") in str(clause)


@pytest.mark.parametrize("name", ["O'Brien", "Orders", "a b", "x;y", "$$", "ix-1", '"q"'])
def test_entry_names_that_need_quoting_are_refused_where_written(name: str) -> None:
    with pytest.raises(IndexSpecError, match="lower-case letters, digits and '_'"):
        IndexSpec(name, TABLE, ["select"])
