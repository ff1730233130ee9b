"""One way to get a Connection from whatever a caller passes as ``bind``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

__all__ = ["Bind", "connection_for"]

Bind = Engine | Connection | Session


@contextmanager
def connection_for(bind: Bind) -> Iterator[Connection]:
    """A connection for ``bind``: a new one for an Engine (closed afterwards), the given one
    for a Connection, the Session's own for a Session."""
    if isinstance(bind, Engine):
        with bind.connect() as conn:
            yield conn
    elif isinstance(bind, Connection):
        yield bind
    elif isinstance(bind, Session):
        yield bind.connection()
    else:
        raise TypeError(f"bind must be an Engine, Connection or Session, not {bind!r}")
