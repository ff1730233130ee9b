"""The build lock: concurrent :func:`~sqlaopt.indexes.create` runs on one database take turns.

Deploy pipelines start migrations from several pods at once. Without a lock, each run took the
other's build in progress for an INVALID leftover and dropped it, and ``IF NOT EXISTS`` then
skipped a build that never finished. With it, the second run waits, then finds the first run's
indexes present.

The lock is per table the spec touches, so any two specs that could build the same index
(which lives on one table) queue, while specs on other tables do not wait:

* PostgreSQL: session advisory locks, one per table, keyed by the table's OID (resolved through
  the connection's ``search_path``, as the DDL is), all or none in one attempt, retried from
  Python (see ``_PG_TRY_LOCK`` for why not ``pg_advisory_lock``); released at the end (or when
  the connection closes, if the process dies).
* MySQL/MariaDB: ``GET_LOCK`` on a name made from the database and table, likewise.
* SQLite: the database's write lock, ``BEGIN IMMEDIATE``: check, build and re-check run in that
  one transaction.

``timeout`` bounds the wait (PostgreSQL: the retries, ``GET_LOCK``'s timeout, SQLite's busy
timeout); None waits until the lock is free (SQLite: as long as its busy timeout says).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from sqlalchemy import Connection, Table, text
from sqlalchemy.exc import OperationalError

from ._errors import IndexLockError
from ._render import literal

__all__ = ["BUILD_LOCK_NAMESPACE", "build_lock", "lock_timeout"]

#: High 32 bits of the PostgreSQL advisory lock keys (``"sqli"``); the low 32 are a table OID.
BUILD_LOCK_NAMESPACE = 0x73716C69

# Every statement runs once per create(): sqlaopt's own N+1 detector counts repeats.
_PG_KEYS = text(
    "SELECT DISTINCT (CAST(:namespace AS bigint) << 32) | CAST(CAST(to_regclass(q) AS oid) "
    "AS bigint) AS k FROM unnest(CAST(:tables AS text[])) AS q WHERE to_regclass(q) IS NOT NULL"
)
# All the keys or none, without waiting: a session waiting inside a statement holds a
# snapshot, and another run's CREATE INDEX CONCURRENTLY waits for every older snapshot, which
# deadlocked (measured: 4 concurrent runs, a deadlock in the first trial). So the wait is in
# Python, between attempts. A DO block, not a SELECT: it reads nothing (N+1 detectors count
# repeated reads), and it gives back the keys of a failed attempt itself.
_PG_TRY_LOCK = """DO $sqlaopt$
DECLARE
    key bigint;
    taken bigint[] := '{{}}';
BEGIN
    FOREACH key IN ARRAY ARRAY[{keys}]::bigint[] LOOP
        IF NOT pg_try_advisory_lock(key) THEN
            PERFORM pg_advisory_unlock(k) FROM unnest(taken) AS k;
            RAISE EXCEPTION 'sqlaopt build lock busy' USING ERRCODE = 'lock_not_available';
        END IF;
        taken := taken || key;
    END LOOP;
END
$sqlaopt$"""
_PG_UNLOCK = text("SELECT pg_advisory_unlock(k) FROM unnest(CAST(:keys AS bigint[])) AS k")
_PG_LOCK_NOT_AVAILABLE = "55P03"
_A_YEAR = 365 * 24 * 3600.0


class build_lock:
    """Hold the build lock for ``tables`` on ``conn`` (a connection of the dialect ``key``)
    for the duration of the block; :class:`IndexLockError` if a wait exceeds ``timeout``.

    A class rather than a generator: SQL run from inside ``contextlib`` would be attributed to
    ``contextlib``'s lines by the N+1 detector, and two unrelated runs would count together.
    """

    def __init__(
        self, conn: Connection, key: str, tables: Sequence[Table], timeout: float | None
    ) -> None:
        self.conn, self.key, self.timeout = conn, key, timeout
        self.tables = list(tables)
        self._release: Release | None = None

    def __enter__(self) -> None:
        take = {"postgresql": _postgresql, "sqlite": _sqlite}.get(self.key, _mysql)
        self._release = take(self.conn, self.tables, self.timeout)

    def __exit__(self, exc_type: object, exc: object, traceback: object) -> None:
        release, self._release = self._release, None
        if release is not None:
            release(exc_type is None)


#: Ends the lock; the argument says whether the block succeeded (SQLite commits or rolls back).
Release = Callable[[bool], None]


def _waited_too_long(what: str, timeout: float | None) -> IndexLockError:
    waited = f"waited {timeout:g} s" if timeout is not None else "gave up waiting"
    return IndexLockError(
        f"{waited} for {what}: another session is building indexes on the same tables (a "
        "concurrent sqlaopt indexes create?). Run again when it has finished, or allow a "
        "longer lock timeout."
    )


def _postgresql(
    conn: Connection, tables: Sequence[Table], timeout: float | None
) -> Release:
    preparer = conn.dialect.identifier_preparer
    names = [preparer.format_table(table) for table in tables]
    # A missing table gets no key: its entries fail on their own.
    found = conn.execute(_PG_KEYS, {"namespace": BUILD_LOCK_NAMESPACE, "tables": names})
    keys = sorted(int(k) for k in found.scalars())

    def release(_: bool = True) -> None:
        conn.execute(_PG_UNLOCK, {"keys": keys})

    if keys:
        attempt = _PG_TRY_LOCK.format(keys=", ".join(str(k) for k in keys))
        _poll(lambda: _try(conn, attempt), timeout, "the build lock")
    return release


def _try(conn: Connection, attempt: str) -> bool:
    try:
        conn.exec_driver_sql(attempt)
    except OperationalError as error:
        if getattr(error.orig, "sqlstate", None) == _PG_LOCK_NOT_AVAILABLE:
            return False
        raise
    return True


def _poll(attempt: Callable[[], bool], timeout: float | None, what: str) -> None:
    """Call ``attempt`` until it succeeds, sleeping in between (50 ms, doubling up to 1 s);
    :class:`IndexLockError` once ``timeout`` seconds have passed."""
    deadline = None if timeout is None else time.monotonic() + timeout
    pause = 0.05
    while not attempt():
        if deadline is not None and time.monotonic() >= deadline:
            raise _waited_too_long(what, timeout)
        left = pause if deadline is None else max(0.0, min(pause, deadline - time.monotonic()))
        time.sleep(left)
        pause = min(1.0, pause * 2)


@contextmanager
def lock_timeout(conn: Connection, timeout: float | None) -> Iterator[None]:
    """PostgreSQL: ``lock_timeout`` is ``timeout`` inside the block, what it was outside.

    Only for waits that block others or that nothing else bounds (the build lock, ``ALTER
    TABLE ... ADD CONSTRAINT``); never around ``CREATE INDEX CONCURRENTLY``, whose waits for
    older writers do not block anyone and which, cancelled, leaves an INVALID index.
    """
    if timeout is None:
        yield
        return
    # SET and SHOW, not set_config(): they are not reads, so no N+1 detector counts them.
    previous = str(conn.exec_driver_sql("SHOW lock_timeout").scalar())
    conn.exec_driver_sql(f"SET lock_timeout = '{max(1, round(timeout * 1000))}ms'")
    try:
        yield
    finally:
        conn.exec_driver_sql(f"SET lock_timeout = {literal(previous, conn.dialect)}")


def _mysql(conn: Connection, tables: Sequence[Table], timeout: float | None) -> Release:
    names = sorted({table.name for table in tables})
    # MariaDB's GET_LOCK returns NULL for a negative timeout (MySQL waits forever): a year.
    wait = _A_YEAR if timeout is None else timeout
    # One statement for all: MariaDB evaluates the select list left to right (name order).
    parameters: dict[str, object] = {f"t{i}": name for i, name in enumerate(names)}
    lock = ", ".join(f"GET_LOCK({_mysql_name(i)}, :wait)" for i in range(len(names)))
    unlock = ", ".join(f"RELEASE_LOCK({_mysql_name(i)})" for i in range(len(names)))

    def release(_: bool = True) -> None:
        conn.execute(text(f"SELECT {unlock}"), parameters)  # NULL for a lock not held

    got = conn.execute(text(f"SELECT {lock}"), {**parameters, "wait": wait}).one()
    if any(value != 1 for value in got):
        release()
        raise _waited_too_long("the build lock", timeout)
    return release


def _mysql_name(position: int) -> str:
    # GET_LOCK names are limited to 64 characters: the database and table go through SHA1.
    return f"CONCAT('sqlaopt.indexes:', SHA1(CONCAT(DATABASE(), '.', :t{position})))"


def _sqlite(conn: Connection, tables: Sequence[Table], timeout: float | None) -> Release:
    previous = int(conn.exec_driver_sql("PRAGMA busy_timeout").scalar() or 0)

    def restore() -> None:
        conn.exec_driver_sql(f"PRAGMA busy_timeout = {previous}")

    if timeout is not None:
        conn.exec_driver_sql(f"PRAGMA busy_timeout = {max(0, round(timeout * 1000))}")
    try:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    except OperationalError as error:
        restore()
        if "locked" in str(error.orig):
            raise _waited_too_long("SQLite's write lock", timeout) from None
        raise

    def release(succeeded: bool) -> None:
        conn.exec_driver_sql("COMMIT" if succeeded else "ROLLBACK")
        restore()

    return release
