"""Database structure (report section 6) measured on PostgreSQL.

Two schemas of one database get the same generated data and the report's indexes
(``REPORT + SUPPLEMENT``): ``plain`` keeps ``appointments`` as one table, ``part`` migrates it
online into monthly partitions (:data:`sqlaopt.structure.APPOINTMENT_PARTITIONS`). Then, in one
process, with the two conditions interleaved in every round (their order alternating) and a
fresh Session per call:

1. the analytics dashboard served from ``barber_monthly_stats``
   (:func:`sqlaopt.structure.monthly_dashboard`) against the live optimized dashboard, for
   random (barber, month) pairs; the view's create and refresh times;
2. every report flow on the partitioned table against the plain one: p50/p95, the median of
   the per-round ratios, statements per flow, and the partitions each flow's plan reads;
3. the write cost of the maintained ``users`` aggregates (not interleaved: installing them is
   a rebuild), and their rebuild and verify times.

    psql -h 127.0.0.1 -U postgres -c 'CREATE DATABASE sqlaopt_bench_i16'
    uv run python benchmarks/structure.py \\
        --url postgresql+psycopg://postgres@127.0.0.1/sqlaopt_bench_i16 \\
        --appointments 1000000 --markdown benchmarks/results/structure_pg_1m.md
    psql -h 127.0.0.1 -U postgres -c 'DROP DATABASE sqlaopt_bench_i16'

Benchmarks are not tests: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, create_engine, delete, func, insert, select
from sqlalchemy.orm import Session

from sqlaopt._timing import capture_statements, percentile
from sqlaopt.booking import FLOWS, flow_arguments, generate, optimized
from sqlaopt.booking.models import Appointment
from sqlaopt.indexes import REPORT, SUPPLEMENT, create
from sqlaopt.structure import (
    APPOINTMENT_PARTITIONS,
    BARBER_MONTHLY_STATS,
    USER_AGGREGATES,
    monthly_dashboard,
    scanned_partitions,
)

VIEW = BARBER_MONTHLY_STATS


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="a PostgreSQL database of your own; its "
                        "schemas 'plain' and 'part' are dropped and recreated")
    parser.add_argument("--appointments", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=200, help="interleaved rounds per flow")
    parser.add_argument("--pairs", type=int, default=20, help="(barber, month) pairs")
    parser.add_argument("--writes", type=int, default=500, help="inserts for the write cost")
    parser.add_argument("--markdown", help="also write the report to this file")
    parser.add_argument("--keep", action="store_true", help="keep the schemas afterwards")
    return parser.parse_args(argv)


def step(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def load() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def in_schema(url: str, schema: str) -> Engine:
    return create_engine(url, connect_args={"options": f"-csearch_path={schema},public"})


def timed(action: Callable[[], Any]) -> float:
    began = time.perf_counter()
    action()
    return time.perf_counter() - began


def interleaved(calls: dict[str, Callable[[], Any]], rounds: int) -> dict[str, list[float]]:
    """Milliseconds per call, the conditions alternating their order every round."""
    names = list(calls)
    for name in names:  # warm-up: caches, connections, plans
        calls[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for number in range(rounds):
        for name in names if number % 2 == 0 else reversed(names):
            began = time.perf_counter()
            calls[name]()
            times[name].append((time.perf_counter() - began) * 1000)
    return times


def summary(times: dict[str, list[float]], base: str, other: str) -> tuple[str, ...]:
    ratios = [o / b for b, o in zip(times[base], times[other], strict=True)]
    return (
        f"{percentile(times[base], 0.5):.2f}", f"{percentile(times[base], 0.95):.2f}",
        f"{percentile(times[other], 0.5):.2f}", f"{percentile(times[other], 0.95):.2f}",
        f"{statistics.median(ratios):.2f}",
    )


def prepare(args: argparse.Namespace) -> tuple[Engine, Engine, list[str], dt.date]:
    admin = create_engine(args.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS btree_gist SCHEMA public")
        for schema in ("plain", "part"):
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    admin.dispose()
    plain, part = in_schema(args.url, "plain"), in_schema(args.url, "part")
    notes = []
    for name, engine in (("plain", plain), ("part", part)):
        step(f"generate {args.appointments:,} appointments into {name}")
        generated = generate(engine, args.appointments)
        step(f"indexes REPORT + SUPPLEMENT on {name}")
        seconds = timed(lambda engine=engine: create(engine, REPORT + SUPPLEMENT))
        notes.append(f"{name}: generate {generated.seconds:.1f} s, indexes {seconds:.1f} s")
    return plain, part, notes, generated.today


def measure_view(args: argparse.Namespace, plain: Engine) -> list[str]:
    step("materialized view: create, refresh, dashboard")
    lines = [f"Load before: {load()}", ""]
    created = timed(lambda: VIEW.create(plain))
    concurrent = [VIEW.refresh(plain).seconds for _ in range(3)]
    blocking = [VIEW.refresh(plain, concurrently=False).seconds for _ in range(3)]
    with plain.connect() as conn:
        rows = conn.scalar(select(func.count()).select_from(VIEW.table))
        pairs = conn.execute(select(VIEW.table.c.barber_id, VIEW.table.c.month)).all()
    lines += [
        f"`barber_monthly_stats`: {rows:,} rows; create {created:.2f} s; refresh "
        f"CONCURRENTLY {statistics.median(concurrent):.2f} s, plain "
        f"{statistics.median(blocking):.2f} s (median of 3)",
        "",
    ]
    chosen = random.Random(1).sample(pairs, min(args.pairs, len(pairs)))
    times: dict[str, list[float]] = {"live": [], "view": []}
    for barber, month in chosen:
        following = (month + dt.timedelta(days=32)).replace(day=1)

        def live(barber: int = barber, month: dt.date = month,
                 following: dt.date = following) -> Any:
            with Session(plain) as session:
                return optimized.analytics_dashboard(session, barber, month, following)

        def view(barber: int = barber, month: dt.date = month) -> Any:
            with Session(plain) as session:
                return monthly_dashboard(session, barber, month)

        assert live() == view(), (barber, month)
        for name, values in interleaved({"live": live, "view": view},
                                        max(1, args.runs // len(chosen))).items():
            times[name] += values
    lines += [
        "| dashboard | live p50 | live p95 | view p50 | view p95 | view/live (median) |",
        "|---|---|---|---|---|---|",
        f"| {len(chosen)} (barber, month) pairs, {len(times['live'])} rounds | "
        + " | ".join(summary(times, "live", "view")) + " |",
        "",
        f"Load after: {load()}",
    ]
    return lines


def measure_flows(
    args: argparse.Namespace, plain: Engine, part: Engine, today: dt.date
) -> list[str]:
    step("migrate part.appointments to monthly partitions")
    VIEW.drop(plain)  # not needed any more; part never had it
    with Session(plain) as session:
        arguments = flow_arguments(session)
    # The data's own "today": partitions up to three months after it, as in production.
    result = APPOINTMENT_PARTITIONS.migrate(part, drop_foreign_keys=True, batch_size=20_000,
                                            today=today)
    lines = [
        f"Migration: {result.rows:,} rows, {len(result.partitions)} partitions, "
        f"{result.seconds:.1f} s ({result.rows / result.seconds:,.0f} rows/s), checksum "
        "verified; dropped foreign key "
        + ", ".join(result.dropped_foreign_keys), "", f"Load before: {load()}", "",
        "| flow | plain p50 | plain p95 | partitioned p50 | partitioned p95 "
        "| partitioned/plain (median) | statements | partitions read |",
        "|---|---|---|---|---|---|---|---|",
    ]
    total = len(APPOINTMENT_PARTITIONS.partitions(part))
    for flow in FLOWS:
        step(f"flow {flow.name}")
        calls = {
            name: (lambda engine=engine, flow=flow: _run(engine, flow, arguments[flow.name]))
            for name, engine in (("plain", plain), ("part", part))
        }
        counts = {name: _statements(engine, flow, arguments[flow.name])
                  for name, engine in (("plain", plain), ("part", part))}
        times = interleaved(calls, args.runs)
        statements = f"{len(counts['plain'])} / {len(counts['part'])}"
        read = _partitions_read(part, counts["part"])
        lines.append(f"| {flow.title} | " + " | ".join(summary(times, "plain", "part"))
                     + f" | {statements} | {read} of {total} |")
    lines += ["", f"Load after: {load()}", "", "Daily schedule on the partitioned table:", "",
              "```text", *_plan_text(part, arguments["daily_schedule"]), "```"]
    return lines


def _run(engine: Engine, flow: Any, arguments: dict[str, Any]) -> Any:
    with Session(engine) as session:
        return flow.optimized(session, **arguments)


def _statements(engine: Engine, flow: Any, arguments: dict[str, Any]) -> list[Any]:
    with capture_statements(engine) as executed:
        _run(engine, flow, arguments)
    return executed


def _partitions_read(engine: Engine, executed: list[Any]) -> int:
    read: set[str] = set()
    for statement in executed:
        with engine.connect() as conn:
            tables = scanned_partitions(conn, statement.sql, statement.parameters)
        read |= {t for t in tables if t.startswith("appointments")}
    return len(read)


def _plan_text(engine: Engine, arguments: dict[str, Any]) -> list[str]:
    day = arguments["day"]
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "EXPLAIN (COSTS OFF) SELECT id FROM appointments WHERE barber_id = "
            f"{arguments['barber_id']} AND start_time >= '{day}' AND start_time < "
            f"'{day + dt.timedelta(days=1)}'"
        ).scalars().all()
    return [str(r) for r in rows]


def measure_aggregates(args: argparse.Namespace, plain: Engine) -> list[str]:
    step("maintained aggregates: write cost, rebuild, verify")
    without = _write_cost(plain, args.writes)
    installed = timed(lambda: USER_AGGREGATES.install(plain))
    with_triggers = _write_cost(plain, args.writes)
    verified = timed(lambda: USER_AGGREGATES.verify(plain))
    rebuilt = timed(lambda: USER_AGGREGATES.rebuild(plain))
    ok = USER_AGGREGATES.verify(plain).ok
    return [
        f"Load: {load()}", "",
        "| insert + delete of one appointment (own transactions) | p50 ms | p95 ms |",
        "|---|---|---|",
        f"| without triggers | {percentile(without, 0.5):.2f} | {percentile(without, 0.95):.2f} |",
        f"| with `USER_AGGREGATES` | {percentile(with_triggers, 0.5):.2f} | "
        f"{percentile(with_triggers, 0.95):.2f} |",
        "",
        f"install (columns, side tables, triggers, rebuild) {installed:.1f} s; verify "
        f"{verified:.1f} s; rebuild {rebuilt:.1f} s; verify after the writes: "
        f"{'ok' if ok else 'MISMATCH'}",
    ]


def _write_cost(engine: Engine, writes: int) -> list[float]:
    times = []
    start = dt.datetime(2035, 1, 1, 9)
    for number in range(writes):
        began = time.perf_counter()
        with engine.begin() as conn:
            new = conn.execute(insert(Appointment).values(
                barber_id=1 + number % 7, client_id=1 + number % 11, service_name="Cut",
                start_time=start + dt.timedelta(hours=number), end_time=start
                + dt.timedelta(hours=number, minutes=30), duration_minutes=30,
                status="completed", price=Decimal("30.00")).returning(Appointment.id)).scalar()
        with engine.begin() as conn:
            conn.execute(delete(Appointment).where(Appointment.id == new))
        times.append((time.perf_counter() - began) * 1000)
    return times


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    command = "uv run python benchmarks/structure.py " + " ".join(sys.argv[1:])
    plain, part, notes, today = prepare(args)
    sections = [
        f"# Structure benchmark: {args.appointments:,} appointments, PostgreSQL", "",
        f"Command: `{command}`", "", "Setup: " + "; ".join(notes), "",
        "## Materialized view against the live dashboard", "", *measure_view(args, plain), "",
        "## Report flows on the partitioned table against the plain one", "",
        *measure_flows(args, plain, part, today), "",
        "## Maintained aggregates", "", *measure_aggregates(args, plain), "",
    ]
    text = "\n".join(sections)
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as out:
            out.write(text)
    if not args.keep:
        admin = create_engine(args.url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            for schema in ("plain", "part"):
                conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        admin.dispose()


if __name__ == "__main__":
    main()
