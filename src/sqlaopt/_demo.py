"""``sqlaopt demo``: the whole story in a terminal, on a temporary SQLite file by default.

1. generate the reference booking data;
2. one N+1 up close: the detection with its location and fix, the preset that removes it, and
   the same naive code under automatic batch loading;
3. every flow of the performance report, naive, under the detector;
4. the report's index spec (corrected) and its supplement applied and built;
5. naive against optimized: statements, p50/p95 latency and the indexes used;
6. the report's result cache done right: a cached dashboard, invalidated by a booking.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, create_engine, select
from sqlalchemy.orm import Session, sessionmaker

from . import cache, explain, indexes
from ._cli_support import add_database_options
from ._connect import DatabaseUnreachable, connect_within, timed_engine
from ._timing import Timing, capture_statements, time_call
from .batching import batch
from .booking import FLOWS, Flow, book_appointment, flow_arguments, generate, optimized
from .booking.models import Base, barber_services
from .detect import Detection, count_queries, detect

__all__ = ["register", "run"]


def register(commands: Any) -> None:
    """Add the ``demo`` command to the CLI."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "demo", help="the N+1 / preset / index story on a sample database",
        description="Generate booking data, find the report's N+1s, apply the index spec and "
                    "compare naive and optimized flows. Uses a temporary SQLite file unless "
                    "--url is given.",
    )
    parser.add_argument("--appointments", type=int, default=20_000, metavar="N",
                        help="appointments to generate (default 20,000)")
    parser.add_argument("--seed", type=int, default=0, help="data seed (default 0)")
    add_database_options(
        parser, url_required=False,
        url_help="database URL, e.g. postgresql+psycopg://user@host/db (its reference tables "
                 "are dropped and recreated; default: a temporary SQLite file)",
        lock_help="give up waiting for another index build after this long",
    )
    parser.set_defaults(run=run)


class Style:
    """ANSI styling on a terminal, plain text when piped."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def _wrap(self, code: str, text: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.enabled else text

    def bold(self, text: str) -> str:
        return self._wrap("1", text)

    def dim(self, text: str) -> str:
        return self._wrap("2", text)

    def red(self, text: str) -> str:
        return self._wrap("31", text)

    def green(self, text: str) -> str:
        return self._wrap("32", text)

    def yellow(self, text: str) -> str:
        return self._wrap("33", text)


SECTIONS = 6


@dataclass
class Demo:
    engine: Engine
    sessions: sessionmaker[Session]
    style: Style
    out: Callable[[str], None]
    arguments: dict[str, dict[str, Any]]
    lock_timeout: float | None = None

    def heading(self, number: int, title: str) -> None:
        self.out("")
        self.out(self.style.bold(f"[{number}/{SECTIONS}] {title}"))


def run(args: argparse.Namespace) -> int:
    """Run the demo; returns the exit status."""
    if args.appointments < 1:
        print("sqlaopt demo: --appointments must be at least 1", file=sys.stderr)
        return 2
    style = Style(sys.stdout.isatty() and os.environ.get("NO_COLOR") is None)
    started = time.perf_counter()
    try:
        with _database(args.url, args.connect_timeout) as (engine, label):
            print(style.bold("sqlaopt demo") + f"  ·  {label}  ·  "
                  f"{args.appointments:,} appointments")
            demo = Demo(engine, sessionmaker(engine), style, print, {}, args.lock_timeout)
            _generate(demo, args.appointments, args.seed)
            _one_n_plus_one(demo)
            _naive_flows(demo)
            _indexes(demo)
            _compare(demo)
            _cache(demo)
            Base.metadata.drop_all(engine)
    except (DatabaseUnreachable, indexes.IndexLockError) as error:
        print(f"sqlaopt demo: {error}", file=sys.stderr)
        return 3
    print(style.dim(f"\ndone in {time.perf_counter() - started:.1f} s"))
    return 0


@contextmanager
def _database(url: str | None, connect_timeout: float) -> Iterator[tuple[Engine, str]]:
    if url:
        engine = timed_engine(url, connect_timeout=connect_timeout)
        connect_within(engine, connect_timeout)
        Base.metadata.drop_all(engine)
        try:
            yield engine, f"{engine.dialect.name} ({engine.url.render_as_string()})"
        finally:
            engine.dispose()
        return
    with tempfile.TemporaryDirectory(prefix="sqlaopt-demo-") as folder:
        engine = create_engine(f"sqlite:///{os.path.join(folder, 'demo.db')}")
        try:
            yield engine, "SQLite (temporary file)"
        finally:
            engine.dispose()


def _generate(demo: Demo, appointments: int, seed: int) -> None:
    demo.heading(1, "Generating the booking data")
    made = generate(demo.engine, appointments=appointments, seed=seed)
    demo.out(f"  {made.organizations} organizations, {made.barbers} barbers, {made.clients:,} "
             f"clients, {made.appointments:,} appointments, {made.payments:,} payments "
             f"({made.first_day} to {made.last_day}) in {made.seconds:.1f} s")
    with demo.sessions() as session:
        demo.arguments = flow_arguments(session)


def _one_n_plus_one(demo: Demo) -> None:
    demo.heading(2, "One N+1 up close: a barber's daily schedule")
    flow = _flow("daily_schedule")
    arguments = demo.arguments[flow.name]
    demo.out(demo.style.dim(
        "  naive code: load the day's appointments, then read appointment.client and "
        "appointment.payment in a loop"))
    with demo.sessions() as session, detect("record") as report:
        flow.naive(session, **arguments)
    for detection in report.detections:
        _show_detection(demo, detection)
    demo.out(f"  naive: {demo.style.red(str(report.statements))} statements for "
             f"{arguments['day']}'s schedule")
    with demo.sessions() as session, detect("raise") as fixed:
        flow.optimized(session, **arguments)
    demo.out(f"  with sqlaopt.presets.DAILY_SCHEDULE: "
             f"{demo.style.green(str(fixed.statements))} statement, no N+1 "
             "(checked in raise mode)")
    with demo.sessions() as session, batch(), detect("record") as batched:
        flow.naive(session, **arguments)
    still = sum(d.batched for d in batched.detections)
    demo.out(f"  the naive code under sqlaopt.batch(): {demo.style.green(str(batched.statements))}"
             f" statements, 1 + one per relationship ({still} N+1s still reported, batched)")


def _show_detection(demo: Demo, detection: Detection) -> None:
    style = demo.style
    demo.out(f"  {style.yellow('N+1')} {style.bold(detection.target)} "
             f"{detection.kind.replace('_', ' ')}, {detection.count} times")
    demo.out(f"      at  {detection.location}")
    demo.out(f"      fix {style.green(detection.suggestion)}")


def _naive_flows(demo: Demo) -> None:
    demo.heading(3, "The report's flows as written: the detector's findings")
    for flow in FLOWS:
        with demo.sessions() as session, detect("record") as report:
            flow.naive(session, **demo.arguments[flow.name])
        verdict = (demo.style.yellow(f"{len(report.detections)} N+1")
                   if report.detections else demo.style.green("no N+1"))
        demo.out(f"  {demo.style.bold(flow.title)}: {_plural(report.statements, 'statement')}, "
                 f"{verdict}")
        for detection in report.detections:
            demo.out(f"      {detection.target} x{detection.count} at {detection.location}; "
                     f"fix: {detection.suggestion}")


def _indexes(demo: Demo) -> None:
    demo.heading(4, "Applying the report's index spec (corrected) and the supplement its flows "
                    "need")
    result = indexes.create(
        demo.engine, indexes.REPORT + indexes.SUPPLEMENT, lock_timeout=demo.lock_timeout
    )
    by_action: dict[str, list[str]] = {}
    for action in result:
        by_action.setdefault(action.action, []).append(action.name)
    summary = ", ".join(f"{len(names)} {action}" for action, names in sorted(by_action.items()))
    demo.out(f"  {summary} on {result.dialect}")
    for action in result:
        if action.action in ("skipped", "failed", "different"):
            demo.out(demo.style.dim(f"      {action.name}: {action.action}, {action.detail}"))


def _compare(demo: Demo) -> None:
    demo.heading(5, "Naive against optimized")
    rows: list[tuple[str, ...]] = [("flow", "statements", "p50 naive", "p95 naive", "p50 opt",
                                    "p95 opt", "speed-up", "indexes used by the optimized flow")]
    for flow in FLOWS:
        naive = _time(demo, flow.naive, flow, min_runs=3, max_runs=30)
        optimized = _time(demo, flow.optimized, flow, min_runs=10, max_runs=300)
        rows.append((
            flow.title,
            f"{naive.statements} -> {optimized.statements}",
            f"{naive.p50:.2f} ms", f"{naive.p95:.2f} ms",
            f"{optimized.p50:.2f} ms", f"{optimized.p95:.2f} ms",
            f"{naive.p50 / optimized.p50:.1f}x" if optimized.p50 else "-",
            ", ".join(sorted(_indexes_used(demo, flow))) or "-",
        ))
    for line in _table(rows):
        demo.out("  " + line)


def _time(demo: Demo, implementation: Callable[..., Any], flow: Flow, *, min_runs: int,
          max_runs: int) -> Timing:
    arguments = demo.arguments[flow.name]

    def call() -> None:
        with demo.sessions() as session:
            implementation(session, **arguments)

    return time_call(call, min_runs=min_runs, max_runs=max_runs, budget_seconds=1.0)


def _indexes_used(demo: Demo, flow: Flow) -> set[str]:
    with capture_statements(demo.engine) as executed, demo.sessions() as session:
        flow.optimized(session, **demo.arguments[flow.name])
    used: set[str] = set()
    for statement in executed:
        used |= explain.explain_executed(demo.engine, statement.sql, statement.parameters).indexes
    return used


def _cache(demo: Demo) -> None:
    demo.heading(6, "The report's result cache, done right: a cached dashboard, invalidated "
                    "by a booking")
    arguments = demo.arguments["analytics_dashboard"]
    dashboard = cache.cached(600)(optimized.analytics_dashboard)

    def timed_call() -> tuple[Any, float, int]:
        with count_queries() as queries, demo.sessions() as session:
            start = time.perf_counter()
            metrics = dashboard(session, **arguments)
            return metrics, (time.perf_counter() - start) * 1000, queries.count

    cache.install()  # in-process; "redis://..." shares it across workers
    try:
        first, miss_ms, miss_statements = timed_call()
        _, hit_ms, hit_statements = timed_call()
        demo.out(f"  @sqlaopt.cache.cached(600) dashboard: {miss_ms:.2f} ms "
                 f"({_plural(miss_statements, 'statement')}), then "
                 f"{demo.style.green(f'{hit_ms:.3f} ms')} ({_plural(hit_statements, 'statement')},"
                 " served from the cache)")
        booked = _book(demo, arguments["barber_id"], arguments["start"])
        again, again_ms, _ = timed_call()
        demo.out(f"  booked barber {arguments['barber_id']} at {booked:%Y-%m-%d %H:%M} and "
                 f"committed: the commit invalidated "
                 f"{_plural(cache.stats().invalidations, 'table')}")
        demo.out(f"  dashboard again: {again_ms:.2f} ms, {again.total_appointments} "
                 f"appointments (was {first.total_appointments}): "
                 f"{demo.style.green('fresh after the commit')}, never stale")
    finally:
        cache.uninstall()


def _book(demo: Demo, barber_id: int, month: dt.date) -> dt.datetime:
    """Book the barber's first free slot in the dashboard's month; commit."""
    with demo.sessions() as session:
        service_id = session.scalar(select(barber_services.c.service_id)
                                    .where(barber_services.c.barber_id == barber_id).limit(1))
        for offset in range(28):
            slots = optimized.available_slots(session, barber_id, month + dt.timedelta(offset))
            if slots and service_id is not None:
                booked = book_appointment(session, barber_id=barber_id, service_id=service_id,
                                          start=slots[0].start)
                session.commit()
                return booked.start_time
    raise LookupError(f"no free slot for barber {barber_id} in {month:%B %Y}")


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
             for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return [line.rstrip() for line in lines]


def _flow(name: str) -> Flow:
    return next(flow for flow in FLOWS if flow.name == name)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
