"""Exact statement counts: a loop over N roots touching K relationship hops runs 1 + K
statements with batching on, for N = 1, 10 and 1,000 and every relationship kind, and reads
exactly what it reads with batching off."""

from __future__ import annotations

import math

import pytest
from sqlalchemy import Engine, distinct, func, select
from sqlalchemy.orm import Session

import sqlaopt
from sqlaopt.batching import _peers

from .kinds import LOOPS, Loop
from .models import Parent

pytestmark = pytest.mark.nplusone(mode="off")  # the unbatched runs are N+1s on purpose


def run(engine: Engine, loop: Loop, n: int, *, eager: bool = False,
        **batch: int) -> tuple[int, object]:
    """(statements, values) of one loop in a fresh session; ``max_batch=0``: batching off."""
    with Session(engine) as session, sqlaopt.count_queries() as queries:
        if batch.get("max_batch", 1):
            with sqlaopt.batch(**batch):
                values = loop.run(session, n, eager=eager)
        else:
            values = loop.run(session, n, eager=eager)
    return queries.count, values


def expected(engine: Engine, loop: Loop, n: int) -> object:
    """What the loop reads without batching: unbatched for small N; for 1,000 (thousands of
    statements) what SQLAlchemy's own eager loading reads, where it loads the same graph."""
    if n > 10 and not loop.expire:
        return run(engine, loop, n, eager=True, max_batch=0)[1]
    return run(engine, loop, n, max_batch=0)[1]


@pytest.mark.parametrize("n", [1, 10, 1_000])
@pytest.mark.parametrize("loop", LOOPS, ids=[loop.name for loop in LOOPS])
def test_one_statement_per_hop(kinds_engine: Engine, loop: Loop, n: int) -> None:
    statements, values = run(kinds_engine, loop, n, max_batch=5_000)  # no chunking here
    assert statements == 1 + loop.hops
    assert values == expected(kinds_engine, loop, n)


@pytest.mark.parametrize("loop", LOOPS, ids=[loop.name for loop in LOOPS])
def test_without_batching_the_loops_are_n_plus_one(kinds_engine: Engine, loop: Loop) -> None:
    assert run(kinds_engine, loop, 10, max_batch=0)[0] > 1 + loop.hops


@pytest.mark.parametrize(("n", "max_batch"), [(10, 1), (1_000, 300), (1_000, 500)])
def test_in_lists_are_chunked_by_max_batch(kinds_engine: Engine, n: int, max_batch: int) -> None:
    """One IN list per max_batch keys (500, the default, as select-IN loading)."""
    loop = next(loop for loop in LOOPS if loop.name == "one-to-many ordered")
    batch = {"max_batch": max_batch} if max_batch != 500 else {}
    statements, values = run(kinds_engine, loop, n, **batch)
    assert statements == 1 + math.ceil(n / max_batch)
    assert values == expected(kinds_engine, loop, n)


@pytest.mark.parametrize("cache_bound", [None, 2_000])
def test_what_several_in_lists_loaded_stays_one_group(
    kinds_engine: Engine, cache_bound: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Children loaded by four IN lists are peers of each other: with room for all of them in
    one list, their toys take one statement, not one per list that loaded them. (The group is
    filed under four run ids but counts once against the cache's bound on members.)"""
    if cache_bound is not None:
        monkeypatch.setattr(_peers, "_CACHED_MEMBERS", cache_bound)
    with Session(kinds_engine) as session, sqlaopt.count_queries() as queries:
        parents = session.scalars(select(Parent).order_by(Parent.id)).all()
        with sqlaopt.batch(max_batch=300):
            children = [c for p in parents for c in p.children]
        with sqlaopt.batch(max_batch=5_000):
            toys = [t.id for c in children for t in c.toys]
    assert queries.count == 1 + math.ceil(len(parents) / 300) + 1
    assert len(children) > 1_500 and len(toys) > 1_000


def test_many_to_one_chunks_count_distinct_keys(kinds_engine: Engine) -> None:
    """Parents sharing an owner share its key: the IN lists hold each owner id once."""
    loop = next(loop for loop in LOOPS if loop.name == "many-to-one")
    with Session(kinds_engine) as session:
        owners = session.scalar(select(func.count(distinct(Parent.owner_id))))
    assert owners is not None and 1 < owners < 1_000
    assert run(kinds_engine, loop, 1_000, max_batch=owners)[0] == 2
    assert run(kinds_engine, loop, 1_000, max_batch=owners - 1)[0] == 3
