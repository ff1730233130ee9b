"""The statement path: one DBAPI-level hook serves cached rows, fills misses and notes writes.

SQLAlchemy's ``do_execute`` dialect event runs right where the driver would be called, for
ORM and Core statements, ``text()`` and driver SQL, sync and asyncio alike, and lets a
listener say "already executed". A cached SELECT is answered there with the rows the driver
returned the first time (``FullyBufferedCursorFetchStrategy``), so everything above the
driver runs exactly as for a real query: type processing, ORM loading and the identity map,
eager loads (each ``selectinload`` statement is an entry of its own: SQLAlchemy passes the
parent's execution options down to it). No ORM object is ever serialised.

Order for one cached SELECT: work out its tables; run uncached when their transaction wrote
to them, when its snapshot may predate the cache, for locking reads and streamed results;
read the tables' versions and the entry in one round trip; serve it if it was stored under
exactly those versions; otherwise run the statement (one caller per key at a time) and store
the rows under the versions read *before* it ran.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy.engine.cursor import FullyBufferedCursorFetchStrategy
from sqlalchemy.engine.default import DefaultExecutionContext as ExecutionContext
from sqlalchemy.util import await_only

from . import _flights
from ._codec import (
    DecodeError,
    EncodeError,
    UnkeyableError,
    canonical,
    decode,
    digest,
    dumps,
    encode,
    loads,
)
from ._errors import CacheError
from ._identity import of_connection
from ._snapshot import autocommit, fresh
from ._state import Recording, bypassing, count, logger, recordings
from ._store import FAILED, Store, current
from ._tables import ALL, Pair, declared, qualify, reads, text_reads, text_writes, writes
from ._transactions import pending, record, watch

__all__ = [
    "FORMAT",
    "MAX_ENTRY_BYTES",
    "NAMESPACE_OPTION",
    "OPTION",
    "TABLES_OPTION",
    "check_namespace",
    "check_ttl",
    "on_execute",
    "on_execute_no_params",
    "on_executemany",
]

OPTION = "sqlaopt_cache"
TABLES_OPTION = "sqlaopt_tables"
NAMESPACE_OPTION = "sqlaopt_cache_namespace"
FORMAT = 1
"""Part of every key: a new entry format never reads an old one."""
MAX_ENTRY_BYTES = 4 * 2**20
"""Results whose entry would be larger are not stored."""

_ALL_PAIRS: frozenset[Pair] = frozenset({(None, ALL)})
_LOCKING_TEXT = re.compile(
    r"\bFOR\s+(?:NO\s+KEY\s+)?(?:UPDATE|SHARE|KEY\s+SHARE)\b|\bLOCK\s+IN\s+SHARE\s+MODE\b", re.I)
_POLL_SECONDS = 0.02


def check_ttl(value: object, what: str) -> float | None:
    """Seconds as a float, None for "not cached" (None or False); CacheError otherwise."""
    if value is None or value is False:
        return None
    if (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and value > 0):
        return float(value)
    raise CacheError(f"{what} must be a positive number of seconds (or False to bypass the "
                     f"cache), not {value!r}")


def check_namespace(value: object, what: str) -> str:
    if value is None:
        return ""
    if isinstance(value, str) and value.strip() and len(value) <= 200:
        return value
    raise CacheError(f"{what} must be a non-empty string of at most 200 characters, "
                     f"not {value!r}")


# ------------------------------------------------------------------------------ the hooks


def on_execute(cursor: Any, statement: str, parameters: Any, context: ExecutionContext) -> bool:
    """``do_execute``: writes are noted, cached reads served or filled; True when handled."""
    watch(context.dialect)
    written = _written(statement, context)
    if written is not None:
        return _on_write(context, written, lambda: context.dialect.do_execute(
            cursor, statement, parameters, context))
    ttl = context.execution_options.get(OPTION)
    if ttl is None and not recordings.get():
        return False
    return _on_read(cursor, statement, parameters, context, ttl)


def on_executemany(cursor: Any, statement: str, parameters: Any,
                   context: ExecutionContext) -> bool:
    watch(context.dialect)
    written = _written(statement, context)
    if written is None:
        return False
    return _on_write(context, written, lambda: context.dialect.do_executemany(
        cursor, statement, parameters, context))


def on_execute_no_params(cursor: Any, statement: str, context: ExecutionContext) -> bool:
    """Driver SQL run with ``no_parameters=True``: never served from the cache, but its
    writes are noted and a cached function running it records its tables."""
    watch(context.dialect)
    written = _written(statement, context)
    if written is not None:
        return _on_write(context, written, lambda: context.dialect.do_execute_no_params(
            cursor, statement, context))
    if recordings.get():
        _on_read(cursor, statement, (), context, None)
    return False


def _written(statement: str, context: ExecutionContext) -> frozenset[Pair] | None:
    """The tables a statement writes, or None for reads (and statements that change no data)."""
    if context.isinsert or context.isupdate or context.isdelete:
        return writes(context)
    if context.isddl:
        return _ALL_PAIRS
    if context.is_text:
        return text_writes(statement, context.dialect.name)
    return None


# --------------------------------------------------------------------------------- writes


def _on_write(context: ExecutionContext, written: frozenset[Pair],
              run_now: Callable[[], None]) -> bool:
    named = context.execution_options.get(TABLES_OPTION)
    tables = qualify(declared(named, TABLES_OPTION) if named is not None else written, context)
    for recording in recordings.get():
        recording.spoil("it writes to the database")
    store = current()
    connection = context.root_connection
    if store is None:
        return False
    if autocommit(connection):  # committed by the statement itself: bump right after it
        run_now()
        store.bump(tables, context.dialect.is_async)
        return True
    record(connection, tables)
    return False


# ---------------------------------------------------------------------------------- reads


def _on_read(cursor: Any, statement: str, parameters: Any, context: ExecutionContext,
             option: object) -> bool:
    store = current()
    if store is None:
        return False
    options = context.execution_options
    ttl = check_ttl(option, OPTION)
    namespace = check_namespace(options.get(NAMESPACE_OPTION), NAMESPACE_OPTION)
    active = recordings.get()
    tables, locking = _read_tables(statement, context, ttl)
    reason = ("inside sqlaopt.cache.bypass()" if bypassing.get()
              else _unsafe(tables, locking, context))
    if reason is None and ttl is not None and not tables and TABLES_OPTION not in options:
        # nextval(), now(), pg_advisory_xact_lock(): a statement that reads no table is
        # cached only when the application says so (sqlaopt_tables=()).
        reason = "it reads no table"
    if reason is not None or tables is None:
        _spoil(active, reason or "")
        if ttl is not None:
            count(namespace, "bypasses")
            logger.debug("sqlaopt cache: ran uncached (%s): %.80s", reason, statement)
        return False
    in_greenlet = context.dialect.is_async
    if ttl is None:  # an uncached read inside a cached function: note its tables' versions
        _note_versions(store, tables, active, in_greenlet)
        return False
    key = _statement_key(store, context, namespace, statement, parameters)
    if key is None:
        _spoil(active, "a parameter cannot be keyed")
        count(namespace, "bypasses")
        return False
    return _Lookup(store, key, tables, ttl, namespace, active, cursor, statement, parameters,
                   context).run()


def _read_tables(statement: str, context: ExecutionContext, ttl: float | None
                 ) -> tuple[frozenset[str] | None, bool]:
    """The tables a SELECT reads (None when unknown) and whether it is a locking read."""
    named = context.execution_options.get(TABLES_OPTION)
    extra = declared(named, TABLES_OPTION) if named is not None else frozenset()
    if context.compiled is None or context.is_text:
        named_here = extra if named is not None else text_reads(statement)
        if named_here is None:
            if ttl is not None:
                raise CacheError(
                    f"a cached text() or driver SQL SELECT must name the tables it reads, "
                    f"e.g. .execution_options(sqlaopt_cache={ttl:g}, "
                    f"sqlaopt_tables=('payments',)): {statement[:120]!r}")
            return None, False
        return qualify(named_here, context), bool(_LOCKING_TEXT.search(statement))
    found = reads(context.compiled)
    if not found.complete and named is None:
        return None, found.locking
    return qualify(found.tables | extra, context), found.locking


def _unsafe(tables: frozenset[str] | None, locking: bool, context: ExecutionContext
            ) -> str | None:
    """Why this read must not use the cache, or None."""
    if tables is None:
        return "its tables are unknown: a text() fragment may name others (add sqlaopt_tables)"
    if locking:
        return "it is a locking read"
    options = context.execution_options
    if options.get("stream_results") or options.get("yield_per"):
        return "it streams its rows"
    if not tables:  # reads no table (SELECT 1, SHOW ...): no version can be stale
        return None
    connection = context.root_connection
    written = pending(connection)
    if written and (ALL in written or not written.isdisjoint(tables)):
        return "its transaction wrote to its tables and has not committed"
    if not fresh(connection):
        return "its transaction's snapshot may be older than the cache"
    return None


def _spoil(active: tuple[Recording, ...], reason: str) -> None:
    for recording in active:
        recording.spoil(reason)


def _note_versions(store: Store, tables: frozenset[str], active: tuple[Recording, ...],
                   in_greenlet: bool) -> None:
    unseen = {t for t in (*tables, ALL) for r in active if t not in r.versions}
    if not unseen:
        return
    found = store.read(unseen, None, in_greenlet)
    if found is FAILED:
        _spoil(active, "the cache backend failed")
        return
    for recording in active:
        recording.add(found[0])


def _no_handles(value: object) -> None:
    return None


def _statement_key(store: Store, context: ExecutionContext, namespace: str, statement: str,
                   parameters: Any) -> str | None:
    translate: Mapping[Any, Any] | None = context.execution_options.get("schema_translate_map")
    try:
        values = canonical(parameters, "parameters", _no_handles)
    except UnkeyableError as error:
        logger.debug("sqlaopt cache: %s of type %s cannot be keyed; running uncached",
                     error.path, type(error.value).__name__)
        return None
    identity = of_connection(context.root_connection)
    mapping = sorted(([str(k), str(v)] for k, v in translate.items()), key=str) if translate else []
    return store.entry_key(digest(["s", FORMAT, identity, namespace, mapping, statement, values]))


class _Lookup:
    """One cached SELECT: serve it, or run it and store its rows."""

    def __init__(self, store: Store, key: str, tables: frozenset[str], ttl: float,
                 namespace: str, active: tuple[Recording, ...], cursor: Any, statement: str,
                 parameters: Any, context: ExecutionContext) -> None:
        self.store, self.key, self.tables, self.ttl = store, key, tables, ttl
        self.namespace, self.active = namespace, active
        self.cursor, self.statement, self.parameters, self.context = (
            cursor, statement, parameters, context)
        self.in_greenlet = context.dialect.is_async

    def run(self) -> bool:
        found = self.store.read(self.tables, self.key, self.in_greenlet)
        if found is FAILED:
            _spoil(self.active, "the cache backend failed")
            return False
        versions, raw = found
        for recording in self.active:
            recording.add(versions)
        if self._serve(raw, versions):
            return True
        flight, leader = _flights.join((self.key, tuple(sorted(versions.items()))))
        if not leader:
            flight.wait(self.in_greenlet)
            if self._serve_current(versions):
                return True
            return self._fill(versions)
        try:
            return self._fill_once_across_processes(versions)
        finally:
            flight.finish()

    def _serve_current(self, versions: dict[str, str]) -> bool:
        found = self.store.read(self.tables, self.key, self.in_greenlet)
        return found is not FAILED and found[0] == versions and self._serve(found[1], versions)

    def _serve(self, raw: bytes | None, versions: dict[str, str]) -> bool:
        if raw is None:
            return False
        try:
            entry = loads(raw)
            if entry["v"] != versions:
                return False
            description = [tuple(decode(item) for item in column) for column in entry["d"]]
            rows = [tuple([c if type(c) is not list else decode(c) for c in row])
                    for row in entry["r"]]
        except (DecodeError, KeyError, TypeError) as error:
            logger.debug("sqlaopt cache: unreadable entry %s (%s)", self.key, error)
            return False
        self.context.cursor_fetch_strategy = FullyBufferedCursorFetchStrategy(
            self.cursor, description, rows)
        count(self.namespace, "hits")
        return True

    def _fill_once_across_processes(self, versions: dict[str, str]) -> bool:
        lock_seconds = getattr(self.store.backend, "lock_seconds", 0.0)
        lock_key = self.store.lock_key(self.key)
        token = self.store.acquire(lock_key, lock_seconds, self.in_greenlet)
        if token is None:  # another process is computing it: wait for its entry
            deadline = time.monotonic() + lock_seconds
            while time.monotonic() < deadline:
                self._sleep(_POLL_SECONDS)
                if self._serve_current(versions):
                    return True
            return self._fill(versions)
        try:
            return self._fill(versions)
        finally:
            self.store.release(lock_key, token, self.in_greenlet)

    def _sleep(self, seconds: float) -> None:
        if self.in_greenlet:
            await_only(asyncio.sleep(seconds))
        else:
            time.sleep(seconds)

    def _fill(self, versions: dict[str, str]) -> bool:
        """Run the statement, hand its rows to SQLAlchemy and store them."""
        context, cursor = self.context, self.cursor
        context.dialect.do_execute(cursor, self.statement, self.parameters, context)
        count(self.namespace, "misses")
        if cursor.description is None:
            return True
        description = [tuple(column) for column in cursor.description]
        rows = cursor.fetchall()
        context.cursor_fetch_strategy = FullyBufferedCursorFetchStrategy(
            cursor, description, rows)
        try:
            payload = dumps({"v": versions, "d": [[encode(i) for i in c] for c in description],
                             "r": [[encode(value) for value in row] for row in rows]})
        except EncodeError as error:
            logger.debug("sqlaopt cache: not storing a result holding %s", error)
            return True
        if len(payload) <= MAX_ENTRY_BYTES and self.store.write(
                self.key, payload, self.ttl, self.in_greenlet):
            count(self.namespace, "stores")
        return True
