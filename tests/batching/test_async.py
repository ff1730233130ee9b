"""Batching under asyncio: ``AsyncSession`` with ``awaitable_attrs`` and ``run_sync``, and
concurrent tasks that each keep their own blocks and groups."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import MissingGreenlet, StatementError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

import sqlaopt

from .models import Base, Parent, build

pytestmark = pytest.mark.nplusone(mode="off")

N = 30


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def async_url(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "sqlite":
        yield "sqlite+aiosqlite://"
    else:
        yield request.getfixturevalue("pg_url")


@asynccontextmanager
async def database(url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(url, poolclass=StaticPool) if "sqlite" in url \
        else create_async_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.drop_all)
        await conn.run_sync(Base.metadata.create_all)
        await conn.run_sync(build, N)
    try:
        yield engine
    finally:
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.drop_all)
        await engine.dispose()


async def children_of(session: AsyncSession, ids: range) -> tuple[int, list[Any]]:
    """(statements, children ids per parent) of an awaitable_attrs loop."""
    with sqlaopt.count_queries() as queries:
        statement = select(Parent).where(Parent.id.in_(list(ids))).order_by(Parent.id)
        parents = (await session.scalars(statement)).all()
        values = []
        for parent in parents:
            children = await parent.awaitable_attrs.children
            await asyncio.sleep(0)  # let the other tasks run between the loads
            values.append([(c.id, len(await c.awaitable_attrs.toys)) for c in children])
    return queries.count, values


def test_awaitable_attrs_loop(async_url: str) -> None:
    async def main() -> tuple[tuple[int, Any], tuple[int, Any]]:
        async with database(async_url) as engine:
            async with AsyncSession(engine) as session:
                with sqlaopt.batch():
                    on = await children_of(session, range(1, N + 1))
            async with AsyncSession(engine) as session:
                off = await children_of(session, range(1, N + 1))
        return on, off

    (statements, values), (unbatched, expected) = asyncio.run(main())
    assert values == expected
    assert statements == 3
    assert unbatched == 1 + N + (2 * N - N // 7)  # parents, children per parent, toys per child


def test_run_sync(async_url: str) -> None:
    def loop(session: Session) -> list[int]:
        return [len(p.children) for p in session.scalars(select(Parent).order_by(Parent.id))]

    async def main() -> tuple[int, list[int]]:
        async with database(async_url) as engine, AsyncSession(engine) as session:
            with sqlaopt.batch(), sqlaopt.count_queries() as queries:
                sizes = await session.run_sync(loop)
        return queries.count, sizes

    statements, sizes = asyncio.run(main())
    assert statements == 2
    assert sizes == [1 if i % 7 == 0 else 2 for i in range(1, N + 1)]


def test_concurrent_tasks_keep_their_own_blocks_and_groups(async_url: str) -> None:
    async def task(engine: AsyncEngine, ids: range, batch: bool) -> tuple[int, Any]:
        async with AsyncSession(engine) as session:
            with sqlaopt.batch(enabled=batch):
                return await children_of(session, ids)

    async def main() -> list[tuple[int, Any]]:
        async with database(async_url) as engine:
            return await asyncio.gather(
                task(engine, range(1, 11), True), task(engine, range(11, 21), True),
                task(engine, range(21, 31), False))

    first, second, unbatched = asyncio.run(main())
    assert first[0] == second[0] == 3
    assert unbatched[0] > 20
    assert [c for children in first[1] for c, _ in children] == [  # by position: 2i, 2i - 1
        c for i in range(1, 11) for c in (2 * i, 2 * i - 1) if not (i % 7 == 0 and c == 2 * i)]


@pytest.mark.filterwarnings("ignore:coroutine .* was never awaited:RuntimeWarning")  # aiosqlite's
def test_a_plain_lazy_access_under_asyncio_fails_as_before(async_url: str) -> None:
    async def main() -> None:
        async with database(async_url) as engine, AsyncSession(engine) as session:
            parents = (await session.scalars(select(Parent))).all()
            with sqlaopt.batch(), pytest.raises((MissingGreenlet, StatementError)):
                parents[0].children  # noqa: B018

    asyncio.run(main())
