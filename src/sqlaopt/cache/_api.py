"""install / uninstall / invalidate / bypass / clear / stats."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, Table, event

from ._backends import Backend, MemoryBackend
from ._errors import CacheError
from ._redis import REDIS_SCHEMES, RedisBackend, is_redis_client
from ._state import CacheStats, bypassing, reset
from ._state import stats as _stats
from ._statements import check_namespace, on_execute, on_execute_no_params, on_executemany
from ._store import Store, current, set_current
from ._tables import ALL, declared
from ._transactions import restore_dialects, set_bump

__all__ = ["bypass", "clear", "install", "invalidate", "stats", "uninstall"]

# Dialect events only: a Connection event would make every Connection of the process
# dispatch its events on every statement, for good (see _transactions).
_EVENTS = (
    ("do_execute", on_execute),
    ("do_executemany", on_executemany),
    ("do_execute_no_params", on_execute_no_params),
)
_lock = threading.Lock()


def install(backend: object = None, *, namespace: str | None = None) -> None:
    """Turn the cache on for this process.

    ``backend``: None for the in-process backend (:class:`MemoryBackend`), a ``redis://``
    URL or a ``redis.Redis`` client for Redis (:class:`RedisBackend`, needs
    ``sqlaopt[redis]``), or a backend object. ``namespace`` (default ``"default"``) keeps
    this application's versions and entries apart from others sharing the backend: every
    process of one application must use the same one. Calling it again replaces the backend;
    counters start from zero.
    """
    store = Store(_backend(backend), "default" if namespace is None
                  else check_namespace(namespace, "install(namespace)"))
    with _lock:
        previous = set_current(store)
        if previous is None:
            for name, listener in _EVENTS:
                event.listen(Engine, name, listener)
        elif previous.backend is not store.backend:
            previous.backend.close()
        set_bump(_bump_current)
        reset()


def uninstall() -> None:
    """Turn the cache off: statements and cached functions run uncached. Idempotent."""
    with _lock:
        previous = set_current(None)
        if previous is None:
            return
        for name, listener in _EVENTS:
            event.remove(Engine, name, listener)
        set_bump(None)
        restore_dialects()
        previous.backend.close()


def _bump_current(tables: frozenset[str], in_greenlet: bool) -> None:
    store = current()
    if store is not None:
        store.bump(tables, in_greenlet)


def _backend(value: object) -> Backend:
    if value is None:
        return MemoryBackend()
    if isinstance(value, Backend):
        return value
    if (isinstance(value, str) and value.startswith(REDIS_SCHEMES)) or is_redis_client(value):
        return RedisBackend(value)
    raise CacheError(
        f"install(backend=...) takes None (in-process), a redis:// URL, a redis.Redis client, "
        f"a MemoryBackend or a RedisBackend, not {value!r}")


def invalidate(*tables: str | Table | type) -> None:
    """Invalidate every entry that read one of ``tables`` (names, Table objects or mapped
    classes; ``"*"`` for all), now: for writes sqlaopt cannot see (another application,
    triggers, raw DBAPI). Call it after those writes commit. No-op when not installed."""
    if not tables:
        raise CacheError("invalidate() needs at least one table (or '*' for every table)")
    names = {ALL if name == ALL else (name if schema is None else f"{schema}.{name}").lower()
             for schema, name in declared(tables, "invalidate()")}
    store = current()
    if store is not None:
        store.bump(names, in_greenlet=False)


@contextmanager
def bypass() -> Iterator[None]:
    """Run cached statements and functions uncached inside the block (fresh data for an admin
    view, a check before a write). Their writes still invalidate as usual."""
    token = bypassing.set(True)
    try:
        yield
    finally:
        bypassing.reset(token)


def clear() -> int:
    """Delete this namespace's entries and versions from the backend (every process of the
    application sees an empty cache); returns how many keys went. 0 when not installed."""
    store = current()
    return store.backend.clear(store.prefix) if store is not None else 0


def stats(namespace: str | None = None) -> CacheStats:
    """This process's counters since :func:`install`: for one entry namespace (``""`` is
    the default one), or with None the totals (the only place errors and invalidations,
    which belong to no entry namespace, are counted)."""
    return _stats(namespace)
