"""The performance report's targets (section 9) measured: every flow naive against optimized.

On a fresh reference schema filled by :func:`sqlaopt.booking.generate`:

1. each flow's **naive** version, timed on the schema without the report's indexes (the
   report's "current" state);
2. :func:`sqlaopt.indexes.create` (the report's corrected indexes and, on PostgreSQL, the
   ``no_double_booking`` exclusion constraint);
3. each flow's **optimized** version: p50/p95/p99 over ``--runs`` runs, statements per flow,
   the indexes its statements use, next to the report's CURRENT and TARGET ranges, and the
   goal "optimized p95 under 10% of TARGET's lower bound";
4. throughput: concurrent clients (threads, one Session each) running the optimized conflict
   check and :func:`sqlaopt.booking.book_appointment` on random barbers and slots for a fixed
   time, against the report's 500+ TPS (SQLite: one client, it serialises writers).

Prints a Markdown section (tables, the command, the machine) and writes it to ``--markdown``;
``--chart`` writes a PNG of naive against optimized p95 per flow (log scale) with matplotlib,
a benchmark-only dependency::

    uv run --with matplotlib python benchmarks/report_targets.py \\
        --url sqlite:////tmp/sqlaopt_bench.db --appointments 100000 \\
        --markdown benchmarks/results/report_targets_sqlite_100k.md \\
        --chart docs/img/report_targets_sqlite_100k.png
    psql -h 127.0.0.1 -U postgres -c 'CREATE DATABASE sqlaopt_bench'
    uv run --with matplotlib python benchmarks/report_targets.py \\
        --url postgresql+psycopg://postgres@127.0.0.1/sqlaopt_bench --appointments 1000000 \\
        --markdown benchmarks/results/report_targets_pg_1m.md \\
        --chart docs/img/report_targets_pg_1m.png
    # the same with the indexes the report leaves out (sqlaopt.indexes.SUPPLEMENT) as well:
    uv run --with matplotlib python benchmarks/report_targets.py \\
        --url postgresql+psycopg://postgres@127.0.0.1/sqlaopt_bench --appointments 100000 \\
        --indexes report+supplement \\
        --markdown benchmarks/results/report_targets_pg_100k_supplement.md \\
        --chart docs/img/report_targets_pg_100k_supplement.png

The reference tables at ``--url`` are dropped, recreated and dropped again at the end.
Benchmarks are not tests: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import random
import shlex
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from sqlaopt import explain, indexes
from sqlaopt._timing import Timing, capture_statements, percentile, time_call
from sqlaopt.booking import (
    FLOWS,
    BookingConflict,
    Flow,
    Generated,
    book_appointment,
    flow_arguments,
    generate,
)
from sqlaopt.booking.models import Base, Service, barber_services

# The report, section 9.1 (performance-report.md), verbatim.
CURRENT_PERFORMANCE = {
    "analytics_dashboard_load": "200-500ms",
    "booking_conflict_check": "100-300ms",
    "daily_schedule_load": "150-400ms",
    "revenue_report_generation": "500-1200ms",
    "user_dashboard_load": "300-800ms",
}
TARGET_PERFORMANCE = {
    "analytics_dashboard_load": "50-150ms",
    "booking_conflict_check": "20-80ms",
    "daily_schedule_load": "30-100ms",
    "revenue_report_generation": "100-300ms",
    "user_dashboard_load": "80-200ms",
}
REPORT_TPS = 500  # section 9.2: "Handle 500+ TPS"
REPORT_P95_MS = 200.0  # section 9.2: "95th percentile under 200ms for all queries"
GOAL_SHARE = 0.10  # optimized p95 under 10% of TARGET's lower bound
SLOW_RUN_SECONDS = 1.0  # only naive runs slower than this may use fewer than --runs runs
INDEX_SETS = {
    "report": ("indexes.REPORT", indexes.REPORT),
    "report+supplement": ("indexes.REPORT + indexes.SUPPLEMENT",
                          indexes.REPORT + indexes.SUPPLEMENT),
}


# --------------------------------------------------------------------------- arguments


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="database URL (its reference tables are "
                        "dropped and recreated)")
    parser.add_argument("--appointments", type=int, required=True, metavar="N")
    parser.add_argument("--runs", type=int, default=200, help="timed runs per flow (200)")
    parser.add_argument("--slow-budget", type=float, default=60.0, metavar="SECONDS",
                        help="time allowed to a naive flow whose run exceeds 1 s (60)")
    parser.add_argument("--clients", default="4,8",
                        help="throughput client counts, comma-separated (4,8; SQLite: 1)")
    parser.add_argument("--duration", type=float, default=10.0, metavar="SECONDS",
                        help="throughput run length per client count (10)")
    parser.add_argument("--max-load", type=float, default=1.0,
                        help="wait for the 1-minute load average to fall to this (1.0)")
    parser.add_argument("--load-wait", type=float, default=180.0, metavar="SECONDS",
                        help="longest wait for --max-load (180)")
    parser.add_argument("--indexes", choices=sorted(INDEX_SETS), default="report",
                        help="what to build before the optimized runs: the report's corrected "
                        "list, or it plus sqlaopt.indexes.SUPPLEMENT (report)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--chart", default=None, metavar="PATH", help="write a PNG chart")
    parser.add_argument("--markdown", default=None, metavar="PATH", help="write the Markdown")
    return parser.parse_args(argv)


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class FlowResult:
    flow: Flow
    naive: Timing
    optimized: Timing
    naive_slow: bool
    """Fewer than --runs naive runs because a run exceeded 1 s."""
    indexes_used: frozenset[str]


@dataclass
class Counts:
    """One throughput client's tally."""

    booked: int = 0
    refused_by_check: int = 0
    refused_by_booking: int = 0
    errors: int = 0
    first_error: str | None = None
    latencies: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class Throughput:
    clients: int
    seconds: float
    counts: Counts

    @property
    def transactions(self) -> int:
        c = self.counts
        return c.booked + c.refused_by_check + c.refused_by_booking

    @property
    def tps(self) -> float:
        return self.transactions / self.seconds


@dataclass
class Run:
    """Everything one invocation measured, for the Markdown and the chart."""

    args: argparse.Namespace
    argv: Sequence[str]
    engine: Engine
    machine: dict[str, str] = field(default_factory=dict)
    loads: dict[str, str] = field(default_factory=dict)
    generated: Generated | None = None
    index_summary: str = ""
    flows: list[FlowResult] = field(default_factory=list)
    throughput: list[Throughput] = field(default_factory=list)


# --------------------------------------------------------------------------- machine


def wait_for_load(run: Run, phase: str) -> None:
    """Wait (up to --load-wait) for the 1-minute load to fall to --max-load; record it."""
    waited = 0.0
    while os.getloadavg()[0] > run.args.max_load and waited < run.args.load_wait:
        time.sleep(10)
        waited += 10
    one, five, fifteen = os.getloadavg()
    note = f"{one:.2f} / {five:.2f} / {fifteen:.2f}"
    if waited:
        reached = ")" if one <= run.args.max_load else "; still above)"
        note += f" (after waiting {waited:.0f} s for the 1-minute load to reach " \
                f"{run.args.max_load}{reached}"
    run.loads[phase] = note


def machine_facts(engine: Engine) -> dict[str, str]:
    return {
        "CPU": f"{os.cpu_count()} cores (nproc), {_cpu_model()}",
        "RAM": f"{_ram_gib():.1f} GiB",
        "OS": platform.platform(),
        "Python": platform.python_version(),
        "SQLAlchemy": sqlalchemy.__version__,
        "Database": _database_version(engine),
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _ram_gib() -> float:
    try:
        with open("/proc/meminfo") as meminfo:
            kib = int(meminfo.readline().split()[1])
        return kib / 1024**2
    except (OSError, ValueError, IndexError):
        return float("nan")


def _database_version(engine: Engine) -> str:
    if engine.dialect.name == "sqlite":
        return f"SQLite {sqlite3.sqlite_version} (file)"
    with engine.connect() as conn:
        version = conn.scalar(text("SHOW server_version")) if engine.dialect.name == \
            "postgresql" else conn.scalar(text("SELECT version()"))
    name = {"postgresql": "PostgreSQL", "mysql": "MySQL/MariaDB"}.get(engine.dialect.name,
                                                                       engine.dialect.name)
    return f"{name} {str(version).split()[0]}, driver {engine.dialect.driver}, local TCP"


# --------------------------------------------------------------------------- latency


def time_flow(run: Run, flow: Flow, arguments: dict[str, Any], *, optimized: bool
              ) -> tuple[Timing, bool]:
    """Time one implementation of ``flow``, each run in a fresh Session; (timing, slow)."""
    implementation = flow.optimized if optimized else flow.naive
    sessions = sessionmaker(run.engine)

    def call() -> None:
        with sessions() as session:
            implementation(session, **arguments)

    started = time.perf_counter()
    call()  # cold run: decides whether this flow is "very slow"
    probe = time.perf_counter() - started
    runs = run.args.runs
    slow = not optimized and probe > SLOW_RUN_SECONDS
    if slow:
        runs = max(5, min(runs, int(run.args.slow_budget / probe)))
    return time_call(call, min_runs=runs, max_runs=runs, budget_seconds=0.0), slow


def indexes_used(run: Run, flow: Flow, arguments: dict[str, Any]) -> frozenset[str]:
    """The index names in the plans of the statements the optimized flow sends."""
    with capture_statements(run.engine) as executed, Session(run.engine) as session:
        flow.optimized(session, **arguments)
    used: set[str] = set()
    for statement in executed:
        used |= explain.explain_executed(run.engine, statement.sql, statement.parameters).indexes
    return frozenset(used)


def measure_flows(run: Run) -> None:
    with Session(run.engine) as session:
        arguments = flow_arguments(session)
    wait_for_load(run, "naive flows")
    naive = {flow.name: time_flow(run, flow, arguments[flow.name], optimized=False)
             for flow in FLOWS}
    started = time.perf_counter()
    created = indexes.create(run.engine, INDEX_SETS[run.args.indexes][1])
    actions: dict[str, int] = {}
    for action in created:
        actions[action.action] = actions.get(action.action, 0) + 1
    run.index_summary = (", ".join(f"{n} {a}" for a, n in sorted(actions.items()))
                         + f" in {time.perf_counter() - started:.1f} s")
    wait_for_load(run, "optimized flows")
    for flow in FLOWS:
        timing, _ = time_flow(run, flow, arguments[flow.name], optimized=True)
        naive_timing, slow = naive[flow.name]
        run.flows.append(FlowResult(flow, naive_timing, timing, slow,
                                    indexes_used(run, flow, arguments[flow.name])))


# --------------------------------------------------------------------------- throughput


@dataclass(frozen=True)
class BookingPlan:
    """What random bookings draw from: (barber, service, minutes) and a range of days."""

    offers: list[tuple[int, int, int]]
    first_day: dt.date
    days: int


def booking_plan(run: Run) -> BookingPlan:
    assert run.generated is not None
    with Session(run.engine) as session:
        offers = [(b, s, m) for b, s, m in session.execute(
            select(barber_services.c.barber_id, Service.id, Service.duration_minutes)
            .join(Service, Service.id == barber_services.c.service_id)
            .order_by(barber_services.c.barber_id, Service.id))]
    # From the data's "today" (confirmed and pending ahead) to 60 empty days after it.
    today = run.generated.today
    return BookingPlan(offers, today, (run.generated.last_day - today).days + 60)


def client_loop(engine: Engine, plan: BookingPlan, deadline: float, seed: int,
                counts: Counts) -> None:
    """One client: check the slot with the optimized flow, book it if free, commit."""
    has_conflict = _flow("has_conflict").optimized
    rng = random.Random(seed)
    with Session(engine) as session:
        while time.perf_counter() < deadline:
            barber, service, minutes = rng.choice(plan.offers)
            day = plan.first_day + dt.timedelta(days=rng.randrange(plan.days))
            start = dt.datetime.combine(day, dt.time(9)) + dt.timedelta(
                minutes=15 * rng.randrange(36))
            began = time.perf_counter()
            try:
                if has_conflict(session, barber, start, start + dt.timedelta(minutes=minutes)):
                    counts.refused_by_check += 1
                else:
                    book_appointment(session, barber_id=barber, service_id=service, start=start)
                    counts.booked += 1
                session.commit()
            except BookingConflict:
                session.rollback()
                counts.refused_by_booking += 1
            except SQLAlchemyError as error:
                session.rollback()
                counts.errors += 1
                counts.first_error = counts.first_error or str(error).splitlines()[0]
                continue
            counts.latencies.append((time.perf_counter() - began) * 1000)


def measure_throughput(run: Run) -> None:
    plan = booking_plan(run)
    if run.engine.dialect.name == "sqlite":
        client_counts = [1]
    else:
        client_counts = [int(c) for c in run.args.clients.split(",")]
    for clients in client_counts:
        wait_for_load(run, f"throughput, {clients} client(s)")
        tallies = [Counts() for _ in range(clients)]
        started = time.perf_counter()
        deadline = started + run.args.duration
        threads = [threading.Thread(target=client_loop,
                                    args=(run.engine, plan, deadline, 1000 * clients + i, c))
                   for i, c in enumerate(tallies)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        run.throughput.append(Throughput(clients, time.perf_counter() - started,
                                         _merge(tallies)))


def _merge(tallies: list[Counts]) -> Counts:
    total = Counts()
    for c in tallies:
        total.booked += c.booked
        total.refused_by_check += c.refused_by_check
        total.refused_by_booking += c.refused_by_booking
        total.errors += c.errors
        total.first_error = total.first_error or c.first_error
        total.latencies.extend(c.latencies)
    return total


# --------------------------------------------------------------------------- Markdown


def parse_range(text: str) -> tuple[float, float]:
    """``'20-80ms'`` -> ``(20.0, 80.0)``."""
    low, high = text.removesuffix("ms").split("-")
    return float(low), float(high)


def goal_ms(flow: Flow) -> float | None:
    """The goal for the optimized p95: 10% of TARGET's lower bound, or None."""
    if flow.report_key is None:
        return None
    return GOAL_SHARE * parse_range(TARGET_PERFORMANCE[flow.report_key])[0]


def _ms(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.2f}" if value < 10 else f"{value:.1f}"


def _triple(t: Timing) -> str:
    return f"{_ms(t.p50)} / {_ms(t.p95)} / {_ms(t.p99)}"


def latency_table(run: Run) -> list[str]:
    rows = [
        "| flow | statements naive → optimized | naive p50 / p95 / p99 ms (runs) | "
        "optimized p50 / p95 / p99 ms (runs) | p95 speed-up | report CURRENT | "
        "report TARGET | goal: optimized p95 < 10% of TARGET low | indexes the optimized "
        "flow uses |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in run.flows:
        flow = r.flow
        naive_runs = f"{r.naive.runs}" + (" ¹" if r.naive_slow else "")
        statements = f"{r.naive.statements} → {r.optimized.statements}"
        if r.optimized.statements != flow.statements:
            statements += f" (declared {flow.statements}!)"
        goal = goal_ms(flow)
        verdict = "–" if goal is None else (
            f"{'**met**' if r.optimized.p95 < goal else '**not met**'} (< {_ms(goal)} ms)")
        current = CURRENT_PERFORMANCE.get(flow.report_key or "", "–")
        target = TARGET_PERFORMANCE.get(flow.report_key or "", "–")
        rows.append(
            f"| {flow.title} | {statements} | {_triple(r.naive)} ({naive_runs}) | "
            f"{_triple(r.optimized)} ({r.optimized.runs}) | "
            f"{r.naive.p95 / r.optimized.p95:,.0f}× | {current} | {target} | {verdict} | "
            f"{', '.join(sorted(r.indexes_used)) or 'none'} |")
    return rows


def throughput_table(run: Run) -> list[str]:
    rows = [
        "| clients | seconds | transactions | TPS | booked | refused by the check | "
        "refused by book_appointment | errors | transaction p50 / p95 ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for t in run.throughput:
        c = t.counts
        lat = (f"{_ms(percentile(c.latencies, 0.5))} / {_ms(percentile(c.latencies, 0.95))}"
               if c.latencies else "–")
        rows.append(f"| {t.clients} | {t.seconds:.1f} | {t.transactions:,} | "
                    f"**{t.tps:,.0f}** | {c.booked:,} | {c.refused_by_check:,} | "
                    f"{c.refused_by_booking:,} | {c.errors:,} | {lat} |")
    return rows


def summary_lines(run: Run) -> list[str]:
    goals = [(r, goal_ms(r.flow)) for r in run.flows]
    timed = [(r, g) for r, g in goals if g is not None]
    met = [r.flow.title for r, g in timed if r.optimized.p95 < g]
    missed = [r.flow.title for r, g in timed if r.optimized.p95 >= g]
    lines = [f"- Goal (optimized p95 < 10% of TARGET's lower bound): met by {len(met)} of "
             f"{len(timed)} timed flows" + (f"; not met: {', '.join(missed)}." if missed else ".")]
    over = [r.flow.title for r in run.flows if r.optimized.p95 >= REPORT_P95_MS]
    lines.append("- Report's \"p95 under 200 ms for all queries\": optimized " +
                 ("all under." if not over else f"over for {', '.join(over)}."))
    drift = [r.flow.title for r in run.flows if r.optimized.statements != r.flow.statements]
    lines.append("- Optimized statements equal the declared constant for every flow."
                 if not drift else f"- Optimized statements differ from the declared "
                 f"constant: {', '.join(drift)}.")
    if run.throughput:
        best = max(run.throughput, key=lambda t: t.tps)
        verdict = "meets" if best.tps >= REPORT_TPS else "does not meet"
        lines.append(f"- Throughput: best {best.tps:,.0f} TPS with {best.clients} client(s); "
                     f"{verdict} the report's {REPORT_TPS}+ TPS.")
    errors = [t.counts.first_error for t in run.throughput if t.counts.first_error]
    if errors:
        lines.append(f"- First throughput error: `{errors[0]}`")
    return lines


def markdown(run: Run) -> str:
    g = run.generated
    assert g is not None
    db = run.machine["Database"].split(",")[0]
    command = "uv run --with matplotlib python " + shlex.join(
        ["benchmarks/report_targets.py", *run.argv])
    out = [
        f"## Report targets: {db}, {g.appointments:,} appointments",
        "",
        "```",
        command,
        "```",
        "",
        "Machine: " + "; ".join(f"{k} {v}" for k, v in run.machine.items()) + ".",
        "",
        "Load average (1 / 5 / 15 min): " + "; ".join(
            f"{phase}: {note}" for phase, note in run.loads.items()) + ".",
        "",
        f"Data: `generate(appointments={g.appointments:,}, seed={run.args.seed})` wrote "
        f"{g.organizations:,} organizations, {g.barbers:,} barbers, {g.clients:,} clients, "
        f"{g.appointments:,} appointments and {g.payments:,} payments ({g.first_day} to "
        f"{g.last_day}) in **{g.seconds:.1f} s** (ANALYZE included).",
        "",
        f"Indexes: naive flows ran without the report's indexes; then "
        f"`sqlaopt.indexes.create(engine, {INDEX_SETS[run.args.indexes][0]})`: "
        f"{run.index_summary}.",
        "",
        "### Latency per flow (each run in a fresh Session)",
        "",
        *latency_table(run),
        "",
    ]
    if any(r.naive_slow for r in run.flows):
        out += [f"¹ fewer than {run.args.runs} runs: one naive run exceeded "
                f"{SLOW_RUN_SECONDS:.0f} s, so the flow had about {run.args.slow_budget:.0f} s "
                "(at least 5 runs).", ""]
    out += [
        f"### Throughput: optimized conflict check + `book_appointment` "
        f"({run.args.duration:.0f} s per client count)",
        "",
        "Each transaction: a random barber, one of their services and a quarter-hour slot "
        "between the data's today and 60 days after its last day; the optimized check, then "
        "`book_appointment` if free, then COMMIT. Threads, one Session each.",
        "",
        *throughput_table(run),
        "",
    ]
    if run.engine.dialect.name == "sqlite":
        out += ["SQLite: one client, since SQLite serialises writers (book_appointment takes "
                "the database write lock).", ""]
    out += ["### Summary", "", *summary_lines(run), ""]
    return "\n".join(out)


# --------------------------------------------------------------------------- chart


def write_chart(run: Run, path: str) -> None:
    """Naive against optimized p95 per flow, log scale, with the report's TARGET and goal."""
    import matplotlib  # type: ignore[import-not-found, unused-ignore]

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # type: ignore[import-not-found, unused-ignore]

    g = run.generated
    assert g is not None
    titles = [r.flow.title.replace(" ", "\n", 1) for r in run.flows]
    positions = range(len(run.flows))
    width = 0.38
    fig, ax = plt.subplots(figsize=(11, 6.5))
    naive = ax.bar([p - width / 2 for p in positions], [r.naive.p95 for r in run.flows],
                   width, label="naive (no spec indexes)", color="#c0504d")
    optimized = ax.bar([p + width / 2 for p in positions], [r.optimized.p95 for r in run.flows],
                       width, label=f"optimized ({INDEX_SETS[run.args.indexes][0]})",
                       color="#4f81bd")
    for bars in (naive, optimized):
        ax.bar_label(bars, labels=[_ms(b.get_height()) for b in bars], fontsize=8, padding=2)
    for p, r in zip(positions, run.flows, strict=True):
        if r.flow.report_key is None:
            continue
        low, _ = parse_range(TARGET_PERFORMANCE[r.flow.report_key])
        ax.hlines(low, p - 0.45, p + 0.45, colors="black", linestyles="--", linewidth=1.2,
                  label="report TARGET, lower bound" if p == 1 else None)
        ax.hlines(GOAL_SHARE * low, p - 0.45, p + 0.45, colors="green", linestyles=":",
                  linewidth=1.6, label="goal: 10% of TARGET lower bound" if p == 1 else None)
    ax.set_yscale("log")
    ax.set_ylabel("p95 latency, ms (log scale)")
    ax.set_xticks(list(positions), titles)
    ax.set_title(f"sqlaopt: the report's flows, naive vs optimized p95 — "
                 f"{run.machine['Database'].split(',')[0]}, {g.appointments:,} appointments")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=4, fontsize=9,
              frameon=False)
    ax.grid(axis="y", which="both", alpha=0.25)
    ax.margins(y=0.15)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# --------------------------------------------------------------------------- main


def _flow(name: str) -> Flow:
    return next(flow for flow in FLOWS if flow.name == name)


def _step(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def execute(run: Run) -> None:
    """Generate, time naive, build indexes, time optimized, measure throughput."""
    _step("dropping and generating")
    Base.metadata.drop_all(run.engine)
    wait_for_load(run, "start")
    run.generated = generate(run.engine, appointments=run.args.appointments,
                             seed=run.args.seed)
    _step(f"generated in {run.generated.seconds:.1f} s; timing flows")
    measure_flows(run)
    _step("throughput")
    measure_throughput(run)


def main(argv: Sequence[str] | None = None,
         out: Callable[[str], None] = print) -> str:
    """Run the benchmark; returns (and prints with ``out``) the Markdown section."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    engine = create_engine(args.url, pool_size=max(5, *_client_numbers(args)))
    run = Run(args, argv, engine, machine=machine_facts(engine))
    try:
        execute(run)
    finally:
        Base.metadata.drop_all(engine)
        engine.dispose()
    text_ = markdown(run)
    out(text_)
    if args.markdown:
        with open(args.markdown, "w") as file:
            file.write(text_)
    if args.chart:
        write_chart(run, args.chart)
    return text_


def _client_numbers(args: argparse.Namespace) -> list[int]:
    return [int(c) for c in args.clients.split(",")]


if __name__ == "__main__":
    main()
