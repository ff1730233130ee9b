"""Automatic batch loading measured: naive code with batching off and on, against the
hand-optimized (preset) version of the same code.

On booking data from :func:`sqlaopt.booking.generate` (``--appointments``, default 12,000,
which makes 1,000 clients):

1. each of the report's naive flows: off, on, and the optimized flow;
2. a synthetic 3-level loop over 1,000 clients (``client.appointments`` ->
   ``appointment.payment`` -> ``payment.barber``): off, on, and two hand-optimized versions,
   all select-IN (the same statements as batching) and the preset style (joins for the
   scalar hops);
3. the cost of batching where it has nothing to batch: 10,000 appointments loaded with eager
   options and no lazy loads (target: at most 1.03 times the time without batching), 5,000
   small selects, and 300 lazy loads of instances loaded one by one (``get()``), which can
   never be batched.

Conditions run interleaved in every repetition (order rotating), with ``gc.collect()`` before
each run; times are medians (p50) and 95th percentiles over repetitions, ratios the median of
per-repetition ratios, so drift in machine load cancels out. Nothing is asserted.

    uv run python benchmarks/batching.py                                   # SQLite in memory
    uv run python benchmarks/batching.py --clock cpu                       # steadier when busy
    uv run python benchmarks/batching.py --url postgresql+psycopg://postgres@127.0.0.1/postgres

With ``--url`` the data goes into a database of its own (``--database``, default
``sqlaopt_batching_bench``), created next to the URL's database and dropped at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import logging
import os
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, joinedload, selectinload
from sqlalchemy.pool import StaticPool

import sqlaopt
from sqlaopt._timing import percentile
from sqlaopt.booking import FLOWS, flow_arguments, generate
from sqlaopt.booking.models import Appointment, Base, Client, Payment

Run = Callable[[Engine], Any]
BENCH_DATABASE = "sqlaopt_batching_bench"  # default name of the server-side database


def batched(run: Run) -> Run:
    def with_batching(engine: Engine) -> Any:
        with sqlaopt.batch():
            return run(engine)
    return with_batching


def in_session(function: Callable[..., Any], arguments: dict[str, Any]) -> Run:
    def call(engine: Engine) -> Any:
        with Session(engine) as session:
            return function(session, **arguments)
    return call


def three_levels(*options: Any) -> Run:
    def loop(engine: Engine) -> int:
        with Session(engine) as session:
            clients = session.scalars(
                select(Client).order_by(Client.id).limit(1_000).options(*options)).all()
            return sum(len(a.payment.barber.name) if a.payment and a.payment.barber else 0
                       for c in clients for a in c.appointments)
    return loop


def load_heavy(engine: Engine) -> int:
    with Session(engine) as session:
        return len(session.scalars(select(Appointment).order_by(Appointment.id).limit(10_000)
                                   .options(joinedload(Appointment.client),
                                            joinedload(Appointment.service),
                                            selectinload(Appointment.payment))).unique().all())


def statement_heavy(engine: Engine) -> None:
    with Session(engine) as session:
        for i in range(1, 5_001):
            session.execute(select(Appointment.status).where(Appointment.id == i)).one()


def singly_loaded(engine: Engine) -> int:
    with Session(engine) as session:
        return sum(1 for i in range(1, 301) if session.get(Payment, i) and
                   session.get(Payment, i).appointment)  # type: ignore[union-attr]


def workloads(engine: Engine) -> dict[str, dict[str, Run]]:
    with Session(engine) as session:
        arguments = flow_arguments(session)
    chosen: dict[str, dict[str, Run]] = {}
    for flow in FLOWS:
        naive = in_session(flow.naive, arguments[flow.name])
        chosen[flow.title] = {"off": naive, "on": batched(naive),
                              "optimized": in_session(flow.optimized, arguments[flow.name])}
    naive_loop = three_levels()
    chosen["3-level loop, 1,000 clients"] = {
        "off": naive_loop, "on": batched(naive_loop),
        "optimized": three_levels(selectinload(Client.appointments).selectinload(
            Appointment.payment).selectinload(Payment.barber)),
        "preset": three_levels(selectinload(Client.appointments).joinedload(
            Appointment.payment).joinedload(Payment.barber)),
    }
    for name, run in (("load-heavy: 10,000 rows eagerly, no lazy loads", load_heavy),
                      ("statement-heavy: 5,000 small selects", statement_heavy),
                      ("300 lazy loads of singly loaded instances", singly_loaded)):
        chosen[name] = {"off": run, "on": batched(run)}
    return chosen


def measure(engine: Engine, chosen: dict[str, dict[str, Run]], reps: int,
            clock: Callable[[], float] = time.perf_counter,
            ) -> tuple[dict[str, dict[str, list[float]]], dict[str, dict[str, int]]]:
    """Seconds per run (one entry per repetition) and statements, per workload and condition."""
    times = {w: {c: [] for c in conditions} for w, conditions in chosen.items()}
    statements: dict[str, dict[str, int]] = {w: {} for w in chosen}
    for workload, conditions in chosen.items():
        for condition, run in conditions.items():  # warm-up, and the statement count
            with sqlaopt.count_queries() as queries:
                run(engine)
            statements[workload][condition] = queries.count
    for rep in range(reps):
        for workload, conditions in chosen.items():
            names = list(conditions)
            for name in names[rep % len(names):] + names[:rep % len(names)]:
                gc.collect()
                start = clock()
                conditions[name](engine)
                times[workload][name].append(clock() - start)
    return times, statements


def ratio(times: dict[str, list[float]], over: str, under: str) -> float:
    return statistics.median(a / b for a, b in zip(times[over], times[under], strict=True))


def table(times: dict[str, dict[str, list[float]]],
          statements: dict[str, dict[str, int]]) -> str:
    lines = ["| workload | condition | statements | p50 | p95 | on / optimized | off / on |",
             "|---|---|---|---|---|---|---|"]
    for workload, by_condition in times.items():
        for condition, samples in by_condition.items():
            versus_optimized = versus_naive = ""
            if condition == "on" and "optimized" in by_condition:
                versus_optimized = f"{ratio(by_condition, 'on', 'optimized'):.2f}"
            if condition == "on":
                versus_naive = f"{ratio(by_condition, 'off', 'on'):.2f}"
            lines.append(
                f"| {workload} | {condition} | {statements[workload][condition]:,} | "
                f"{percentile(samples, 0.5) * 1000:.1f} ms | "
                f"{percentile(samples, 0.95) * 1000:.1f} ms | {versus_optimized} | "
                f"{versus_naive} |")
    return "\n".join(lines)


@contextlib.contextmanager
def database(url: str | None, appointments: int, name: str) -> Iterator[Engine]:
    if url is None:
        engine = create_engine("sqlite://", poolclass=StaticPool)
        generate(engine, appointments=appointments, progress=False)
        yield engine
        engine.dispose()
        return
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        conn.execute(text(f"CREATE DATABASE {name}"))
    engine = create_engine(make_url(url).set(database=name))
    try:
        Base.metadata.create_all(engine)
        generate(engine, appointments=appointments, progress=False)
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=None,
                        help="server URL (default: SQLite in memory); a database of its own "
                             "(--database) is created there and dropped at the end")
    parser.add_argument("--database", default=BENCH_DATABASE,
                        help=f"name of that database (default {BENCH_DATABASE})")
    parser.add_argument("--appointments", type=int, default=12_000,
                        help="generated appointments (default 12,000: 1,000 clients)")
    parser.add_argument("--reps", type=int, default=9, help="interleaved repetitions")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall-clock time, or this process's CPU time (steadier on a busy "
                             "machine; leaves out the database server's work)")
    args = parser.parse_args()
    logging.getLogger("sqlaopt").addHandler(logging.NullHandler())
    logging.getLogger("sqlaopt").propagate = False
    with database(args.url, args.appointments, args.database) as engine:
        with Session(engine) as session:
            clients = session.scalar(select(func.count(Client.id)))
        clock = time.process_time if args.clock == "cpu" else time.perf_counter
        times, statements = measure(engine, workloads(engine), args.reps, clock)
        print(f"database: {engine.dialect.name}, {args.appointments:,} appointments, "
              f"{clients:,} clients, {args.reps} repetitions, {args.clock} clock, "
              "load average before/after: "
              f"{' '.join(f'{x:.2f}' for x in LOAD)} / "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}\n")
        print(table(times, statements))


LOAD = os.getloadavg()

if __name__ == "__main__":
    main()
