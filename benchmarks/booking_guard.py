"""What making a booking safe costs on PostgreSQL, per booking, measured not assumed.

The two designs the booking issue allowed, each as the statement it adds to the booking
transaction, timed interleaved in one process (the conditions rotate in every repetition;
medians of paired ratios, so drift in machine load cancels out):

* ``round trip``: ``SELECT 1``, the floor of any extra statement;
* ``overlap check``: the check ``book_appointment`` now runs after its lock on every booking
  (on the reference schema with ``--appointments`` generated rows and the report's indexes);
* ``constraint lookup``: the alternative, the exclusion constraint looked up in the
  transaction by the table's OID (``to_regclass`` of the rendered name) on every booking.

Then a whole ``book_appointment`` (median of ``--repetitions`` after 20 to warm up, each
rolled back), with its statements.

    uv run python benchmarks/booking_guard.py --url postgresql+psycopg://postgres@127.0.0.1/sqlaopt_i11
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import statistics
import time
from collections.abc import Callable

from sqlalchemy import Connection, create_engine, select, text
from sqlalchemy.orm import Session

import sqlaopt
from sqlaopt.booking import EXCLUSION_CONSTRAINT, book_appointment, generate
from sqlaopt.booking.models import Appointment, Base
from sqlaopt.booking.optimized import conflict_predicate
from sqlaopt.indexes import REPORT, SUPPLEMENT, create


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="a PostgreSQL database of your own")
    parser.add_argument("--appointments", type=int, default=100_000)
    parser.add_argument("--repetitions", type=int, default=30)
    parser.add_argument("--calls", type=int, default=200, help="calls per condition per repetition")
    args = parser.parse_args()

    engine = create_engine(args.url)
    Base.metadata.drop_all(engine)
    loaded = generate(engine, appointments=args.appointments, progress=False)
    create(engine, REPORT + SUPPLEMENT)
    start = dt.datetime.combine(loaded.last_day + dt.timedelta(days=1), dt.time(10))
    end = start + dt.timedelta(minutes=30)
    check = select(Appointment.id).where(conflict_predicate(1, start, end)).limit(1)
    lookup = text(
        "SELECT 1 FROM pg_constraint WHERE conrelid = to_regclass(:table) "
        "AND contype = 'x' AND conname = :name"
    )
    conditions: dict[str, Callable[[Connection], object]] = {
        "round trip": lambda c: c.execute(text("SELECT 1")).scalar(),
        "overlap check": lambda c: c.execute(check).first(),
        "constraint lookup": lambda c: c.execute(
            lookup, {"table": "appointments", "name": EXCLUSION_CONSTRAINT}
        ).first(),
    }
    per_call: dict[str, list[float]] = {name: [] for name in conditions}
    with engine.connect() as conn:
        names = list(conditions)
        for repetition in range(args.repetitions):
            order = names[repetition % 3 :] + names[: repetition % 3]
            for name in order:
                gc.collect()
                began = time.perf_counter()
                for _ in range(args.calls):
                    conditions[name](conn)
                per_call[name].append((time.perf_counter() - began) / args.calls)
            conn.rollback()
    floor = per_call["round trip"]
    print(f"load average {os.getloadavg()[0]:.2f}; medians over {args.repetitions} repetitions")
    for name, times in per_call.items():
        ratio = statistics.median(t / f for t, f in zip(times, floor, strict=True))
        median = statistics.median(times) * 1e6
        print(f"  {name:<18} {median:7.1f} µs   {ratio:4.2f} × a round trip")

    took = []
    for _ in range(20 + args.repetitions):  # the first 20 warm SQLAlchemy's caches up
        with Session(engine) as session, sqlaopt.count_queries() as queries:
            began = time.perf_counter()
            book_appointment(session, barber_id=1, service_id=1, start=start)
            took.append(time.perf_counter() - began)
            session.rollback()
    booking = statistics.median(took[20:])
    trips = booking / statistics.median(floor)
    print(f"  book_appointment   {booking * 1e6:7.1f} µs   {trips:4.2f} × a round trip; "
          f"{queries.count} statements:")
    for statement in queries.statements:
        print("    " + " ".join(statement.split())[:100])
    Base.metadata.drop_all(engine)
    engine.dispose()


if __name__ == "__main__":
    main()
