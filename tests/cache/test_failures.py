"""Redis down, slow or holding garbage: queries run uncached, one warning per interval, and
never an exception in the application."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Iterator, Sequence
from decimal import Decimal

import pytest
import redis
from sqlalchemy import Engine
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import Session

import sqlaopt.cache as cache
from sqlaopt.cache._store import Store

from ._support import TOTAL, add_payment, counters, total

pytestmark = pytest.mark.nplusone(mode="off")


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers: a Redis that hangs."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    try:
        yield server.getsockname()[1]
    finally:
        server.close()


@pytest.fixture
def breaker(monkeypatch: pytest.MonkeyPatch) -> None:
    """One attempt per test: the breaker stays open for its whole length."""
    monkeypatch.setattr(Store, "RETRY_SECONDS", 300.0)


def warnings_in(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "sqlaopt.cache" and r.levelno == logging.WARNING]


@pytest.mark.parametrize("where", ["refused", "silent"])
def test_an_unavailable_redis_means_uncached_queries(
        sqlite_db: Engine, where: str, silent_port: int, breaker: None, namespace: str,
        caplog: pytest.LogCaptureFixture) -> None:
    port = 1 if where == "refused" else silent_port
    cache.install(cache.RedisBackend(f"redis://127.0.0.1:{port}/0", timeout=0.05),
                  namespace=namespace)
    try:
        with caplog.at_level(logging.WARNING, "sqlaopt.cache"), Session(sqlite_db) as session:
            before = total(session, ttl=False)
            assert [total(session) for _ in range(5)] == [before] * 5
            add_payment(session, "1.00")
            session.commit()
            assert total(session) == before + 1
    finally:
        cache.uninstall()
    assert counters()[:5] == (0, 0, 0, 0, 1)
    assert len(warnings_in(caplog)) == 1
    assert "run uncached" in warnings_in(caplog)[0]


def test_one_warning_per_interval(sqlite_db: Engine, namespace: str,
                                  monkeypatch: pytest.MonkeyPatch,
                                  caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(Store, "RETRY_SECONDS", 0.0)
    cache.install("redis://127.0.0.1:1/0", namespace=namespace)
    try:
        with caplog.at_level(logging.WARNING, "sqlaopt.cache"), Session(sqlite_db) as session:
            for _ in range(3):
                total(session)
            monkeypatch.setattr(Store, "WARN_SECONDS", 0.0)
            total(session)
    finally:
        cache.uninstall()
    assert cache.stats().errors == 4
    assert len(warnings_in(caplog)) == 2


class FlakyBackend(cache.RedisBackend):
    """Redis that fails the next ``failures`` bumps."""

    failures = 0

    def bump(self, version_keys: Sequence[str]) -> None:
        if self.failures:
            self.failures -= 1
            raise redis.ConnectionError("connection lost")
        super().bump(version_keys)


def test_a_lost_invalidation_is_sent_before_anything_is_read(
        db: Engine, redis_url: str, namespace: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Store, "RETRY_SECONDS", 0.0)
    backend = FlakyBackend(redis_url)
    cache.install(backend, namespace=namespace)
    try:
        with Session(db) as session:
            before = total(session)
            backend.failures = 1
            add_payment(session, "4.00")
            session.commit()  # the bump fails: kept, and sent with the next backend call
            assert cache.stats().errors == 1 and cache.stats().invalidations == 0
            assert total(session) == before + 4
        assert cache.stats().invalidations == 1  # sent just before the read
        with Session(db) as session:
            assert total(session) == before + 4
    finally:
        cache.clear()
        cache.uninstall()


def test_garbage_in_redis_is_a_miss(sqlite_db: Engine, redis_url: str, namespace: str) -> None:
    cache.install(redis_url, namespace=namespace)
    client = redis.Redis.from_url(redis_url)
    try:
        with Session(sqlite_db) as session:
            before = total(session)
            for key in client.scan_iter(match=f"sqlaopt:{namespace}:e:*"):
                client.set(key, b"\x80not json")
            assert total(session) == before
            for key in client.scan_iter(match=f"sqlaopt:{namespace}:e:*"):
                client.set(key, b'{"v": {}, "d": [], "r": []}')
            assert total(session) == before
        assert counters()[:3] == (0, 3, 3)
    finally:
        cache.clear()
        cache.uninstall()
        client.close()


def test_asyncio_sessions_survive_a_redis_outage(sqlite_db: Engine, namespace: str,
                                                 silent_port: int, breaker: None) -> None:
    url = sqlite_db.url.render_as_string().replace("sqlite:", "sqlite+aiosqlite:")

    async def scenario() -> list[Decimal]:
        engine = create_async_engine(url)
        seen = []
        async with AsyncSession(engine) as session:
            for _ in range(3):
                query = TOTAL.execution_options(sqlaopt_cache=60)
                seen.append(Decimal(await session.scalar(query)))
        await engine.dispose()
        return seen

    cache.install(cache.RedisBackend(f"redis://127.0.0.1:{silent_port}/0", timeout=0.05),
                  namespace=namespace)
    try:
        seen = asyncio.run(scenario())
    finally:
        cache.uninstall()
    assert len(set(seen)) == 1
    assert cache.stats().errors == 1
