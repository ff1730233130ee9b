"""``@sqlaopt.cache.cached``: service functions' results, keyed by their arguments and
invalidated by the tables their statements read."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import enum
import logging
from decimal import Decimal
from typing import Any, NamedTuple

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import Session

import sqlaopt.cache as cache
from sqlaopt.booking import RevenueBucket, optimized
from sqlaopt.booking.models import Appointment, Payment

from ._support import add_payment, counters, total

pytestmark = pytest.mark.nplusone(mode="off")

calls: list[str] = []


@cache.cached(60)
def revenue(session: Session, status: str = "completed") -> dict[str, Any]:
    calls.append("revenue")
    amount = session.scalar(select(func.sum(Payment.amount)).where(Payment.status == status))
    count = session.scalar(select(func.count(Appointment.id)))
    return {"amount": amount, "appointments": count, "when": dt.date(2024, 1, 1)}


@pytest.fixture(autouse=True)
def _forget_calls() -> None:
    calls.clear()


def test_hit_and_invalidation_by_any_table_the_function_read(db: Engine, installed: str) -> None:
    with Session(db) as session:
        first = revenue(session)
        assert revenue(session, "completed") == first
        assert revenue(session, status="completed") == first
    assert calls == ["revenue"]
    with Session(db) as session:
        session.execute(text("DELETE FROM appointments WHERE id = 1"))
        session.commit()
    with Session(db) as session:
        assert revenue(session)["appointments"] == first["appointments"] - 1
    assert calls == ["revenue", "revenue"]
    assert counters()[:3] == (2, 2, 2)


def test_arguments_are_part_of_the_key(db: Engine, installed: str) -> None:
    with Session(db) as session:
        assert revenue(session, "completed") != revenue(session, "pending")
        revenue(session, "pending")
    assert calls == ["revenue", "revenue"]


def test_a_function_that_writes_is_not_stored(db: Engine, installed: str) -> None:
    @cache.cached(60)
    def book(session: Session) -> int:
        add_payment(session, "1.00")
        return int(session.scalar(select(func.count(Payment.id))) or 0)

    with Session(db) as session:
        first = book(session)
        assert book(session) == first + 1
        session.rollback()
    assert counters()[:3] == (0, 2, 0)


def test_uncommitted_writes_of_the_caller_are_read_through(db: Engine, installed: str) -> None:
    with Session(db) as session:
        before = revenue(session)["amount"]
        add_payment(session, "2.00")
        assert revenue(session)["amount"] == before + Decimal("2.00")
        session.rollback()
        assert revenue(session)["amount"] == before
    assert calls == ["revenue", "revenue"]
    assert counters()[:4] == (1, 2, 1, 1)


def test_nested_cached_functions_pass_their_tables_up(db: Engine, installed: str) -> None:
    @cache.cached(60)
    def outer(session: Session) -> Decimal:
        calls.append("outer")
        return Decimal(revenue(session)["amount"]) * 2

    with Session(db) as session:
        first = outer(session)
        assert outer(session) == first
    with Session(db) as session:
        revenue(session)  # only the inner entry
        add_payment(session, "1.00")
        session.commit()
    with Session(db) as session:
        assert outer(session) == first + 2
    assert calls == ["outer", "revenue", "outer", "revenue"]


@dataclasses.dataclass(frozen=True)
class Summary:
    label: str
    buckets: tuple[RevenueBucket, ...]


class Kind(enum.Enum):
    WEEK = "week"


class Window(NamedTuple):
    start: dt.date
    end: dt.date


@cache.cached(60)
def weekly(session: Session, window: Window, kind: Kind) -> Summary:
    calls.append("weekly")
    rows = optimized.revenue_report(session, kind.value, window.start, window.end)
    return Summary("weekly", rows)


def test_dataclasses_and_named_tuples_in_the_annotation_come_back(
        db: Engine, installed: str) -> None:
    window = Window(dt.date(2025, 6, 1), dt.date(2025, 9, 1))
    with Session(db) as session:
        first = weekly(session, window, Kind.WEEK)
        second = weekly(session, window=Window(*window), kind=Kind("week"))
    assert second == first and type(second.buckets[0]) is RevenueBucket
    assert isinstance(second.buckets[0].revenue, Decimal) and first.buckets
    assert calls == ["weekly"]


def test_unstorable_results_are_returned_with_one_warning(
        db: Engine, installed: str, caplog: pytest.LogCaptureFixture) -> None:
    class Opaque:
        pass

    @cache.cached(60)
    def opaque(session: Session) -> object:
        calls.append("opaque")
        return Opaque()

    with Session(db) as session, caplog.at_level(logging.WARNING, "sqlaopt.cache"):
        assert isinstance(opaque(session), Opaque)
        assert isinstance(opaque(session), Opaque)
    assert calls == ["opaque", "opaque"]
    assert len([r for r in caplog.records if "cannot store exactly" in r.message]) == 1


def test_arguments_that_cannot_be_keyed(sqlite_db: Engine, installed: str) -> None:
    class Service:
        @cache.cached(60)
        def report(self, session: Session) -> int:
            return 1

        @cache.cached(60, ignore=("self",))
        def fine(self, session: Session) -> int:
            return 2

    with Session(sqlite_db) as session:
        with pytest.raises(cache.CacheKeyError, match=r"argument 'self' .*ignore=\('self',\)"):
            Service().report(session)
        assert Service().fine(session) == 2
        assert Service().fine(session) == 2
    assert cache.stats().hits == 1


def test_bad_decorator_arguments() -> None:
    with pytest.raises(cache.CacheError, match="did you mean 'status'"):
        cache.cached(60, ignore=("statsu",))(revenue.__wrapped__)  # type: ignore[attr-defined]
    with pytest.raises(cache.CacheError, match="positive number"):
        cache.cached(0)
    with pytest.raises(cache.CacheError, match="non-empty string"):
        cache.cached(5, namespace="")


def test_exceptions_propagate_and_nothing_is_stored(db: Engine, installed: str) -> None:
    @cache.cached(60)
    def broken(session: Session) -> int:
        calls.append("broken")
        session.scalar(select(func.count(Payment.id)))
        raise LookupError("no such report")

    with Session(db) as session:
        for _ in range(2):
            with pytest.raises(LookupError):
                broken(session)
    assert calls == ["broken", "broken"]


def test_bypass_and_uninstalled(db: Engine, installed: str) -> None:
    with Session(db) as session:
        revenue(session)
        with cache.bypass():
            revenue(session)
        cache.uninstall()
        revenue(session)
        cache.install()
    assert calls == ["revenue"] * 3


def test_namespaces_separate_entries(db: Engine, installed: str) -> None:
    @cache.cached(60, namespace="v2")
    def revenue_v2(session: Session) -> Decimal:
        return total(session, ttl=False)

    with Session(db) as session:
        revenue_v2(session)
        revenue_v2(session)
    assert (cache.stats("v2").hits, cache.stats("v2").misses) == (1, 1)
    assert cache.stats("").misses == 0


@cache.cached(60)
async def async_revenue(session: AsyncSession) -> Decimal:
    calls.append("async")
    return Decimal(await session.scalar(select(func.coalesce(func.sum(Payment.amount), 0))))


def test_async_functions(sqlite_db: Engine, pg_engine: Engine, installed: str) -> None:
    urls = [engine.url.render_as_string(hide_password=False).replace(sync, asynchronous)
            for engine, sync, asynchronous in (
                (sqlite_db, "sqlite:", "sqlite+aiosqlite:"),
                (pg_engine, "postgresql+psycopg:", "postgresql+psycopg_async:"))]

    async def scenario(url: str) -> None:
        engine = create_async_engine(url)
        async with AsyncSession(engine) as session:
            first = await async_revenue(session)
            assert await async_revenue(session) == first
            session.add(Payment(amount=Decimal("3.00"), status="x"))
            await session.commit()
            assert await async_revenue(session) == first + 3
        await engine.dispose()

    for url in urls:
        asyncio.run(scenario(url))
    assert calls == ["async"] * 4


def test_counters_stay_bounded_with_many_namespaces(monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlaopt.cache import _state

    monkeypatch.setattr(_state, "_counts", {})
    monkeypatch.setattr(_state, "MAX_NAMESPACES", 3)
    for tenant in ("a", "b", "c", "d", "e"):
        _state.count(tenant, "hits")
    assert (cache.stats("c").hits, cache.stats("d").hits) == (1, 0)
    assert cache.stats(_state.OTHER_NAMESPACES).hits == 2
    assert cache.stats().hits == 5


def test_driver_sql_without_parameters_is_recorded(db: Engine, installed: str) -> None:
    @cache.cached(60)
    def count_raw(session: Session) -> int:
        calls.append("raw")
        return int(session.connection().exec_driver_sql(
            "SELECT count(*) FROM payments", execution_options={"no_parameters": True},
        ).scalar_one())

    @cache.cached(60)
    def count_declared(session: Session) -> int:
        calls.append("declared")
        return int(session.connection().exec_driver_sql(
            "SELECT count(*) FROM payments",
            execution_options={"no_parameters": True, "sqlaopt_tables": ["payments"]},
        ).scalar_one())

    with Session(db) as session:
        count_raw(session), count_raw(session)  # its tables are unknown: never stored
        first = count_declared(session)
        assert count_declared(session) == first
        add_payment(session, "1.00")
        session.commit()
        assert count_declared(session) == first + 1
    assert calls == ["raw", "raw", "declared", "declared"]
