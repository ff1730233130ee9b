"""The performance report's Redis cache (sections 4.2 and 5.1) has four defects; each test
runs the report's own code next to sqlaopt's, on real Redis and PostgreSQL.

1. ``invalidate_user_cache`` deletes ``analytics:*:{user_id}:*``, a pattern its own keys
   (``analytics:{func}:{hash}``) never match: invalidation can never fire.
2. Nothing invalidates when a payment is written: revenue is stale until the TTL.
3. ``hash(str(args))`` changes with every interpreter (hash randomisation): two workers never
   share an entry.
4. ``json.dumps(default=str)`` brings Decimals, datetimes and UUIDs back as strings.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import redis
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

import sqlaopt.cache as cache
from sqlaopt.booking.models import Payment

from ._report import QueryResultCache, analytics, revenue
from .conftest import installed_on

pytestmark = [pytest.mark.nplusone(mode="off"),
              # the report's code, as written, calls the deprecated setex
              pytest.mark.filterwarnings("ignore:Call to deprecated setex")]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def report(client: redis.Redis, namespace: str) -> Iterator[QueryResultCache]:
    """The report's cache, its keys under this test's namespace."""
    prefix = f"sqlaopt:{namespace}:report:"
    yield QueryResultCache(client, prefix)
    for key in client.scan_iter(match=f"{prefix}*"):
        client.delete(key)


@pytest.fixture
def on_redis(redis_url: str, namespace: str) -> Iterator[str]:
    with installed_on(redis_url, namespace):
        yield namespace


def a_user(engine: Engine) -> int:
    with Session(engine) as session:
        found = session.scalar(select(Payment.user_id).where(Payment.user_id.is_not(None))
                               .limit(1))
        assert found is not None
        return found


def pay(engine: Engine, user_id: int, amount: str) -> None:
    with Session(engine) as session:
        session.add(Payment(user_id=user_id, amount=Decimal(amount), status="completed"))
        session.commit()


def test_invalidation_that_never_fires_and_writes_that_never_invalidate(
        pg_engine: Engine, report: QueryResultCache, on_redis: str) -> None:
    @report.cache_analytics_query(ttl=600)
    def report_revenue(user_id: int) -> dict[str, Any]:
        with Session(pg_engine) as session:
            return analytics(session, user_id)

    user = a_user(pg_engine)
    with Session(pg_engine) as session:
        before = revenue(session, user)["total_revenue"]
    assert Decimal(report_revenue(user)["total_revenue"]) == before

    pay(pg_engine, user, "250.00")
    assert Decimal(report_revenue(user)["total_revenue"]) == before  # bug 2: stale
    report.invalidate_user_cache(user)  # what the report offers...
    assert Decimal(report_revenue(user)["total_revenue"]) == before  # bug 1: ...matches nothing

    with Session(pg_engine) as session:  # sqlaopt: the commit invalidated it
        assert revenue(session, user)["total_revenue"] == before + Decimal("250.00")


def in_new_interpreter(arguments: list[str], seed: str) -> str:
    done = subprocess.run([sys.executable, *arguments], cwd=ROOT, capture_output=True,
                          env={**os.environ, "PYTHONHASHSEED": seed}, text=True, timeout=120,
                          check=True)
    return done.stdout.strip().splitlines()[-1]


def test_keys_are_the_same_in_every_process(pg_engine: Engine, on_redis: str,
                                            redis_url: str) -> None:
    report_key = "print(hash(str((7,)) + str({})))"
    assert (in_new_interpreter(["-c", report_key], seed="1")
            != in_new_interpreter(["-c", report_key], seed="2"))  # bug 3: never shared

    user = a_user(pg_engine)
    with Session(pg_engine) as session:
        mine = revenue(session, user)["total_revenue"]
    url = pg_engine.url.render_as_string(hide_password=False)
    call = "import sys; from tests.cache._report import main; main(*sys.argv[1:])"
    theirs = json.loads(in_new_interpreter(["-c", call, url, redis_url, on_redis, str(user)],
                                           seed="2"))
    assert (theirs["misses"], theirs["hits"]) == (0, 1)  # sqlaopt: the entry is shared
    assert Decimal(theirs["total"]) == mine


def test_values_come_back_as_they_went_in(pg_engine: Engine, report: QueryResultCache,
                                          on_redis: str) -> None:
    @cache.cached(600)
    def snapshot(session: Session) -> dict[str, Any]:
        row = session.execute(select(func.sum(Payment.amount), func.max(Payment.created_at),
                                     func.current_date())).one()
        return {"revenue": row[0], "last_payment": row[1], "today": row[2],
                "id": UUID(int=42), "raw": b"\x00\x01", "json": {"daily": [1, 2.5, None]}}

    @report.cache_analytics_query(ttl=600)
    def report_snapshot() -> dict[str, Any]:
        with Session(pg_engine) as session:
            return snapshot.__wrapped__(session)  # type: ignore[attr-defined, no-any-return]

    with Session(pg_engine) as session:
        original = snapshot(session)
        assert snapshot(session) == original  # a hit
    assert cache.stats().hits == 1
    report_snapshot()
    from_report = report_snapshot()
    assert [type(v) for v in from_report.values()] == [str, str, str, str, str, dict]  # bug 4
    assert isinstance(original["revenue"], Decimal)
    assert isinstance(original["last_payment"], dt.datetime)
    assert original["last_payment"].tzinfo is not None
    assert isinstance(original["today"], dt.date)
