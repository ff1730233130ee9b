"""Writes waiting for their transaction: bumped after the database commits, dropped on rollback.

Each Connection with writes carries a :class:`Pending`: the tables written, one frame per open
savepoint (released: merged into the frame below; rolled back: dropped). SQLAlchemy's
``commit`` event fires *before* the database commits, and bumping there is the cachalot bug
(a reader can re-cache the old rows between the bump and the commit), so the commit event
only hands the tables to the connection's pool record, and the dialect's ``do_commit`` (the
call that commits, wrapped per dialect while writes wait) bumps them after it returns. A
commit that raises bumps too: its outcome is unknown.

Open transactions with writes are also listed per thread / asyncio task, so a cached function
called after its caller's uncommitted writes can tell (see ``_functions``).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect

from .._lanes import lane

__all__ = [
    "Pending",
    "lane_pending",
    "on_commit",
    "on_release_savepoint",
    "on_rollback",
    "on_rollback_savepoint",
    "on_savepoint",
    "pending",
    "record",
    "restore_dialects",
    "set_bump",
]

_KEY = "_sqlaopt_cache_pending"
_COMMITTING = "sqlaopt_cache_committing"

Bump = Callable[[frozenset[str], bool], None]


def _no_bump(tables: frozenset[str], in_greenlet: bool) -> None:
    pass


_bump: Bump = _no_bump


def set_bump(bump: Bump | None) -> None:
    """Where committed tables go (the installed store), or nowhere."""
    global _bump
    _bump = bump or _no_bump


class Pending:
    """Tables written in one connection's transaction: one set for the transaction, one more
    per open savepoint."""

    __slots__ = ("__weakref__", "frames", "lanes")

    def __init__(self) -> None:
        self.frames: list[set[str]] = [set()]
        self.lanes: set[int] = set()

    def tables(self) -> frozenset[str]:
        if len(self.frames) == 1:
            return frozenset(self.frames[0])
        return frozenset().union(*self.frames)

    def clear(self) -> None:
        if self.lanes or len(self.frames) > 1 or self.frames[0]:
            self.frames = [set()]
            self.lanes.clear()
            _writers.discard(self)

    def close_savepoint(self, keep: bool) -> None:
        """Close the innermost savepoint: its writes join the frame below when released, and
        vanish when rolled back.

        SQLAlchemy names an automatic savepoint only after the ``savepoint`` event, so frames
        go by position. Rolling back an outer savepoint while inner ones are open sends one
        event: the innermost frame goes (its writes were all rolled back) and the outer one
        stays; its writes are then bumped needlessly at commit, never missed.
        """
        if len(self.frames) > 1:
            closing = self.frames.pop()
            if keep:
                self.frames[-1].update(closing)


_writers: weakref.WeakSet[Pending] = weakref.WeakSet()
"""Open transactions with writes, for :func:`lane_pending`."""


def _pending(connection: Connection, create: bool) -> Pending | None:
    found: Pending | None = connection.__dict__.get(_KEY)
    if found is None and create:
        found = connection.__dict__[_KEY] = Pending()
    return found


def record(connection: Connection, tables: frozenset[str]) -> None:
    """Note writes to ``tables`` in the connection's open transaction."""
    found = _pending(connection, create=True)
    assert found is not None
    found.frames[-1].update(tables)
    found.lanes.add(lane())
    _writers.add(found)


def pending(connection: Connection) -> frozenset[str]:
    """Tables this connection's transaction wrote and has not committed."""
    found = _pending(connection, create=False)
    return found.tables() if found is not None else frozenset()


def lane_pending(tables: frozenset[str]) -> bool:
    """Whether a transaction of this thread / task has uncommitted writes to ``tables``."""
    current = lane()
    for writes in list(_writers):
        if current in writes.lanes:
            written = writes.tables()
            if written & tables or "*" in written:
                return True
    return False


# ------------------------------------------------------------------------------- events


def on_savepoint(connection: Connection, name: str) -> None:
    found = _pending(connection, create=True)
    assert found is not None
    found.frames.append(set())


def on_release_savepoint(connection: Connection, name: str, context: Any) -> None:
    found = _pending(connection, create=False)
    if found is not None:
        found.close_savepoint(keep=True)


def on_rollback_savepoint(connection: Connection, name: str, context: Any) -> None:
    found = _pending(connection, create=False)
    if found is not None:
        found.close_savepoint(keep=False)


def on_rollback(connection: Connection) -> None:
    found = _pending(connection, create=False)
    if found is not None:
        found.clear()


def on_commit(connection: Connection) -> None:
    """Hand the transaction's tables to the commit that is about to happen."""
    found = _pending(connection, create=False)
    if found is None:
        return
    tables = found.tables()
    found.clear()
    if tables:
        _wrap(connection.dialect)
        connection.connection.info[_COMMITTING] = tables


# ----------------------------------------------------------------------- after the commit

_wrapped: weakref.WeakKeyDictionary[Dialect, Callable[[Any], None]] = (
    weakref.WeakKeyDictionary())
_wrap_lock = threading.Lock()


def _wrap(dialect: Dialect) -> None:
    if dialect in _wrapped:
        return
    with _wrap_lock:
        if dialect in _wrapped:
            return
        original = dialect.do_commit
        in_greenlet = dialect.is_async

        def do_commit(dbapi_connection: Any) -> None:
            committing = dbapi_connection.info.pop(_COMMITTING, None)
            try:
                original(dbapi_connection)
            finally:
                if committing:
                    _bump(committing, in_greenlet)

        dialect.do_commit = do_commit  # type: ignore[method-assign]
        _wrapped[dialect] = do_commit


def restore_dialects() -> None:
    """Remove the ``do_commit`` wrappers (on uninstall)."""
    with _wrap_lock:
        for dialect, wrapper in list(_wrapped.items()):
            if dialect.__dict__.get("do_commit") is wrapper:
                del dialect.__dict__["do_commit"]
        _wrapped.clear()
