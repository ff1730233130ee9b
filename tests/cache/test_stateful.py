"""Hypothesis stateful test: two Sessions interleave cached reads, writes, commits, rollbacks
and savepoints on the reference schema (PostgreSQL); every cached read equals the same query
run uncached at that moment, in the same transaction.

Three set-ups: both Sessions in this process with the in-process backend; the same with
Redis; and one Session in a second OS process (multiprocessing spawn), the two processes
sharing one Redis namespace, so invalidations travel between processes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule, run_state_machine_as_test
from sqlalchemy import Engine, create_engine, delete, insert, select

import sqlaopt.cache as cache
from sqlaopt.booking.models import Payment

from ._actors import QUERIES, Actor, RemoteActor

pytestmark = pytest.mark.nplusone(mode="off")

SETTINGS = settings(max_examples=12, stateful_step_count=30, deadline=None,
                    suppress_health_check=list(HealthCheck))
WRITES = ["raise_prices", "mark_refunded", "delete_latest", "link_appointment"]


class TwoSessions(RuleBasedStateMachine):
    """Rules act on actor 0 or 1 (set up by the test, reused across examples)."""

    actors: ClassVar[list[Any]]
    restore: ClassVar[Any]
    reads: ClassVar[int] = 0

    def __init__(self) -> None:
        super().__init__()
        type(self).restore()
        for actor in self.actors:
            actor.do("reset")

    def _read(self, who: int, query: str) -> None:
        cached, fresh = self.actors[who].do("read", query)
        assert cached == fresh, f"{query} in session {who}"
        type(self).reads += 1

    @rule(who=st.integers(0, 1), query=st.sampled_from(sorted(QUERIES)))
    def read(self, who: int, query: str) -> None:
        self._read(who, query)

    @rule(query=st.sampled_from(sorted(QUERIES)))
    def read_in_both(self, query: str) -> None:
        self._read(0, query)
        self._read(1, query)

    @rule(who=st.integers(0, 1), amount=st.integers(1, 500))
    def insert(self, who: int, amount: int) -> None:
        self.actors[who].do("insert", amount)

    @rule(who=st.integers(0, 1), write=st.sampled_from(WRITES))
    def write(self, who: int, write: str) -> None:
        self.actors[who].do(write)

    @rule(who=st.integers(0, 1),
          end=st.sampled_from(["commit", "commit", "rollback", "savepoint", "release",
                               "rollback_savepoint"]))
    def transaction(self, who: int, end: str) -> None:
        self.actors[who].do(end)

    def teardown(self) -> None:
        for actor in self.actors:
            actor.do("rollback")


@pytest.fixture
def engine(pg_engine: Engine) -> Iterator[Engine]:
    """The sample data on PostgreSQL; a lock wait fails after 10 s instead of hanging."""
    engine = create_engine(pg_engine.url, connect_args={"options": "-c lock_timeout=10000"})
    yield engine
    engine.dispose()


def restorer(engine: Engine) -> Any:
    """Puts the sample's payments back (the only table the rules change)."""
    payments = Payment.__table__
    with engine.connect() as conn:
        rows = [dict(row._mapping) for row in conn.execute(select(payments))]

    def restore() -> None:
        with engine.begin() as conn:
            conn.execute(delete(payments))
            conn.execute(insert(payments), rows)

    return restore


def run(engine: Engine, actors: list[Any], examples: int) -> int:
    machine = type("Machine", (TwoSessions,), {
        "actors": actors, "restore": staticmethod(restorer(engine)), "reads": 0})
    run_state_machine_as_test(machine, settings=settings(SETTINGS, max_examples=examples))
    return machine.reads


def test_two_sessions_in_one_process(engine: Engine, installed: str) -> None:
    actors = [Actor(engine, 0), Actor(engine, 1)]
    try:
        assert run(engine, actors, examples=12) > 0
    finally:
        for actor in actors:
            actor.close()
    assert cache.stats().hits > 0 and cache.stats().invalidations > 0


def test_two_processes_sharing_redis(engine: Engine, redis_url: str, namespace: str) -> None:
    cache.install(redis_url, namespace=namespace)
    url = engine.url.render_as_string(hide_password=False)
    remote = RemoteActor(url, redis_url, namespace, parity=1)
    local = Actor(engine, 0)
    try:
        assert run(engine, [local, remote], examples=8) > 0
        assert cache.stats().hits > 0 and remote.do("hits") > 0
    finally:
        remote.stop()
        local.close()
        cache.clear()
        cache.uninstall()
