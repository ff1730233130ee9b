"""Booking races: many threads (and processes) book overlapping slots of one barber at once.

Kept free of pytest imports: spawned worker processes import this module to run
:func:`book_from_process`.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, create_engine, select
from sqlalchemy.orm import Session

from sqlaopt.booking import BookingConflict, book_appointment
from sqlaopt.booking.models import Appointment

T0 = dt.datetime(2025, 9, 29, 10, 0)
BARBER, OTHER_BARBER, CLIENT, HAIRCUT = 1, 2, 1, 1  # HAIRCUT lasts 30 minutes
ACTIVE = ("confirmed", "pending")


@dataclass(frozen=True)
class Deployment:
    """How to reach the booking tables: a URL plus engine options, picklable for workers."""

    name: str
    url: str
    connect_args: dict[str, Any] = field(default_factory=dict)
    execution_options: dict[Any, Any] = field(default_factory=dict)
    isolation_level: str | None = None

    def engine(self) -> Engine:
        extra: dict[str, Any] = {}
        if self.isolation_level:
            extra["isolation_level"] = self.isolation_level
        engine = create_engine(self.url, connect_args=self.connect_args, **extra)
        if self.execution_options:
            return engine.execution_options(**self.execution_options)
        return engine


def book_once(engine: Engine, start: dt.datetime) -> str:
    """Book ``start`` for the barber in a transaction of its own: ``booked``, ``conflict`` or
    the repr of any other error."""
    try:
        with Session(engine) as session:
            book_appointment(session, barber_id=BARBER, service_id=HAIRCUT, start=start,
                             client_id=CLIENT)
            session.commit()
        return "booked"
    except BookingConflict:
        return "conflict"
    except Exception as error:
        return repr(error)


def race(engine: Engine, starts: Sequence[dt.datetime]) -> list[str]:
    """Book every start at once from its own thread; each thread's outcome, in order."""
    barrier = threading.Barrier(len(starts))
    outcomes = [""] * len(starts)

    def book(index: int) -> None:
        barrier.wait()
        outcomes[index] = book_once(engine, starts[index])

    threads = [threading.Thread(target=book, args=(i,)) for i in range(len(starts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def warm_up(_: object = None) -> None:
    """Import what a worker needs (this module, the drivers) before any race is timed."""
    import psycopg  # noqa: F401
    import pymysql  # noqa: F401


_engines: dict[str, Engine] = {}  # per worker process, by repr(deployment)


def book_from_process(
    deployment: Deployment, starts: list[dt.datetime], go_at: float, seed: int
) -> list[str]:
    """In a worker process: at wall-clock ``go_at``, book ``starts`` (shuffled) from as many
    threads; return the outcomes."""
    engine = _engines.get(repr(deployment))
    if engine is None:
        engine = _engines[repr(deployment)] = deployment.engine()
    with engine.connect():
        pass  # connect before the start signal, so every worker races from the first booking
    shuffled = list(starts)
    random.Random(seed).shuffle(shuffled)
    time.sleep(max(0.0, go_at - time.time()))
    return race(engine, shuffled)


def active_intervals(engine: Engine, barber: int = BARBER) -> list[tuple[dt.datetime, dt.datetime]]:
    with Session(engine) as session:
        rows = session.execute(
            select(Appointment.start_time, Appointment.end_time)
            .where(Appointment.barber_id == barber, Appointment.status.in_(ACTIVE))
            .order_by(Appointment.start_time)
        ).all()
    return [(r[0], r[1]) for r in rows]


def overlapping_pairs(intervals: Sequence[tuple[dt.datetime, dt.datetime]]) -> int:
    """How many pairs of the intervals overlap (half-open: back to back is fine)."""
    return sum(
        1 for (s1, e1), (s2, e2) in itertools.combinations(intervals, 2) if s1 < e2 and s2 < e1
    )
