"""Per-statement cost of the candidate SQLAlchemy hooks (no-op listeners) and of a full stack walk.

    uv run python benchmarks/probes/hook_cost.py

Interleaved repetitions of 2,000 small selects on SQLite in memory; medians.
"""

from __future__ import annotations

import statistics
import sys
import time
from typing import Any

from sqlalchemy import Engine, create_engine, event, select
from sqlalchemy.orm import Session

from sqlaopt.booking import SampleSize, build_sample
from sqlaopt.booking.models import Appointment, Base


def noop(*args: Any, **kwargs: Any) -> None:
    pass


def walk_stack(*args: Any, **kwargs: Any) -> None:
    frame = sys._getframe(1)
    out = []
    while frame is not None:
        out.append((frame.f_code, frame.f_lineno))
        frame = frame.f_back


CONFIGURATIONS: dict[str, list[tuple[Any, str, Any]]] = {
    "none": [],
    "do_orm_execute no-op": [(Session, "do_orm_execute", noop)],
    "before_cursor_execute no-op": [(Engine, "before_cursor_execute", noop)],
    "before_cursor_execute + stack walk": [(Engine, "before_cursor_execute", walk_stack)],
}


def main() -> None:
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as s:
        build_sample(s, SampleSize(appointments=400))

    def work() -> None:
        with Session(engine) as s:
            for i in range(2000):
                s.execute(select(Appointment.status).where(Appointment.id == i % 400 + 1)).all()

    work()
    times: dict[str, list[float]] = {name: [] for name in CONFIGURATIONS}
    for _ in range(15):
        for name, listeners in CONFIGURATIONS.items():
            for target, identifier, fn in listeners:
                event.listen(target, identifier, fn)
            start = time.perf_counter()
            work()
            times[name].append(time.perf_counter() - start)
            for target, identifier, fn in listeners:
                event.remove(target, identifier, fn)
    base = statistics.median(times["none"])
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:38} {median / 2000 * 1e6:6.1f} µs/statement  ratio {median / base:.3f}")


if __name__ == "__main__":
    main()
