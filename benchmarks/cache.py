"""What the query result cache buys and costs, on the report's revenue report and dashboard.

On a fresh reference schema filled by :func:`sqlaopt.booking.generate` (and the report's
indexes plus the supplement, so the uncached flows are the optimized ones):

1. latency of ``revenue_report`` and ``analytics_dashboard`` (each call in a fresh Session),
   optimized and as the report found them (naive): uncached, cache **miss** (its table
   invalidated just before) and cache **hit**, the three interleaved, for the in-process and
   the Redis backend, cached two ways: ``@sqlaopt.cache.cached`` on the flow function, and
   ``sqlaopt_cache`` on every statement of an engine (optimized flows only);
2. a 95/5 read/write mix: 95 % calls of the cached flow, 5 % writes that invalidate it (a
   completed payment for the revenue report, an appointment for the dashboard, each
   committed): read p50/p95, write p50/p95 and the hit ratio;
3. the overhead on **uncached** statements while the cache is installed: small selects and
   small write transactions, conditions interleaved in every repetition (rotating order,
   ``gc.collect()`` first), as ratios to "not installed": of the fastest runs and the median
   of per-repetition ratios, wall-clock and process CPU time (the hooks' work is CPU in this
   process).

::

    psql -h 127.0.0.1 -U postgres -c 'CREATE DATABASE sqlaopt_i15'
    uv run python benchmarks/cache.py \\
        --url postgresql+psycopg://postgres@127.0.0.1/sqlaopt_i15 --appointments 1000000 \\
        --markdown benchmarks/results/cache_pg_1m.md
    psql -h 127.0.0.1 -U postgres -c 'DROP DATABASE sqlaopt_i15'

The reference tables at ``--url`` are dropped, recreated and dropped again; Redis keys live
under a namespace of this run and are deleted at the end. Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import os
import random
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, create_engine, insert, select
from sqlalchemy.orm import Session, sessionmaker

import sqlaopt.cache as cache
from report_targets import machine_facts  # benchmarks/ is on sys.path when run as a script
from sqlaopt import indexes
from sqlaopt._timing import percentile
from sqlaopt.booking import flow_arguments, generate, naive, optimized
from sqlaopt.booking.models import Appointment, Base, Payment

INVALIDATES = {"revenue_report": "payments", "analytics_dashboard": "appointments"}
TTL = 600


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="database URL (its reference tables are "
                        "dropped and recreated)")
    parser.add_argument("--appointments", type=int, default=1_000_000, metavar="N")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="Redis URL")
    parser.add_argument("--runs", type=int, default=200, help="timed calls per cell (200)")
    parser.add_argument("--mix", type=int, default=1000, help="operations per mix (1000)")
    parser.add_argument("--reps", type=int, default=40, help="overhead repetitions (40)")
    parser.add_argument("--markdown", default=None, help="also write the section here")
    parser.add_argument("--skip-generate", action="store_true",
                        help="reuse the data already at --url (and keep it)")
    parser.add_argument("--only", choices=("latency", "overhead"), default=None,
                        help="run one part only")
    return parser.parse_args(argv)


# ----------------------------------------------------------------------------- set-ups


@contextlib.contextmanager
def installed(backend: str | None, namespace: str) -> Iterator[None]:
    """The cache on ``backend`` (None: in-process) for the block, emptied afterwards."""
    cache.install(backend, namespace=namespace)
    try:
        yield
    finally:
        cache.clear()
        cache.uninstall()


@contextlib.contextmanager
def not_installed() -> Iterator[None]:
    """SQLAlchemy as an application without the cache has it: no Connection events. Any
    Connection listener, once registered, leaves ``Engine._has_events`` set for good and every
    Connection then dispatches its events on every statement; the cache registered some until
    2026-12-02, and a baseline run after it paid for them (docs/benchmarks.md section 5)."""
    Engine._has_events = False
    yield


def flow_call(engine: Engine, name: str, arguments: dict[str, Any], mode: str,
              version: str = "optimized") -> Callable[[], Any]:
    """One call of the flow (``optimized`` or ``naive``) in a fresh Session, cached as
    ``mode`` says: ``none``, ``function`` (``@cached``) or ``statement`` (``sqlaopt_cache``
    on every statement of the engine)."""
    function = getattr(optimized if version == "optimized" else naive, name)
    if mode == "function":
        function = cache.cached(TTL)(function)
    bind = engine.execution_options(sqlaopt_cache=TTL) if mode == "statement" else engine
    sessions = sessionmaker(bind)

    def call() -> Any:
        with sessions() as session:
            return function(session, **arguments)

    return call


def invalidating_write(engine: Engine, name: str, arguments: dict[str, Any]
                       ) -> Callable[[], None]:
    """A committed write that changes what the flow reads (inside its date window)."""
    barber = arguments["barber_id"]
    rows = iter(range(10**9))

    def write() -> None:
        n = next(rows)
        with Session(engine) as session:
            if name == "revenue_report":
                session.execute(insert(Payment).values(
                    amount=Decimal("10.00"), status="completed", barber_id=barber,
                    created_at=dt.datetime.combine(arguments["start"], dt.time(12),
                                                   dt.timezone.utc)))
            else:
                start = dt.datetime.combine(arguments["start"], dt.time(6)) + dt.timedelta(
                    minutes=n % 600)
                session.execute(insert(Appointment).values(
                    barber_id=barber, service_name="bench", start_time=start,
                    end_time=start + dt.timedelta(minutes=1), duration_minutes=1,
                    status="completed", price=Decimal("10.00")))
            session.commit()

    return write


def p50_p95(latencies: list[float]) -> str:
    return f"{percentile(latencies, 0.5):.2f} / {percentile(latencies, 0.95):.2f}"


def interleaved(plain: Callable[[], Any], call: Callable[[], Any], table: str, runs: int
                ) -> tuple[list[float], list[float], list[float]]:
    """Milliseconds of ``runs`` rounds of: the flow uncached, a miss (``table`` invalidated
    just before), a hit; interleaved so that changes in machine load hit all three alike."""
    uncached: list[float] = []
    misses: list[float] = []
    hits: list[float] = []
    for _ in range(runs):
        uncached.append(_ms(plain))
        cache.invalidate(table)
        misses.append(_ms(call))
        hits.append(_ms(call))
    return uncached, misses, hits


def _ms(call: Callable[[], Any]) -> float:
    start = time.perf_counter()
    call()
    return (time.perf_counter() - start) * 1000


# ---------------------------------------------------------------------------- latency


CASES = [  # (title, flow, version, caching modes)
    ("Revenue report", "revenue_report", "optimized", ("function", "statement")),
    ("Analytics dashboard", "analytics_dashboard", "optimized", ("function", "statement")),
    ("Revenue report, naive", "revenue_report", "naive", ("function",)),
    ("Analytics dashboard, naive", "analytics_dashboard", "naive", ("function",)),
]


def latency_rows(engine: Engine, arguments: dict[str, dict[str, Any]], args: argparse.Namespace,
                 backends: dict[str, str | None], run: str) -> list[str]:
    rows = ["| flow | cached as | backend | uncached p50 / p95 ms | miss p50 / p95 ms | "
            "hit p50 / p95 ms | hit speed-up (p50) | 95/5 mix: read p50 / p95 ms | "
            "write p50 / p95 ms | hit ratio |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for title, name, version, modes in CASES:
        flow_args = arguments[name]
        runs = args.runs if version == "optimized" else max(10, args.runs // 10)
        operations = args.mix if version == "optimized" else max(100, args.mix // 5)
        plain = flow_call(engine, name, flow_args, "none", version)
        for mode in modes:
            for label, backend in backends.items():
                with installed(backend, f"{run}-{name}-{version}-{mode}-{label}"):
                    call = flow_call(engine, name, flow_args, mode, version)
                    call()
                    uncached, miss, hit = interleaved(plain, call, INVALIDATES[name], runs)
                    mix = mixed(call, invalidating_write(engine, name, flow_args), operations)
                rows.append(
                    f"| {title} | {mode} | {label} | {p50_p95(uncached)} | {p50_p95(miss)} | "
                    f"{p50_p95(hit)} | {percentile(uncached, .5) / percentile(hit, .5):,.0f}× "
                    f"| {p50_p95(mix[0])} | {p50_p95(mix[1])} | {mix[2]:.1%} |")
                print(rows[-1], flush=True)
    return rows


def mixed(read: Callable[[], Any], write: Callable[[], None], operations: int
          ) -> tuple[list[float], list[float], float]:
    """95 % reads, 5 % invalidating writes, in a fixed random order: read and write
    latencies (ms) and the reads' hit ratio."""
    chooser = random.Random(0)
    reads: list[float] = []
    writes: list[float] = []
    before = cache.stats()
    for _ in range(operations):
        is_write = chooser.random() < 0.05
        start = time.perf_counter()
        write() if is_write else read()
        (writes if is_write else reads).append((time.perf_counter() - start) * 1000)
    after = cache.stats()
    hits, misses = after.hits - before.hits, after.misses - before.misses
    return reads, writes or [0.0], hits / (hits + misses) if hits + misses else 0.0


# --------------------------------------------------------------------------- overhead


SELECTS = 200
TRANSACTIONS = 20


def small_selects(engine: Engine) -> None:
    """Primary-key selects (ORM) in one Session: the per-statement cost dominates."""
    query = select(Appointment).where(Appointment.id == 1000)
    with Session(engine) as session:
        for _ in range(SELECTS):
            session.execute(query).all()
            session.expunge_all()


def small_writes(engine: Engine) -> None:
    """Transactions that each insert a payment and commit (write tracking, and the version
    bump after each commit: a backend round trip)."""
    with Session(engine) as session:
        for _ in range(TRANSACTIONS):
            session.execute(insert(Payment).values(amount=Decimal("1.00"), status="bench"))
            session.commit()


Times = dict[str, dict[str, list[float]]]


def overhead_rows(engine: Engine, backends: dict[str, str | None], reps: int, run: str
                  ) -> list[str]:
    """Each condition's time over "not installed": the ratio of the fastest runs (other jobs
    on the machine only ever add time, so minima are the stablest figure under load) and the
    median of per-repetition ratios, for wall-clock and process CPU time."""
    conditions: dict[str, Callable[[], Any]] = {"not installed": not_installed}
    for label, backend in backends.items():
        conditions[label] = (lambda b=backend, n=label: installed(b, f"{run}-overhead-{n}"))
    workloads = {f"{SELECTS} small selects": small_selects,
                 f"{TRANSACTIONS} write transactions": small_writes}
    wall: Times = {w: {c: [] for c in conditions} for w in workloads}
    cpu: Times = {w: {c: [] for c in conditions} for w in workloads}
    names = list(conditions)
    for workload in workloads.values():
        workload(engine)  # warm-up
    for rep in range(reps):
        order = names[rep % len(names):] + names[:rep % len(names)]
        for workload_name, workload in workloads.items():
            for name in order:
                with conditions[name]():
                    gc.collect()
                    start, start_cpu = time.perf_counter(), time.process_time()
                    workload(engine)
                    wall[workload_name][name].append(time.perf_counter() - start)
                    cpu[workload_name][name].append(time.process_time() - start_cpu)
    rows = ["| workload | not installed (fastest) | "
            + " | ".join(f"{c}: wall, CPU ratio (fastest; median)" for c in names[1:]) + " |",
            "|---|---|" + "---|" * (len(names) - 1)]
    for workload_name in workloads:
        cells = [f"{_ratios(wall[workload_name], c, names[0])}, "
                 f"{_ratios(cpu[workload_name], c, names[0])}" for c in names[1:]]
        rows.append(f"| {workload_name} | {min(wall[workload_name][names[0]]) * 1000:.1f} ms | "
                    + " | ".join(cells) + " |")
    with Session(engine) as session:
        session.execute(Payment.__table__.delete().where(Payment.status == "bench"))
        session.commit()
    return rows


def _ratios(times: dict[str, list[float]], condition: str, baseline: str) -> str:
    fastest = min(times[condition]) / min(times[baseline])
    median = statistics.median(t / b for t, b in zip(times[condition], times[baseline],
                                                      strict=True))
    return f"{fastest:.3f} ({median:.3f})"


# ------------------------------------------------------------------------------- main


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def main(argv: Sequence[str]) -> None:
    args = parse_args(argv)
    engine = create_engine(args.url)
    run = f"bench-{os.getpid()}"
    backends: dict[str, str | None] = {"in-process": None, "Redis": args.redis}
    loads = {"start": load()}
    if not args.skip_generate:
        Base.metadata.drop_all(engine)
        made = generate(engine, appointments=args.appointments, seed=0)
        indexes.create(engine, indexes.REPORT + indexes.SUPPLEMENT)
        data = (f"`generate(appointments={made.appointments:,}, seed=0)`: {made.payments:,} "
                f"payments, {made.barbers} barbers; indexes: REPORT + SUPPLEMENT.")
    else:
        data = "data from an earlier run (`--skip-generate`)."
    with Session(engine) as session:
        arguments = flow_arguments(session)
    loads["after generating"] = load()
    latency = (latency_rows(engine, arguments, args, backends, run)
               if args.only != "overhead" else ["(not run)"])
    loads["after the latencies"] = load()
    overhead = (overhead_rows(engine, backends, args.reps, run)
                if args.only != "latency" else ["(not run)"])
    loads["after the overhead"] = load()
    facts = machine_facts(engine)
    command = "uv run python benchmarks/cache.py " + shlex.join(argv)
    section = "\n".join([
        f"## Query result cache: {facts['Database']}, {args.appointments:,} appointments", "",
        "```", command, "```", "",
        "Machine: " + "; ".join(f"{k} {v}" for k, v in facts.items()) + ".", "",
        "Load average (1 / 5 / 15 min): " + "; ".join(f"{k}: {v}" for k, v in loads.items())
        + ".", "", f"Data: {data}", "",
        f"### Latency ({args.runs} calls per cell, each in a fresh Session; mix: {args.mix} "
        "operations)", "", *latency, "",
        f"### Overhead on uncached statements ({args.reps} interleaved repetitions)", "",
        *overhead, ""])
    print("\n" + section)
    if args.markdown:
        with open(args.markdown, "w") as out:
            out.write(section)
    if not args.skip_generate:
        Base.metadata.drop_all(engine)
    engine.dispose()


if __name__ == "__main__":
    main(sys.argv[1:])
