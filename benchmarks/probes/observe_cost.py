"""What observing a statement costs, split: a no-op engine listener, sqlaopt's hook for a
Session it does not observe, and an observed statement.

2,000 small selects on in-memory SQLite per run, the conditions interleaved, CPU time of this
process with the cyclic collector off; ratios are medians of per-repetition ratios.

    uv run python benchmarks/probes/observe_cost.py
"""

from __future__ import annotations

import gc
import logging
import statistics
import time
from typing import Any

from sqlalchemy import Engine, create_engine, event, select
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

import sqlaopt
from sqlaopt.booking import SampleSize, build_sample
from sqlaopt.booking.models import Appointment, Base

STATEMENTS = 2_000
REPETITIONS = 15


def _noop(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
          executemany: bool) -> tuple[str, Any]:
    return statement, parameters


def main() -> None:
    logging.getLogger("sqlaopt").addHandler(logging.NullHandler())
    logging.getLogger("sqlaopt").propagate = False
    engine = create_engine("sqlite://", poolclass=StaticPool)
    Base.metadata.create_all(engine)
    with Session(engine) as s:
        build_sample(s, SampleSize(organizations=2, barbers=10, clients=200, appointments=1_000))

    def work() -> None:
        with Session(engine) as s:
            for i in range(1, STATEMENTS + 1):
                s.execute(select(Appointment.status).where(Appointment.id == i % 1000 + 1)).one()

    times: dict[str, list[float]] = {
        "none": [], "no-op listener": [], "unobserved Session": [], "observed": []}
    work()
    for _ in range(REPETITIONS):
        for condition in times:
            if condition == "no-op listener":
                event.listen(Engine, "before_cursor_execute", _noop, retval=True)
            elif condition == "unobserved Session":
                sqlaopt.install("log", sample_rate=1e-9)
            gc.collect()
            gc.disable()
            start = time.process_time()
            if condition == "observed":
                with sqlaopt.detect("record", unused_eager=False):
                    work()
            else:
                work()
            times[condition].append(time.process_time() - start)
            gc.enable()
            if condition == "no-op listener":
                event.remove(Engine, "before_cursor_execute", _noop)
            elif condition == "unobserved Session":
                sqlaopt.uninstall()
    base = times["none"]
    for condition, spent in times.items():
        ratio = statistics.median(t / b for t, b in zip(spent, base, strict=True))
        print(f"{condition:20} {statistics.median(spent) / STATEMENTS * 1e6:7.1f} µs a statement"
              f"  ratio {ratio:.3f}")


if __name__ == "__main__":
    main()
