"""The race that breaks cachalot-style caches, made deterministic with threads and gates.

A version-invalidated cache goes stale when a reader stores rows older than the versions it
stores them under. sqlaopt reads versions before the query and bumps them after the
database commits; these tests stop a reader or a writer at each point in between and check
that no stale entry is ever served afterwards.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

import sqlaopt.cache as cache
from sqlaopt.cache import _transactions
from sqlaopt.cache._backends import Backend

from ._support import add_payment, total
from .conftest import installed_on

pytestmark = pytest.mark.nplusone(mode="off")

TIMEOUT = 30


class Gate:
    """Stops the thread that reaches it until the test opens it."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self.opened = threading.Event()

    def pass_through(self) -> None:
        self.reached.set()
        assert self.opened.wait(TIMEOUT), "the gate was never opened"


class GatedBackend(Backend):
    """Forwards to a real backend; ``gates[op]`` stops the next call of ``op``."""

    def __init__(self, real: Backend) -> None:
        self.real = real
        self.io = real.io
        self.gates: dict[str, Gate] = {}

    def _gate(self, op: str) -> None:
        gate = self.gates.pop(op, None)
        if gate is not None:
            gate.pass_through()

    def read(self, version_keys: Sequence[str], entry_key: str | None
             ) -> tuple[list[str], bytes | None]:
        found = self.real.read(version_keys, entry_key)
        self._gate("after read")
        return found

    def write(self, entry_key: str, value: bytes, ttl: float) -> None:
        self._gate("write")
        self.real.write(entry_key, value, ttl)

    def bump(self, version_keys: Sequence[str]) -> None:
        self._gate("bump")
        self.real.bump(version_keys)

    def clear(self, prefix: str) -> int:
        return self.real.clear(prefix)


@pytest.fixture
def gated(pg_engine: Engine, backend: str | None, namespace: str) -> Iterator[GatedBackend]:
    real = cache.MemoryBackend() if backend is None else cache.RedisBackend(backend)
    wrapper = GatedBackend(real)
    with installed_on(wrapper, namespace):
        yield wrapper
    real.close()


def in_thread(pool: ThreadPoolExecutor, work: Callable[[], Any]) -> Future[Any]:
    return pool.submit(work)


def fresh_total(engine: Engine) -> Decimal:
    with Session(engine) as session:
        return total(session, ttl=False)


def served_total(engine: Engine) -> Decimal:
    with Session(engine) as session:
        return total(session)


def commit_payment(engine: Engine, amount: str = "10.00") -> None:
    with Session(engine) as session:
        add_payment(session, amount)
        session.commit()


def test_reader_computes_before_the_commit_and_stores_after_it(
        pg_engine: Engine, gated: GatedBackend) -> None:
    gate = gated.gates["write"] = Gate()
    with ThreadPoolExecutor(1) as pool:
        reader = in_thread(pool, lambda: served_total(pg_engine))
        assert gate.reached.wait(TIMEOUT)  # the reader ran its query: old rows
        commit_payment(pg_engine)  # committed, versions bumped
        gate.opened.set()  # now the reader stores the old rows (under the old versions)
        old = reader.result(TIMEOUT)
    assert served_total(pg_engine) == fresh_total(pg_engine) == old + 10


def test_reader_reads_versions_before_the_commit_and_queries_after_it(
        pg_engine: Engine, gated: GatedBackend) -> None:
    gate = gated.gates["after read"] = Gate()
    with ThreadPoolExecutor(1) as pool:
        reader = in_thread(pool, lambda: served_total(pg_engine))
        assert gate.reached.wait(TIMEOUT)  # versions read, query not run yet
        commit_payment(pg_engine)
        gate.opened.set()  # the reader's query sees the new rows; stored under old versions
        new = reader.result(TIMEOUT)
    assert new == fresh_total(pg_engine) == served_total(pg_engine)


def test_reader_between_the_commit_and_the_bump(pg_engine: Engine, gated: GatedBackend) -> None:
    before = served_total(pg_engine)
    gate = gated.gates["bump"] = Gate()
    with ThreadPoolExecutor(1) as pool:
        writer = in_thread(pool, lambda: commit_payment(pg_engine))
        assert gate.reached.wait(TIMEOUT)  # committed in the database, not yet bumped
        # The one window a version cache has: a reader here still gets the entry from before
        # the commit, as if it had read just before it (documented).
        assert served_total(pg_engine) == before
        gate.opened.set()
        writer.result(TIMEOUT)
    assert served_total(pg_engine) == fresh_total(pg_engine) == before + 10


def test_invalidating_before_the_commit_would_serve_stale_rows(
        pg_engine: Engine, gated: GatedBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cachalot ordering, simulated: bump first, commit afterwards. The same reader
    interleaving leaves an entry that is stale for good; sqlaopt's ordering does not."""
    before = served_total(pg_engine)
    with Session(pg_engine) as writer:
        monkeypatch.setattr(_transactions, "_bump", lambda tables, in_greenlet: None)
        add_payment(writer, "10.00")
        cache.invalidate("payments")  # cachalot: invalidate, then commit
        assert served_total(pg_engine) == before  # re-cached from the uncommitted state
        writer.commit()
    assert served_total(pg_engine) == before != fresh_total(pg_engine)  # stale for good
    monkeypatch.undo()

    cache.clear()
    before = served_total(pg_engine)
    with Session(pg_engine) as writer:
        add_payment(writer, "10.00")
        assert served_total(pg_engine) == before
        writer.commit()  # sqlaopt: bump after the database commits
    assert served_total(pg_engine) == fresh_total(pg_engine) == before + 10
