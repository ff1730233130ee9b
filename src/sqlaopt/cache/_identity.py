"""Which database a connection or handle talks to, as a string fit for a key.

The URL without its password (driver included: entries hold the driver's raw rows), and for
SQLite the absolute file path. An in-memory SQLite database lives in one DBAPI connection, so
its identity is a random id kept with that connection.
"""

from __future__ import annotations

import os
import sys
import uuid
import weakref
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session, scoped_session

__all__ = ["of_connection", "of_handle"]

_MEMORY = "sqlite-memory"
_INFO_KEY = "sqlaopt_cache_database"
_engines: weakref.WeakKeyDictionary[Engine, str] = weakref.WeakKeyDictionary()


def _of_url(url: URL) -> str:
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if database in ("", ":memory:") or url.query.get("mode") == "memory":
            return _MEMORY
        url = url.set(database=os.path.abspath(database))
    return url.render_as_string(hide_password=True)


def _of_engine(engine: Engine) -> str:
    found = _engines.get(engine)
    if found is None:
        found = _engines[engine] = _of_url(engine.url)
    return found


def of_connection(connection: Connection) -> str:
    """The database of a connection that is executing a statement."""
    found = _of_engine(connection.engine)
    if found == _MEMORY:
        info = connection.connection.info
        return f"{_MEMORY}:{info.setdefault(_INFO_KEY, uuid.uuid4().hex)}"
    return found


_memory_engines: weakref.WeakKeyDictionary[Engine, str] = weakref.WeakKeyDictionary()


def of_handle(value: Any) -> str | None:
    """The database behind a Session, Connection or Engine (sync or asyncio); None for any
    other value. An in-memory SQLite engine gets an id of its own."""
    engine = _engine_of(value)
    if engine is None:
        return None
    found = _of_engine(engine)
    if found == _MEMORY:
        found = _memory_engines.setdefault(engine, f"{_MEMORY}-engine:{uuid.uuid4().hex}")
    return found


def _engine_of(value: Any) -> Engine | None:
    value = _sync_side(value)
    if isinstance(value, scoped_session):
        value = value()
    if isinstance(value, Session):
        try:
            value = value.get_bind()
        except Exception:  # a Session bound per mapper has no single bind
            return None
    if isinstance(value, Connection):
        value = value.engine
    return value if isinstance(value, Engine) else None


def _sync_side(value: Any) -> Any:
    """The sync object behind an asyncio handle. ``sqlalchemy.ext.asyncio`` needs greenlet,
    which is not a runtime dependency: when the application never imported it, no value can
    be an asyncio handle."""
    if "sqlalchemy.ext.asyncio" not in sys.modules:
        return value
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

    if isinstance(value, AsyncSession):
        return value.sync_session
    if isinstance(value, AsyncEngine):
        return value.sync_engine
    if isinstance(value, AsyncConnection):
        return value.engine.sync_engine
    return value
