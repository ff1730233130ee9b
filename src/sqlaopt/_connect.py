"""Engines for the command line: every connection attempt gives up within a deadline.

A database host that accepts TCP but never answers (a hung server, a half-open load balancer)
kept ``sqlaopt indexes check`` waiting for more than 90 s: no driver has a default connect
timeout, and some time only the TCP connect (PyMySQL's ``connect_timeout`` does not cover the
server's greeting). So the first connection is made in a helper thread and abandoned after the
deadline; the driver's own connect timeout, where it has one, ends the attempt cleanly too.
"""

from __future__ import annotations

import math
import threading
from typing import Any

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import URL, make_url

from ._errors import SqlaoptError

__all__ = ["DatabaseUnreachable", "connect_within", "timed_engine"]

# The drivers' own connect timeout arguments, applied unless the URL sets one:
# driver -> (argument, whole seconds only, the least the driver waits).
_CONNECT_TIMEOUT: dict[str, tuple[str, bool, float]] = {
    "psycopg": ("connect_timeout", True, 2.0),  # libpq: anything under 2 s is 2 s
    "psycopg2": ("connect_timeout", True, 2.0),
    "pymysql": ("connect_timeout", False, 0.0),  # the TCP connect only, not the greeting
    "mysqldb": ("connect_timeout", True, 1.0),
    "mariadbconnector": ("connect_timeout", True, 1.0),
}
# Past the driver's own timeout, so that its precise message wins when it has one.
_GRACE = 1.0


class DatabaseUnreachable(SqlaoptError):
    """No connection to the database within the deadline, or the attempt failed."""


def timed_engine(url: str, *, connect_timeout: float, lock_timeout: float | None = None) -> Engine:
    """An engine for ``url`` with the driver's connect timeout set (SQLite: its busy timeout,
    the lock timeout) unless the URL already sets it."""
    parsed = make_url(url)
    arguments: dict[str, Any] = {}
    driver = parsed.get_driver_name()
    if parsed.get_backend_name() == "sqlite":
        if lock_timeout is not None and "timeout" not in parsed.query:
            arguments["timeout"] = lock_timeout
    elif driver in _CONNECT_TIMEOUT:
        name, whole, _ = _CONNECT_TIMEOUT[driver]
        if name not in parsed.query:
            arguments[name] = max(1, math.ceil(connect_timeout)) if whole else connect_timeout
    return create_engine(parsed, connect_args=arguments)


def connect_within(engine: Engine, seconds: float) -> None:
    """Open (and return to the pool) one connection, or raise :class:`DatabaseUnreachable`
    within about ``seconds``: the driver's own timeout (rounded as the driver does) plus a
    second's grace, so that the driver's message is the one shown when it has a timeout."""
    if engine.dialect.name == "sqlite":
        return  # a local file: nothing to wait for, and pysqlite binds connections to threads
    outcome: list[BaseException | None] = []

    def attempt() -> None:
        try:
            with engine.connect():
                pass
            outcome.append(None)
        except BaseException as error:  # reported in the caller's thread
            outcome.append(error)

    worker = threading.Thread(target=attempt, name="sqlaopt-connect", daemon=True)
    worker.start()
    least = _CONNECT_TIMEOUT.get(engine.url.get_driver_name(), ("", False, 0.0))[2]
    worker.join(max(math.ceil(seconds) if least else seconds, least) + _GRACE)
    where = _where(engine.url)
    if not outcome:
        raise DatabaseUnreachable(
            f"no answer from {where} within {seconds:g} s (connect timeout): the server "
            "accepted no connection or never replied"
        )
    if outcome[0] is not None:
        error = outcome[0]
        cause = str(getattr(error, "orig", None) or error).strip().splitlines()
        raise DatabaseUnreachable(
            f"cannot connect to {where}: {cause[0] if cause else type(error).__name__}"
        ) from error


def _where(url: URL) -> str:
    host = url.host or "localhost"
    port = f":{url.port}" if url.port else ""
    database = f"/{url.database}" if url.database else ""
    return f"{url.get_backend_name()} at {host}{port}{database}"
