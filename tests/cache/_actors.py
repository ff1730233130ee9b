"""A Session driven by commands: the same moves in this process or in a worker process.

Used by the stateful test. Each actor owns one Session on the reference schema and touches
only payments whose id has its parity, so two actors never wait for each other's row locks.
A read runs the query cached and then uncached in the same transaction and returns both.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, create_engine, delete, func, select, text, update
from sqlalchemy.orm import Session, selectinload

import sqlaopt.cache as cache
from sqlaopt.booking.models import Appointment, Payment, User

from ._support import TTL, payments, text_total, total


@cache.cached(TTL)
def revenue_by_status(session: Session) -> dict[str, Decimal]:
    rows = session.execute(select(Payment.status, func.sum(Payment.amount))
                           .group_by(Payment.status))
    return {status: amount for status, amount in rows}


def users_and_payments(session: Session, ttl: float | bool) -> list[Any]:
    session.expire_all()  # else the identity map hides what the rows said
    query = select(User).options(selectinload(User.payments)).order_by(User.id)
    users = session.scalars(query.execution_options(sqlaopt_cache=ttl))
    return [(u.id, sorted((p.id, p.amount, p.status) for p in u.payments)) for u in users]


def paid_appointments(session: Session, ttl: float | bool) -> int:
    query = select(func.count()).select_from(Appointment).join(
        Payment, Payment.appointment_id == Appointment.id)
    return int(session.scalar(query.execution_options(sqlaopt_cache=ttl)) or 0)


def function_call(session: Session, ttl: float | bool) -> dict[str, Decimal]:
    if ttl is False:
        with cache.bypass():
            return revenue_by_status(session)
    return revenue_by_status(session)


QUERIES: dict[str, Callable[[Session, float | bool], Any]] = {
    "total": total,
    "payments": payments,
    "text_total": text_total,
    "users_and_payments": users_and_payments,
    "paid_appointments": paid_appointments,
    "function": function_call,
}


class Actor:
    """One Session and its open savepoints."""

    def __init__(self, engine: Engine, parity: int) -> None:
        self.engine = engine
        self.session = Session(engine)
        self.parity = parity
        self.savepoints: list[Any] = []

    def reset(self) -> None:
        """A new Session, for the next example."""
        self.session.close()
        self.session = Session(self.engine)
        self.savepoints.clear()

    def do(self, command: str, *args: Any) -> Any:
        return getattr(self, command)(*args)

    def read(self, query: str) -> tuple[Any, Any]:
        run = QUERIES[query]
        return run(self.session, TTL), run(self.session, False)

    def insert(self, amount: int) -> None:
        user = self.session.scalar(select(func.min(User.id)))
        self.session.add(Payment(amount=Decimal(amount), status="completed", user_id=user))
        self.session.flush()

    def raise_prices(self) -> None:
        self.session.execute(update(Payment).where(Payment.id % 2 == self.parity)
                             .values(amount=Payment.amount + 1))

    def mark_refunded(self) -> None:
        self.session.execute(text("UPDATE payments SET status = 'refunded' "
                                  "WHERE id % 2 = :parity AND status = 'completed'"),
                             {"parity": self.parity})

    def delete_latest(self) -> None:
        latest = select(func.max(Payment.id)).where(Payment.id % 2 == self.parity)
        self.session.execute(delete(Payment).where(Payment.id == latest.scalar_subquery()))

    def link_appointment(self) -> None:
        payment = self.session.scalar(select(Payment).where(
            Payment.id % 2 == self.parity, Payment.appointment_id.is_(None)).limit(1))
        free = select(Appointment.id).where(~Appointment.id.in_(
            select(Payment.appointment_id).where(Payment.appointment_id.is_not(None))))
        appointment = self.session.scalar(free.where(Appointment.id % 2 == self.parity)
                                          .limit(1))
        if payment is not None and appointment is not None:
            payment.appointment_id = appointment
            self.session.flush()

    def commit(self) -> None:
        self.session.commit()
        self.savepoints.clear()

    def rollback(self) -> None:
        self.session.rollback()
        self.savepoints.clear()

    def savepoint(self) -> None:
        self.savepoints.append(self.session.begin_nested())

    def release(self) -> None:
        if self.savepoints:
            self.savepoints.pop().commit()

    def rollback_savepoint(self) -> None:
        if self.savepoints:
            self.savepoints.pop().rollback()

    def hits(self) -> int:
        return cache.stats().hits

    def close(self) -> None:
        self.session.close()


def serve(url: str, redis_url: str, namespace: str, parity: int,
          pipe: multiprocessing.connection.Connection) -> None:
    """The worker process: install the cache on the shared Redis namespace, then run commands
    until ``close``; exceptions are sent back."""
    engine = create_engine(url, connect_args={"options": "-c lock_timeout=10000"})
    cache.install(redis_url, namespace=namespace)
    actor = Actor(engine, parity)
    while True:
        command, args = pipe.recv()
        try:
            pipe.send(("ok", actor.do(command, *args)))
        except Exception as error:  # reported to the test in the other process
            actor.session.rollback()
            pipe.send(("error", f"{type(error).__name__}: {error}"))
        if command == "close":
            break
    cache.uninstall()
    engine.dispose()


class RemoteActor:
    """An :class:`Actor` in a worker process (multiprocessing spawn: a fresh interpreter)."""

    def __init__(self, url: str, redis_url: str, namespace: str, parity: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipe, theirs = context.Pipe()
        self.process = context.Process(target=serve, args=(url, redis_url, namespace, parity,
                                                           theirs), daemon=True)
        self.process.start()

    def do(self, command: str, *args: Any) -> Any:
        self.pipe.send((command, args))
        if not self.pipe.poll(60):
            raise TimeoutError(f"the worker did not answer {command}")
        status, value = self.pipe.recv()
        if status == "error":
            raise AssertionError(f"worker failed on {command}{args}: {value}")
        return value

    def stop(self) -> None:
        if self.process.is_alive():
            self.do("close")
        self.process.join(30)
