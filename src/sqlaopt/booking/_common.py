"""Small helpers shared by the naive and optimized flows: statuses, money, time conversions."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import BindParameter, ColumnElement, bindparam

from .models import Appointment, Payment

__all__ = [
    "ACTIVE_STATUSES",
    "active_status",
    "as_utc",
    "completed_payment",
    "day_bounds",
    "mean",
    "money",
    "utc_midnight",
]

ACTIVE_STATUSES = ("confirmed", "pending")
"""Appointment statuses that hold a barber's time (the exclusion constraint's ``WHERE``)."""

_CENT = Decimal("0.01")


def active_status() -> ColumnElement[bool]:
    """``appointments.status IN ('confirmed', 'pending')`` with the values inlined.

    Inlined literals (``literal_execute``) keep the statement cacheable while letting
    PostgreSQL match a partial index ``WHERE status IN ('confirmed', 'pending')`` even under a
    generic prepared-statement plan, where ``status = $1`` cannot prove the predicate.
    """
    values: BindParameter[str] = bindparam(
        "active_statuses", ACTIVE_STATUSES, expanding=True, literal_execute=True
    )
    return Appointment.status.in_(values)


def completed_payment() -> ColumnElement[bool]:
    """``payments.status = 'completed'`` with the value inlined, for the same reason as
    :func:`active_status`: under a generic plan with ``status = $1`` PostgreSQL scanned the
    whole table (63 ms) where the inlined literal used the partial index (1.4 ms)."""
    value: BindParameter[str] = bindparam("completed_status", "completed", literal_execute=True)
    return Payment.status == value


def money(value: Any) -> Decimal:
    """A money amount as a ``Decimal`` with two places (``None`` → ``0.00``).

    SQLite returns sums of ``NUMERIC`` as floats; quantizing makes every dialect agree.
    """
    if value is None:
        return Decimal("0.00")
    return Decimal(value).quantize(_CENT, rounding=ROUND_HALF_UP)


def mean(total: Decimal, count: int) -> Decimal | None:
    """``total / count`` to the cent, or None for an empty set (what SQL ``AVG`` returns)."""
    if count == 0:
        return None
    return (total / count).quantize(_CENT, rounding=ROUND_HALF_UP)


def as_utc(value: dt.datetime) -> dt.datetime:
    """An aware UTC datetime; naive values are taken to be UTC already.

    PostgreSQL returns ``timestamptz`` values in the session time zone; SQLite and MySQL return
    them naive (SQLAlchemy stores the wall-clock value), so both sides are normalised here.
    """
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)


def utc_midnight(day: dt.date) -> dt.datetime:
    """Midnight UTC at the start of ``day``, for comparisons with ``timestamptz`` columns."""
    return dt.datetime.combine(day, dt.time(), dt.timezone.utc)


def day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """``[day 00:00, next day 00:00)`` as naive datetimes (appointment times are naive)."""
    start = dt.datetime.combine(day, dt.time())
    return start, start + dt.timedelta(days=1)
