"""``PlanSampler``: the plan of a statement the application just ran, fetched safely.

For a slow-statement log: ``EXPLAIN`` without ANALYZE (the statement is planned, never run
again), on a connection of the sampler's own (never the application's, which may be inside a
transaction), through the DBAPI cursor (no SQLAlchemy events fire, so a statement hook cannot
recurse), rate-limited overall and per statement shape, bounded in memory, and never raising
into the application: any failure returns None.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.pool import PoolProxiedConnection

from ._errors import WatchError
from ._normalize import normalize

__all__ = ["PlanSampler"]

_EXPLAINABLE = ("select", "with", "update", "delete", "insert", "values", "table")


class PlanSampler:
    """Plans of statements, at most ``per_minute`` a minute, each statement shape at most
    once per ``interval`` seconds, remembering at most ``max_shapes`` shapes.

    ``plan(sql, parameters)`` takes a statement as the driver got it (a
    ``before_cursor_execute`` listener's ``statement`` and ``parameters``) and returns
    PostgreSQL's text plan, or None when rate-limited, busy (another thread is explaining),
    not PostgreSQL, not a query, or failed. ``timeout`` bounds the planning time (seconds).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        per_minute: int = 6,
        interval: float = 600.0,
        max_shapes: int = 1000,
        timeout: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not isinstance(engine, Engine):
            raise WatchError(f"PlanSampler takes an Engine, not {engine!r}")
        for name, value in (("per_minute", per_minute), ("max_shapes", max_shapes)):
            if not isinstance(value, int) or value < 1:
                raise WatchError(f"{name} must be a positive int, not {value!r}")
        self.enabled = engine.dialect.name == "postgresql"
        self._pool = engine.pool.recreate() if self.enabled else None
        self._per_minute, self._interval, self._max_shapes = per_minute, interval, max_shapes
        self._timeout_ms = max(1, int(timeout * 1000))
        self._clock = clock
        self._lock = threading.Lock()
        self._recent: list[float] = []  # times of the plans of the last minute
        self._shapes: OrderedDict[str, float] = OrderedDict()
        self._connection: PoolProxiedConnection | None = None

    def plan(self, sql: str, parameters: Any = None) -> str | None:
        """The plan of ``sql`` with ``parameters``, or None (see the class docstring)."""
        if not self.enabled or not self._lock.acquire(blocking=False):
            return None
        try:
            shape = normalize(sql)
            if not self._admit(shape):
                return None
            return self._explain(sql, parameters)
        except Exception:  # a sampler never breaks the application
            self._discard()
            return None
        finally:
            self._lock.release()

    def _admit(self, shape: str) -> bool:
        first = shape.lstrip("( ").split(" ", 1)[0].lower()
        if first not in _EXPLAINABLE:
            return False
        now = self._clock()
        self._recent = [t for t in self._recent if now - t < 60.0]
        seen = self._shapes.get(shape)
        if len(self._recent) >= self._per_minute or (
                seen is not None and now - seen < self._interval):
            return False
        self._recent.append(now)
        self._shapes[shape] = now
        self._shapes.move_to_end(shape)
        while len(self._shapes) > self._max_shapes:
            self._shapes.popitem(last=False)
        return True

    def _explain(self, sql: str, parameters: Any) -> str:
        if self._connection is None:
            assert self._pool is not None
            self._connection = self._pool.connect()
            cursor = self._connection.cursor()
            cursor.execute(f"SET statement_timeout = {self._timeout_ms}")
            cursor.close()
            self._connection.commit()
        cursor = self._connection.cursor()
        try:
            if parameters:
                cursor.execute("EXPLAIN " + sql, parameters)
            else:
                cursor.execute("EXPLAIN " + sql)
            return "\n".join(str(row[0]) for row in cursor.fetchall())
        finally:
            cursor.close()
            self._connection.rollback()

    def _discard(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):  # already broken: nothing left to release
                connection.invalidate()

    def close(self) -> None:
        """Close the sampler's connection and pool."""
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None
            if self._pool is not None:
                self._pool.dispose()

    def __enter__(self) -> PlanSampler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
