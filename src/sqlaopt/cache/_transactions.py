"""Writes waiting for their transaction: bumped after the database commits, dropped on rollback.

Each DBAPI connection with writes carries a :class:`Pending` in its pool entry's ``info``: the
tables written, one frame per open savepoint (released: merged into the frame below; rolled
back: dropped). The transaction's end and its savepoints are seen by wrapping the dialect's
own methods (``do_commit``, ``do_rollback``, ``do_savepoint``, ``do_release_savepoint``,
``do_rollback_to_savepoint``), per dialect, from the first statement the cache sees on it:

- not Connection events: the first Connection listener ever registered makes every
  Connection dispatch its events on every statement for the rest of the process
  (``Engine._has_events``, never reset), about 4 µs a statement (docs/benchmarks.md);
- ``do_commit`` is where the bump belongs: after it returns the database has committed.
  SQLAlchemy's ``commit`` event fires *before*, and bumping there is the cachalot bug (a
  reader can re-cache the old rows between the bump and the commit). A commit that raises
  bumps too: its outcome is unknown;
- a pool that commits or rolls back a connection handed back to it goes through the same
  methods, and a reconnect empties the entry's ``info``.

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
    "pending",
    "record",
    "restore_dialects",
    "set_bump",
    "watch",
]

_KEY = "sqlaopt_cache_pending"

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

        Frames go by position. Rolling back an outer savepoint while inner ones are open is
        one call: the innermost frame goes (its writes were all rolled back) and the outer
        one stays; its writes are then bumped needlessly at commit, never missed.
        """
        if len(self.frames) > 1:
            closing = self.frames.pop()
            if keep:
                self.frames[-1].update(closing)


_writers: weakref.WeakSet[Pending] = weakref.WeakSet()
"""Open transactions with writes, for :func:`lane_pending`."""


def _pending(info: dict[str, Any], create: bool) -> Pending | None:
    """The writes waiting in the transaction of the DBAPI connection whose pool entry's
    ``info`` this is."""
    found: Pending | None = info.get(_KEY)
    if found is None and create:
        found = info[_KEY] = Pending()
    return found


def record(connection: Connection, tables: frozenset[str]) -> None:
    """Note writes to ``tables`` in the connection's open transaction."""
    found = _pending(connection.connection.info, create=True)
    assert found is not None
    found.frames[-1].update(tables)
    found.lanes.add(lane())
    _writers.add(found)


def pending(connection: Connection) -> frozenset[str]:
    """Tables this connection's transaction wrote and has not committed."""
    found = _pending(connection.connection.info, create=False)
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


# ------------------------------------------------------------- the dialect's methods

# The flag in a watched dialect's __dict__ is the per-statement check (a weak-key lookup
# makes a weak reference each time); _wrapped keeps the wrappers for uninstall.
_WATCHED = "_sqlaopt_cache_watched"
_wrapped: weakref.WeakKeyDictionary[Dialect, dict[str, Callable[..., None]]] = (
    weakref.WeakKeyDictionary())
_wrap_lock = threading.Lock()


def watch(dialect: Dialect) -> None:
    """See this dialect's commits, rollbacks and savepoints from now on. Called at every
    statement, not only at writes: a savepoint opened before the first write needs its frame
    (a test that writes first inside ``begin_nested()`` and rolls it back)."""
    if _WATCHED in dialect.__dict__:
        return
    with _wrap_lock:
        if dialect in _wrapped:
            return
        wrappers = _wrappers(dialect)
        for name, wrapper in wrappers.items():
            setattr(dialect, name, wrapper)
        _wrapped[dialect] = wrappers
        dialect.__dict__[_WATCHED] = True


def _wrappers(dialect: Dialect) -> dict[str, Callable[..., None]]:
    commit, rollback = dialect.do_commit, dialect.do_rollback
    savepoint, release = dialect.do_savepoint, dialect.do_release_savepoint
    rollback_to = dialect.do_rollback_to_savepoint
    in_greenlet = dialect.is_async

    def do_commit(dbapi_connection: Any) -> None:
        found = _pending(_info_of(dbapi_connection), create=False)
        tables = found.tables() if found is not None else frozenset()
        if found is not None:
            found.clear()
        try:
            commit(dbapi_connection)
        finally:
            if tables:
                _bump(tables, in_greenlet)

    def do_rollback(dbapi_connection: Any) -> None:
        found = _pending(_info_of(dbapi_connection), create=False)
        if found is not None:
            found.clear()
        rollback(dbapi_connection)

    def do_savepoint(connection: Connection, name: str) -> None:
        found = _pending(connection.connection.info, create=True)
        assert found is not None
        found.frames.append(set())
        savepoint(connection, name)

    def do_release_savepoint(connection: Connection, name: str) -> None:
        found = _pending(connection.connection.info, create=False)
        if found is not None:
            found.close_savepoint(keep=True)
        release(connection, name)

    def do_rollback_to_savepoint(connection: Connection, name: str) -> None:
        found = _pending(connection.connection.info, create=False)
        if found is not None:
            found.close_savepoint(keep=False)
        rollback_to(connection, name)

    return {"do_commit": do_commit, "do_rollback": do_rollback, "do_savepoint": do_savepoint,
            "do_release_savepoint": do_release_savepoint,
            "do_rollback_to_savepoint": do_rollback_to_savepoint}


def _info_of(dbapi_connection: Any) -> dict[str, Any]:
    """The pool entry's ``info`` of the connection a commit or rollback is given: SQLAlchemy
    passes its pool's proxy. Writes can wait only there (``record``); the ad hoc proxy of the
    engine's first connect, whose ``info`` is not implemented, or a bare DBAPI connection, has
    none waiting."""
    try:
        info: dict[str, Any] = dbapi_connection.info
    except (AttributeError, NotImplementedError):
        return {}
    return info


def restore_dialects() -> None:
    """Remove the wrappers (on uninstall)."""
    with _wrap_lock:
        for dialect, wrappers in list(_wrapped.items()):
            for name, wrapper in wrappers.items():
                if dialect.__dict__.get(name) is wrapper:
                    del dialect.__dict__[name]
            dialect.__dict__.pop(_WATCHED, None)
        _wrapped.clear()
