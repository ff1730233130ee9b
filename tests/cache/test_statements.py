"""Cached statements: hits, misses and exact invalidation, on SQLite and PostgreSQL, with the
in-process and the Redis backend."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from decimal import Decimal

import pytest
from sqlalchemy import (
    Column,
    Engine,
    ForeignKey,
    Integer,
    MetaData,
    Table,
    create_engine,
    delete,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import Session, joinedload, selectinload

import sqlaopt.cache as cache
from sqlaopt.booking.models import Appointment, Payment, User
from tests.scripts import run_in_new_interpreter

from ._support import add_payment, cached, counters, payments, since, text_total, total
from .conftest import DatabaseCalls, fresh_schema

# These tests run the same statement again and again on purpose.
pytestmark = pytest.mark.nplusone(mode="off")


def test_a_hit_after_a_miss_and_a_fresh_value_after_a_commit(db: Engine, installed: str) -> None:
    with Session(db) as session:
        before = total(session)
    with Session(db) as session:
        assert total(session) == before
    assert counters() == (1, 1, 1, 0, 0, 0)
    with Session(db) as session:
        add_payment(session, "12.34")
        session.commit()
    assert cache.stats().invalidations == 1
    with Session(db) as session:
        assert total(session) == before + Decimal("12.34")
        assert total(session) == before + Decimal("12.34")
    assert counters() == (2, 2, 2, 0, 0, 1)


def test_a_hit_never_reaches_the_database(sqlite_db: Engine, sqlite_calls: DatabaseCalls,
                                          installed: str) -> None:
    calls = sqlite_calls
    with Session(sqlite_db) as session:
        first = payments(session)
        assert payments(session) == first
        assert payments(session, ttl=False) == first
    assert calls.selects("FROM payments") == 2  # the miss and the uncached run


def test_a_rollback_invalidates_nothing(db: Engine, installed: str) -> None:
    with Session(db) as session:
        before = total(session)
        add_payment(session, "99.00")
        assert total(session) == before + Decimal("99.00")  # its own write: read through
        session.rollback()
    with Session(db) as session:
        assert total(session) == before
    assert counters() == (1, 1, 1, 1, 0, 0)


def test_savepoints_merge_into_their_parent_or_vanish(db: Engine, installed: str) -> None:
    with Session(db) as session:
        before = total(session)
        with session.begin_nested() as savepoint:
            add_payment(session, "5.00")
            savepoint.rollback()
        session.commit()
    assert cache.stats().invalidations == 0
    with Session(db) as session:
        assert total(session) == before
        with session.begin_nested():
            add_payment(session, "7.00")
        session.commit()
    assert cache.stats().invalidations == 1
    with Session(db) as session:
        assert total(session) == before + Decimal("7.00")


def test_the_cache_leaves_connection_events_off() -> None:
    """Any Connection listener, even removed, makes SQLAlchemy dispatch Connection events on
    every statement from then on: the cache sees commits, rollbacks and savepoints through the
    dialect's own methods, and uninstall() puts those back."""
    script = (
        "import sqlaopt.cache as cache\n"
        "from sqlalchemy import Engine, create_engine, text\n"
        "engine = create_engine('sqlite://')\n"
        "original = {n: getattr(engine.dialect, n) for n in ('do_commit', 'do_rollback')}\n"
        "cache.install()\n"
        "with engine.connect() as c:\n"
        "    c.execute(text('CREATE TABLE t (x INTEGER)'))\n"
        "    c.commit()\n"
        "    with c.begin_nested():\n"
        "        c.execute(text('INSERT INTO t VALUES (1)'))\n"
        "    c.commit()\n"
        "    c.execute(text('SELECT x FROM t').execution_options(sqlaopt_cache=60,\n"
        "                                                       sqlaopt_tables=('t',)))\n"
        "    c.rollback()\n"
        "    assert not c._has_events, 'the Connection dispatches events'\n"
        "    assert engine.dialect.__dict__.get('do_commit') is not None\n"
        "assert cache.stats().invalidations == 2, cache.stats()  # the DDL and the INSERT\n"
        "cache.uninstall()\n"
        "assert not Engine._has_events\n"
        "assert {n: getattr(engine.dialect, n) for n in original} == original\n"
        "assert not {'do_commit', 'do_savepoint'} & set(vars(engine.dialect))\n"
    )
    run_in_new_interpreter(script)


def test_uncommitted_writes_are_seen_by_their_session_only(db: Engine, installed: str) -> None:
    with Session(db) as writer, Session(db) as reader:
        before = total(reader)
        add_payment(writer, "3.00")
        assert total(writer) == before + Decimal("3.00")
        assert total(reader) == before
        writer.commit()
        assert total(reader) == before + Decimal("3.00")


def test_orm_results_load_as_a_query_would(db: Engine, installed: str) -> None:
    query = cached(select(Appointment).options(joinedload(Appointment.client),
                                               selectinload(Appointment.user))
                   .order_by(Appointment.id).limit(8))

    def snapshot(session: Session) -> list[tuple[object, ...]]:
        return [(a.id, a.price, a.client and a.client.name, a.user and a.user.email)
                for a in session.scalars(query).unique()]

    with Session(db) as session:
        first = snapshot(session)
    with Session(db) as session:
        assert snapshot(session) == first
    assert cache.stats().hits == 2  # the appointments statement and its selectin statement
    with Session(db) as session, cache.bypass():
        assert snapshot(session) == first


def test_the_identity_map_is_honoured(db: Engine, installed: str) -> None:
    query = cached(select(Appointment).where(Appointment.id == 1))
    with Session(db) as session:
        stored_price = session.scalars(query).one().price
    with Session(db) as session, session.no_autoflush:
        mine = session.get(Appointment, 1)
        assert mine is not None
        mine.price = Decimal("1.00")  # changed in Python, not flushed
        assert session.scalars(query).one() is mine
        assert mine.price == Decimal("1.00")  # a query does not overwrite it, nor does a hit
    assert cache.stats().hits == 1
    assert stored_price != Decimal("1.00")


def test_each_selectin_statement_has_its_own_tables(db: Engine, installed: str) -> None:
    query = cached(select(User).options(selectinload(User.payments)).order_by(User.id))
    with Session(db) as session:
        user = session.scalars(query).first()
        assert user is not None
        user_id, count = user.id, len(user.payments)
    with Session(db) as session:
        session.add(Payment(amount=Decimal("1.00"), status="completed", user_id=user_id))
        session.commit()
    with Session(db) as session:
        user = session.scalars(query).first()
        assert user is not None and len(user.payments) == count + 1
    assert cache.stats().hits == 1  # users were unchanged; the payments statement ran again


def test_core_connections_and_text_statements(db: Engine, installed: str) -> None:
    query = cached(select(func.count(Payment.id)))
    with db.connect() as conn:
        before = conn.execute(query).scalar_one()
        assert conn.execute(query).scalar_one() == before
    with Session(db) as session:
        text_before = text_total(session)
        assert text_total(session) == text_before
    with db.begin() as conn:
        conn.execute(insert(Payment).values(amount=Decimal("2.00"), status="completed"))
    with db.connect() as conn:
        assert conn.execute(query).scalar_one() == before + 1
    with Session(db) as session:
        session.execute(text("UPDATE payments SET amount = amount + 1 WHERE id = 1"))
        session.commit()
        assert text_total(session) == text_before + Decimal("3.00")
    assert cache.stats().invalidations == 2


def test_a_cached_text_select_must_name_its_tables(db: Engine, installed: str) -> None:
    with Session(db) as session, pytest.raises(cache.CacheError, match="sqlaopt_tables"):
        session.execute(text("SELECT count(*) FROM payments").execution_options(sqlaopt_cache=5))


@pytest.mark.parametrize("value", [0, -1, "600", True, float("nan")])
def test_bad_ttl_values(db: Engine, installed: str, value: object) -> None:
    with Session(db) as session, pytest.raises(cache.CacheError, match="positive number"):
        session.execute(select(Payment.id).execution_options(sqlaopt_cache=value))


def test_bad_namespace(db: Engine, installed: str) -> None:
    query = cached(select(Payment.id), sqlaopt_cache_namespace="")
    with Session(db) as session, pytest.raises(cache.CacheError, match="non-empty string"):
        session.execute(query)


def test_locking_reads_and_unknown_tables_run_uncached(db: Engine, installed: str) -> None:
    locking = cached(select(Payment.id).where(Payment.id == 1).with_for_update())
    fragment = cached(select(Payment.id).where(text("id IN (SELECT id FROM payments)")))
    declared = fragment.execution_options(sqlaopt_tables=("payments",))
    with Session(db) as session:
        for _ in range(2):
            session.execute(locking).all()
            session.execute(fragment).all()
            session.execute(declared).all()
    assert counters()[:4] == (1, 1, 1, 4)


def test_an_autocommit_write_invalidates_at_once(db: Engine, installed: str) -> None:
    query = cached(select(func.count(Payment.id)))
    with db.connect() as reader, db.connect().execution_options(
            isolation_level="AUTOCOMMIT") as writer:
        before = reader.execute(query).scalar_one()
        reader.rollback()
        writer.execute(insert(Payment).values(amount=Decimal("1.00"), status="x"))
        assert cache.stats().invalidations == 1
        assert reader.execute(query).scalar_one() == before + 1


def test_ddl_and_unparsed_sql_invalidate_every_table(db: Engine, installed: str) -> None:
    with Session(db) as session:
        before = total(session)
    with db.begin() as conn:
        conn.execute(text("CREATE TABLE scratch (id integer)"))
    assert cache.stats().invalidations == 1  # the epoch every entry depends on
    with Session(db) as session:
        assert total(session) == before
    assert cache.stats().hits == 0
    with db.begin() as conn:
        conn.execute(text("DROP TABLE scratch"))


def test_writes_outside_sqlalchemy_need_invalidate(db: Engine, installed: str) -> None:
    with Session(db) as session:
        before = total(session)
    raw = db.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("UPDATE payments SET amount = amount + 100")
        raw.commit()
    finally:
        raw.close()
    with Session(db) as session:
        stale = total(session)
        fresh = total(session, ttl=False)
    assert stale == before != fresh  # the documented limit
    cache.invalidate(Payment)
    with Session(db) as session:
        assert total(session) == fresh


def test_bypass_runs_uncached_and_still_invalidates(db: Engine, installed: str) -> None:
    with Session(db) as session:
        before = total(session)
        with cache.bypass():
            assert total(session) == before
            add_payment(session, "4.00")
            session.commit()
        assert total(session) == before + Decimal("4.00")
    assert counters() == (0, 2, 2, 1, 0, 1)


def test_namespaces_keep_entries_and_counters_apart(db: Engine, installed: str) -> None:
    with Session(db) as session:
        for tenant in ("a", "b", "a"):
            session.execute(cached(select(func.count(Payment.id)),
                                   sqlaopt_cache_namespace=tenant)).scalar_one()
    assert (cache.stats("a").misses, cache.stats("a").hits) == (1, 1)
    assert (cache.stats("b").misses, cache.stats("b").hits) == (1, 0)
    assert cache.stats().misses == 2


def test_results_that_cannot_be_stored_exactly_are_returned_uncached(
        pg_engine: Engine, installed: str) -> None:
    query = cached(text("SELECT int4range(1, 5) AS r"), sqlaopt_tables=())
    with Session(pg_engine) as session:
        first = session.execute(query).scalar_one()
        assert session.execute(query).scalar_one() == first
    assert counters()[:3] == (0, 2, 0)


def test_schema_translate_map_keeps_schemas_apart(pg_engine: Engine, installed: str) -> None:
    notes = Table("notes", MetaData(), Column("id", Integer, primary_key=True))
    with pg_engine.begin() as conn:
        for schema, rows in (("s1", 1), ("s2", 2)):
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            conn.execute(text(f"CREATE SCHEMA {schema}"))
            notes.create(conn.execution_options(schema_translate_map={None: schema}))
            conn.execute(text(f"INSERT INTO {schema}.notes SELECT generate_series(1, {rows})"))
    query = cached(select(func.count(notes.c.id)))

    def count(schema: str) -> int:
        with pg_engine.connect().execution_options(
                schema_translate_map={None: schema}) as conn:
            return int(conn.execute(query).scalar_one())

    assert (count("s1"), count("s2"), count("s1"), count("s2")) == (1, 2, 1, 2)
    with pg_engine.begin() as conn:
        conn.execution_options(schema_translate_map={None: "s1"}).execute(
            insert(notes).values(id=10))
    assert (count("s1"), count("s2")) == (2, 2)
    assert counters()[:2] == (3, 3)  # s2 stayed cached through the write to s1.notes
    with pg_engine.begin() as conn:
        conn.execute(text("DROP SCHEMA s1 CASCADE; DROP SCHEMA s2 CASCADE"))


def test_foreign_key_actions_invalidate_the_rows_they_change(
        pg_engine: Engine, installed: str) -> None:
    metadata = MetaData()
    parents = Table("fk_parents", metadata, Column("id", Integer, primary_key=True))
    children = Table("fk_children", metadata, Column("id", Integer, primary_key=True),
                     Column("parent_id", ForeignKey("fk_parents.id", ondelete="CASCADE")))
    metadata.drop_all(pg_engine)
    metadata.create_all(pg_engine)
    with pg_engine.begin() as conn:
        conn.execute(insert(parents).values(id=1))
        conn.execute(insert(children).values(id=1, parent_id=1))
    query = cached(select(func.count(children.c.id)))
    with pg_engine.connect() as conn:
        assert conn.execute(query).scalar_one() == 1
    with pg_engine.begin() as conn:
        conn.execute(delete(parents))
    with pg_engine.connect() as conn:
        assert conn.execute(query).scalar_one() == 0
    metadata.drop_all(pg_engine)


def test_repeatable_read_caches_only_statements_that_start_a_snapshot(
        pg_engine: Engine, installed: str) -> None:
    engine = create_engine(pg_engine.url, isolation_level="REPEATABLE READ")
    start = counters()
    try:
        with Session(engine) as session:
            total(session)  # the first statement: its snapshot starts after the versions
            total(session)  # the snapshot is older than the cache may be: uncached
        with Session(engine) as session:
            total(session)  # a new transaction's first statement: served
        assert since(start)[:4] == (1, 1, 1, 1)
        with Session(engine) as session:
            session.execute(select(User.id).limit(1)).all()  # the snapshot starts here
            total(session)
        assert since(start)[3] == 2
    finally:
        engine.dispose()


def test_mariadb_caches_under_read_committed(mariadb_url: str, installed: str) -> None:
    committed = fresh_schema(create_engine(mariadb_url, isolation_level="READ COMMITTED"))
    repeatable = create_engine(mariadb_url)  # REPEATABLE READ: pymysql cannot say more
    start = counters()
    try:
        with Session(committed) as session:
            before = total(session)
            assert total(session) == before
        with Session(committed) as session:
            add_payment(session, "1.50")
            session.commit()
            assert total(session) == before + Decimal("1.50")
        with Session(repeatable) as session:
            assert total(session) == before + Decimal("1.50")
        assert since(start) == (1, 2, 2, 1, 0, 1)
    finally:
        committed.dispose()
        repeatable.dispose()


def test_oversized_results_are_not_stored(db: Engine, installed: str,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlaopt.cache import _statements

    monkeypatch.setattr(_statements, "MAX_ENTRY_BYTES", 100)
    with Session(db) as session:
        assert payments(session) == payments(session)
    assert counters()[:3] == (0, 2, 0)


def test_values_round_trip_exactly_through_the_driver(pg_engine: Engine, installed: str) -> None:
    query = cached(text(
        "SELECT 12.345::numeric(10,3) AS d, now() AS ts, DATE '2024-02-29' AS day, "
        "'00000000-0000-0000-0000-000000000001'::uuid AS u, '\\x00ff'::bytea AS b, "
        "'{\"a\": [1, 2.5, null, \"x\"]}'::jsonb AS j, interval '1 day 2 hours' AS i, "
        "'10.1.2.3/24'::inet AS ip, ARRAY[1, 2] AS arr"), sqlaopt_tables=())
    with Session(pg_engine) as session:
        first = tuple(session.execute(query).one())
        second = tuple(session.execute(query).one())
    assert cache.stats().hits == 1
    assert second == first
    assert [type(v) for v in second] == [type(v) for v in first]
    assert second[1].tzinfo == first[1].tzinfo and second[1].utcoffset() == dt.timedelta(0)


def test_update_statements_with_cascades_and_bulk_orm(db: Engine, installed: str) -> None:
    with Session(db) as session:
        before = total(session)
        session.execute(update(Payment).where(Payment.id == 1).values(amount=Payment.amount + 1))
        session.commit()
        assert total(session) == before + 1
        session.execute(insert(Payment), [{"amount": Decimal("1.00"), "status": "a"},
                                          {"amount": Decimal("2.00"), "status": "b"}])
        session.commit()
        assert total(session) == before + 4
        session.execute(delete(Payment).where(Payment.status.in_(["a", "b"])))
        session.commit()
        assert total(session) == before + 1
    assert counters()[:2] == (0, 4)


def test_uninstall_stops_caching(db: Engine, installed: str) -> None:
    cache.uninstall()
    with Session(db) as session:
        assert total(session) == total(session)
    assert cache.stats().misses == 0
    cache.install()  # the fixture uninstalls again


def test_install_rejects_unknown_backends() -> None:
    for wrong in ("memcached://localhost", 42):
        with pytest.raises(cache.CacheError, match=r"takes None \(in-process\), a redis:// URL"):
            cache.install(wrong)
    with pytest.raises(cache.CacheError, match="starts with redis://"):
        cache.RedisBackend("http://localhost")
    with pytest.raises(cache.CacheError, match="max_entries"):
        cache.MemoryBackend(max_entries=0)


def test_entries_expire_after_their_ttl(sqlite_db: Engine, installed: str) -> None:
    with Session(sqlite_db) as session:
        total(session, ttl=0.05)
    time.sleep(0.12)
    with Session(sqlite_db) as session:
        total(session, ttl=0.05)
    assert counters()[:2] == (0, 2)


def test_legacy_query_and_bulk_mappings(db: Engine, installed: str) -> None:
    with Session(db) as session:
        query = session.query(func.count(Payment.id)).execution_options(sqlaopt_cache=60)
        before = query.scalar()
        assert query.scalar() == before
        session.bulk_insert_mappings(Payment, [{"amount": Decimal("1.00"), "status": "a"}] * 3)
        session.commit()
        assert query.scalar() == before + 3
    assert counters()[:2] == (1, 2)


def test_asyncio_sessions(db: Engine, installed: str) -> None:
    url = db.url.render_as_string(hide_password=False)
    url = url.replace("sqlite:", "sqlite+aiosqlite:").replace("+psycopg:", "+psycopg_async:")

    async def scenario() -> list[Decimal]:
        engine = create_async_engine(url)
        seen = []
        async with AsyncSession(engine) as session:
            query = cached(select(func.sum(Payment.amount)))
            seen += [await session.scalar(query), await session.scalar(query)]
            session.add(Payment(amount=Decimal("5.00"), status="completed"))
            await session.commit()
            seen.append(await session.scalar(query))
        await engine.dispose()
        return seen

    first, second, third = asyncio.run(scenario())
    assert first == second and third == first + 5
    assert counters() == (1, 2, 2, 0, 0, 1)


def test_statements_that_read_no_table_run_unless_declared(pg_engine: Engine,
                                                           installed: str) -> None:
    with Session(pg_engine) as session:
        lock = cached(select(func.pg_advisory_xact_lock(42)))
        now = cached(text("SELECT clock_timestamp()"))
        declared_now = now.execution_options(sqlaopt_tables=())
        for _ in range(2):
            session.execute(lock).all()
            session.execute(now).all()
        assert session.execute(declared_now).one() == session.execute(declared_now).one()
    assert counters()[:4] == (1, 1, 1, 4)


def test_psycopg2_and_asyncpg(pg_engine: Engine, installed: str) -> None:
    url = pg_engine.url.render_as_string(hide_password=False)
    repeatable = create_engine(url.replace("+psycopg:", "+psycopg2:"),
                               isolation_level="REPEATABLE READ")
    try:
        with Session(repeatable) as session:
            first = total(session)  # starts the snapshot: cached (psycopg2 says no transaction)
            assert total(session) == first  # inside the snapshot: uncached
        with Session(repeatable) as session:
            assert total(session) == first  # served
        assert counters()[:4] == (1, 1, 1, 1)
    finally:
        repeatable.dispose()

    async def scenario() -> list[Decimal]:
        engine = create_async_engine(url.replace("+psycopg:", "+asyncpg:"))
        async with AsyncSession(engine) as session:
            seen = [await session.scalar(cached(select(func.sum(Payment.amount))))]
            seen.append(await session.scalar(cached(select(func.sum(Payment.amount)))))
            session.add(Payment(amount=Decimal("2.00"), status="completed"))
            await session.commit()
            seen.append(await session.scalar(cached(select(func.sum(Payment.amount)))))
        await engine.dispose()
        return seen

    seen = asyncio.run(scenario())
    assert seen == [first, first, first + 2]
    assert counters()[:2] == (2, 3)
