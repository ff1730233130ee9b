"""Small helpers shared by the structure modules: transactions, dialects, names, locks."""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

from .._bind import Bind
from ..indexes._spec import MAX_NAME_LENGTH, validate_name
from ._errors import StructureError

__all__ = [
    "LOCK_NAMESPACE",
    "dialect_family",
    "lock_key",
    "name_within_limit",
    "quote",
    "require_postgresql",
    "transaction",
    "utc_now",
    "valid_name",
]

LOCK_NAMESPACE = 0x73747275  # "stru": first key of every advisory lock sqlaopt.structure takes
"""First key of the PostgreSQL advisory locks :mod:`sqlaopt.structure` takes (the second is
a CRC of the object's name), distinct from the booking lock's namespace."""


@contextmanager
def transaction(bind: Bind) -> Iterator[Connection]:
    """A connection inside a transaction: a new one committed at the end for an Engine or an
    idle Connection; the caller's own transaction for a Connection already in one or a
    Session (the caller commits)."""
    if isinstance(bind, Engine):
        with bind.begin() as conn:
            yield conn
    elif isinstance(bind, Connection):
        if bind.in_transaction():
            yield bind
        else:
            with bind.begin():
                yield bind
    elif isinstance(bind, Session):
        yield bind.connection()
    else:
        raise TypeError(f"bind must be an Engine, Connection or Session, not {bind!r}")


def dialect_family(dialect: Dialect) -> str:
    """``postgresql``, ``sqlite`` or ``mysql`` (MySQL and MariaDB behave alike here)."""
    name = dialect.name
    return "mysql" if name in ("mysql", "mariadb") else name


def require_postgresql(conn: Connection, what: str) -> None:
    if conn.dialect.name != "postgresql":
        raise StructureError(
            f"{what} needs PostgreSQL (declarative partitioning, row triggers on partitioned "
            f"tables, exclusion constraints); this connection is {conn.dialect.name}"
        )


def quote(dialect: Dialect, name: str) -> str:
    """``name`` quoted by the dialect's own preparer when it needs quoting."""
    return dialect.identifier_preparer.quote(name)


def valid_name(name: object, what: str) -> str:
    """``name`` if it is a lower-case, unquoted identifier of at most 63 characters."""
    try:
        return validate_name(name, what)
    except ValueError as error:
        raise StructureError(str(error)) from None


def name_within_limit(name: str) -> str:
    """``name``, or its first characters plus a CRC when it is longer than PostgreSQL keeps
    (two long names must not be truncated into the same one)."""
    if len(name) <= MAX_NAME_LENGTH:
        return name
    digest = f"{zlib.crc32(name.encode()):08x}"
    return f"{name[: MAX_NAME_LENGTH - 9]}_{digest}"


def lock_key(name: str) -> int:
    """A stable signed 32-bit key for ``name`` (the second key of an advisory lock)."""
    value = zlib.crc32(name.encode())
    return value - (1 << 32) if value >= 1 << 31 else value


def utc_now() -> dt.datetime:
    """Now in UTC, naive (stored in plain ``DATETIME``/``TIMESTAMP`` columns everywhere)."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
