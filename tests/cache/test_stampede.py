"""Stampede protection: many callers of one missing entry, one computation."""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session

import sqlaopt.cache as cache

pytestmark = pytest.mark.nplusone(mode="off")

# Slow enough that every caller arrives while the first one computes.
SLOW = text("SELECT pg_sleep(0.4), count(*) FROM payments").execution_options(
    sqlaopt_cache=60, sqlaopt_tables=("payments",))
CALLERS = 6


def test_one_computation_per_key_in_a_process(pg_engine: Engine, installed: str) -> None:
    start = threading.Barrier(CALLERS)

    def call() -> Any:
        start.wait()
        with Session(pg_engine) as session:
            return session.execute(SLOW).one()[1]

    with ThreadPoolExecutor(CALLERS) as pool:
        counts = list(pool.map(lambda _: call(), range(CALLERS)))
    assert len(set(counts)) == 1
    assert (cache.stats().misses, cache.stats().hits) == (1, CALLERS - 1)


def compute_in_worker(url: str, redis_url: str, namespaces: dict[bool, str],
                      ready: Any, go: Any, results: Any) -> None:
    """For each set-up (Redis lock on, then off): wait for the other worker, run the slow
    cached query at the same moment, report this process's misses."""
    engine = create_engine(url)
    with Session(engine) as session:
        session.execute(text("SELECT 1")).all()  # connected before the race starts
    for lock, namespace in namespaces.items():
        cache.install(cache.RedisBackend(redis_url, lock=lock), namespace=namespace)
        ready.wait()
        go[lock].wait()
        with Session(engine) as session:
            session.execute(SLOW).one()
        results.put((lock, cache.stats().misses))
        cache.uninstall()
    engine.dispose()


def test_a_redis_lock_makes_it_one_computation_across_processes(
        pg_engine: Engine, redis_url: str, namespace: str) -> None:
    context = multiprocessing.get_context("spawn")
    namespaces = {True: f"{namespace}-lock", False: f"{namespace}-nolock"}
    ready, results = context.Barrier(3), context.Queue()
    go = {lock: context.Event() for lock in namespaces}
    url = pg_engine.url.render_as_string(hide_password=False)
    workers = [context.Process(target=compute_in_worker, daemon=True,
                               args=(url, redis_url, namespaces, ready, go, results))
               for _ in range(2)]
    for worker in workers:
        worker.start()
    misses = dict.fromkeys(namespaces, 0)
    try:
        for lock in namespaces:
            ready.wait(120)
            go[lock].set()
            for _ in workers:
                done_lock, count = results.get(timeout=60)
                misses[done_lock] += count
    finally:
        for worker in workers:
            worker.join(30)
        for name in namespaces.values():
            cache.install(redis_url, namespace=name)
            cache.clear()
            cache.uninstall()
    assert misses == {True: 1, False: 2}  # without the lock both processes compute it
