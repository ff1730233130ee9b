"""What ``sqlaopt.cache.install()`` adds to each statement that is not cached, in CPU time.

    uv run python benchmarks/probes/cache_hook_cost.py

SQLite in memory, so the statements themselves are as cheap as they get and the hooks' share
is as large as it gets: 2,000 primary-key selects, and 300 transactions of one INSERT and a
COMMIT, with the cache off and installed (in-process backend), interleaved over 25
repetitions with ``gc.collect()`` first. Process CPU time, which other jobs on the machine do
not add to; medians of per-repetition differences (microseconds per statement or
transaction) and ratios.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from decimal import Decimal

from sqlalchemy import create_engine, insert, select
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

import sqlaopt.cache
from sqlaopt.booking import build_sample
from sqlaopt.booking.models import Appointment, Base, Payment

SELECTS, TRANSACTIONS, REPS = 2000, 300, 25


def main() -> None:
    engine = create_engine("sqlite://", poolclass=StaticPool)
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        build_sample(session)
        session.commit()
    query = select(Appointment).where(Appointment.id == 3)

    def selects() -> None:
        with Session(engine) as session:
            for _ in range(SELECTS):
                session.execute(query).all()
                session.expunge_all()

    def writes() -> None:
        with Session(engine) as session:
            for _ in range(TRANSACTIONS):
                session.execute(insert(Payment).values(amount=Decimal("1"), status="probe"))
                session.commit()

    for name, work, units in (("select", selects, SELECTS),
                              ("write transaction", writes, TRANSACTIONS)):
        work()
        off, on = [], []
        for rep in range(REPS):
            first_off = rep % 2 == 0
            for installed in ((False, True) if first_off else (True, False)):
                (on if installed else off).append(_cpu(work, installed) / units * 1e6)
        extra = statistics.median(b - a for a, b in zip(off, on, strict=True))
        ratio = statistics.median(b / a for a, b in zip(off, on, strict=True))
        print(f"{name}: {statistics.median(off):.1f} µs CPU uncached, "
              f"+{extra:.2f} µs with the cache installed (ratio {ratio:.3f})")


def _cpu(work: Callable[[], None], installed: bool) -> float:
    if installed:
        sqlaopt.cache.install()
    try:
        gc.collect()
        start = time.process_time()
        work()
        return time.process_time() - start
    finally:
        if installed:
            sqlaopt.cache.uninstall()


if __name__ == "__main__":
    main()
