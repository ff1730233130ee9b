"""Queries and writes shared by the cache tests (and their worker processes)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, func, select, text
from sqlalchemy.orm import Session

import sqlaopt.cache as cache
from sqlaopt.booking.models import Payment

TTL = 60


def cached(statement: Any, ttl: float = TTL, **options: Any) -> Any:
    return statement.execution_options(sqlaopt_cache=ttl, **options)


TOTAL: Select[tuple[Decimal]] = select(func.coalesce(func.sum(Payment.amount), 0))
"""Revenue: the sum of every payment."""


def total(session: Session, ttl: float | bool = TTL) -> Decimal:
    return Decimal(session.scalar(TOTAL.execution_options(sqlaopt_cache=ttl)))


def payments(session: Session, ttl: float | bool = TTL) -> list[tuple[Any, ...]]:
    """Every payment's columns, as rows (never through the identity map)."""
    query = select(Payment.id, Payment.amount, Payment.status).order_by(Payment.id)
    return [tuple(row) for row in session.execute(query.execution_options(sqlaopt_cache=ttl))]


def add_payment(session: Session, amount: str = "10.00", status: str = "completed") -> Payment:
    payment = Payment(amount=Decimal(amount), status=status)
    session.add(payment)
    session.flush()
    return payment


def text_total(session: Session, ttl: float | bool = TTL) -> Decimal:
    query = text("SELECT coalesce(sum(amount), 0) FROM payments")
    return Decimal(session.scalar(query.execution_options(sqlaopt_cache=ttl,
                                                          sqlaopt_tables=("payments",))))


def counters(namespace: str | None = None) -> tuple[int, ...]:
    """(hits, misses, stores, bypasses, errors, invalidations) since install."""
    s = cache.stats(namespace)
    return s.hits, s.misses, s.stores, s.bypasses, s.errors, s.invalidations


def since(start: tuple[int, ...], namespace: str | None = None) -> tuple[int, ...]:
    """The counters' growth since ``start`` (a :func:`counters` value)."""
    return tuple(now - then for now, then in zip(counters(namespace), start, strict=True))


def same(first: Sequence[Any], second: Sequence[Any]) -> bool:
    return list(first) == list(second)
