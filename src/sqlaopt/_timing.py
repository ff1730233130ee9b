"""Latency percentiles and the SQL a call runs: shared by ``sqlaopt demo`` and the benchmarks."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.engine import Connection

from .detect import count_queries

__all__ = ["Executed", "Timing", "capture_statements", "percentile", "time_call"]


@dataclass(frozen=True)
class Timing:
    """Latencies of repeated runs of one call, in milliseconds, and its statement count."""

    runs: int
    p50: float
    p95: float
    p99: float
    statements: int


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile of ``values`` (``fraction`` in [0, 1])."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[rank]


def time_call(
    call: Callable[[], Any], *, min_runs: int, max_runs: int, budget_seconds: float
) -> Timing:
    """Run ``call`` at least ``min_runs`` times and until ``budget_seconds`` or ``max_runs``."""
    with count_queries() as queries:
        call()  # warm-up: caches, connection; its statements are the per-run count
    statements = queries.count
    latencies: list[float] = []
    deadline = time.perf_counter() + budget_seconds
    while len(latencies) < min_runs or (len(latencies) < max_runs
                                        and time.perf_counter() < deadline):
        start = time.perf_counter()
        call()
        latencies.append((time.perf_counter() - start) * 1000)
    return Timing(len(latencies), percentile(latencies, 0.50), percentile(latencies, 0.95),
                  percentile(latencies, 0.99), statements)


@dataclass(frozen=True)
class Executed:
    """One statement as it reached the driver."""

    sql: str
    parameters: Any


@contextmanager
def capture_statements(engine: Engine) -> Iterator[list[Executed]]:
    """Record every statement ``engine`` sends to the driver inside the block."""
    seen: list[Executed] = []

    def record(conn: Connection, cursor: Any, sql: str, parameters: Any, context: Any,
               executemany: bool) -> None:
        if not executemany:
            seen.append(Executed(sql, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)
