"""What the N+1 detector costs: sqlaopt's log, record and test modes against no detector.

"test mode" is ``detect("record")`` with its defaults, as under the pytest plugin: every
finding kind, unused eager loads included (each loaded instance watched); "record" turns
unused eager loads off (the kinds of production).

Three workloads, run in one process with the conditions interleaved in every repetition
(rotating their order), each reported as the median of the per-repetition ratios to
"no detector" (paired, so drift in machine load cancels out). Every timed run starts after a
full collection and runs with the cyclic collector off, so no condition pays for another's
garbage; and each run checks, right after its timed region, that the instances it loaded are
already gone, so they were freed inside it in every condition (a detector that kept them
alive would look cheaper than it is):

(a) load-heavy: 10,000 appointments loaded with client, service and payment eagerly;
(b) lazy-heavy: a loop causing 1,000 lazy loads;
(c) statement-heavy: 5,000 small selects.

    uv run python benchmarks/detector_overhead.py                       # SQLite in memory
    uv run python benchmarks/detector_overhead.py --url postgresql+psycopg://postgres@127.0.0.1/test
    uv run python benchmarks/detector_overhead.py --workloads statement --reps 31   # one only
    uv run python benchmarks/detector_overhead.py --clock cpu     # steadier on a busy machine
    uv run python benchmarks/detector_overhead.py --against 4e5e2d4   # and 0.1, interleaved
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import importlib
import inspect
import logging
import re
import statistics
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from sqlalchemy import Engine, create_engine, select
from sqlalchemy.orm import Session, joinedload, selectinload
from sqlalchemy.pool import StaticPool

import sqlaopt
from sqlaopt.booking import SampleSize, build_sample
from sqlaopt.booking.models import Appointment, Base

Workload = Callable[[Engine], "Sample"]


Sample = list[weakref.ref[Any]]


def load_heavy(engine: Engine) -> Sample:
    with Session(engine) as s:
        rows = s.scalars(select(Appointment).options(
            joinedload(Appointment.client), joinedload(Appointment.service),
            selectinload(Appointment.payment),
        ).limit(10_000)).unique().all()
        assert len(rows) == 10_000
        return [weakref.ref(a) for a in rows[::100]]


def lazy_heavy(engine: Engine) -> Sample:
    with Session(engine) as s:
        rows = s.scalars(select(Appointment).order_by(Appointment.id).limit(1_000)).all()
        for a in rows:
            a.payment  # noqa: B018  (one lazy load per appointment)
        return [weakref.ref(a) for a in rows[::10]]


def statement_heavy(engine: Engine) -> Sample:
    with Session(engine) as s:
        for i in range(1, 5_001):
            s.execute(select(Appointment.status).where(Appointment.id == i)).one()
    return []


WORKLOADS: dict[str, Workload] = {
    "(a) load-heavy: 10,000 rows eagerly": load_heavy,
    "(b) lazy-heavy: 1,000 lazy loads": lazy_heavy,
    "(c) statement-heavy: 5,000 selects": statement_heavy,
}


@contextlib.contextmanager
def no_detector() -> Iterator[None]:
    """SQLAlchemy as an application without any listener has it (``measure`` switches the
    Connection events a previous condition left on off first)."""
    yield


@contextlib.contextmanager
def log_mode(package: Any = sqlaopt) -> Iterator[None]:
    """Production set-up: install("log"), each Session its own scope."""
    package.install("log")
    try:
        yield
    finally:
        package.uninstall()


@contextlib.contextmanager
def record_mode(package: Any = sqlaopt, has_eager_watch: bool = True) -> Iterator[None]:
    """An explicit scope with the kinds of production only (unused eager loads off; 0.1 had no
    such watch, nor the option)."""
    with package.detect("record", **({"unused_eager": False} if has_eager_watch else {})):
        yield


@contextlib.contextmanager
def test_mode() -> Iterator[None]:
    """An explicit record scope as in tests: every kind on, unused eager loads included."""
    with sqlaopt.detect("record"):
        yield


@contextlib.contextmanager
def sampled_log_mode() -> Iterator[None]:
    """Production set-up observing one Session in ten."""
    sqlaopt.install("log", sample_rate=0.1)
    try:
        yield
    finally:
        sqlaopt.uninstall()


CONDITIONS: dict[str, Callable[[], contextlib.AbstractContextManager[Any]]] = {
    "none": no_detector, "sqlaopt log": log_mode, "sqlaopt log 10%": sampled_log_mode,
    "sqlaopt record": record_mode, "sqlaopt test mode": test_mode,
}


def older_conditions(revision: str) -> dict[str, Callable[[], Any]]:
    """The log and record conditions of sqlaopt at git ``revision``, in this process: its
    ``src/sqlaopt`` imported under another package name, so that both versions run interleaved
    in one process (ratios from separate processes differ by a few points on their own)."""
    package = f"sqlaopt_{re.sub(r'[^0-9A-Za-z]', '_', revision)}"
    root = Path(tempfile.mkdtemp(prefix="sqlaopt-older-"))
    archive = subprocess.run(["git", "archive", revision, "src/sqlaopt"], check=True,
                             capture_output=True, cwd=Path(__file__).resolve().parents[1]).stdout
    subprocess.run(["tar", "-x", "-C", str(root)], input=archive, check=True)
    (root / "src" / "sqlaopt").rename(root / package)
    absolute = [str(f) for f in (root / package).rglob("*.py")
                if re.search(r"^\s*(from|import) sqlaopt\b", f.read_text(), re.MULTILINE)]
    if absolute:  # they would import today's modules into the older package
        raise SystemExit(f"--against {revision}: absolute sqlaopt imports in {absolute[:3]}")
    sys.path.insert(0, str(root))
    older: ModuleType = importlib.import_module(package)
    has_eager_watch = "unused_eager" in str(inspect.signature(older.detect))
    return {f"{revision} log": functools.partial(log_mode, older),
            f"{revision} record": functools.partial(record_mode, older, has_eager_watch)}


def prepare(url: str | None) -> Engine:
    engine = create_engine(url) if url else create_engine("sqlite://", poolclass=StaticPool)
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    with Session(engine) as s:
        build_sample(s, SampleSize(organizations=4, barbers=40, clients=2_000,
                                   appointments=10_000))
    return engine


def measure(engine: Engine, conditions: dict[str, Callable[[], Any]], reps: int,
            workloads: dict[str, Workload] = WORKLOADS,
            clock: Callable[[], float] = time.perf_counter,
            outlived: dict[str, int] | None = None) -> dict[str, dict[str, list[float]]]:
    """Seconds per (workload, condition), one list entry per repetition, interleaved.

    ``outlived``: conditions whose sampled instances may outlive the timed region (an older
    version's), counted there instead of failing the run."""
    times: dict[str, dict[str, list[float]]] = {w: {c: [] for c in conditions} for w in workloads}
    names = list(conditions)
    for rep in range(reps):
        order = names[rep % len(names):] + names[:rep % len(names)]
        for workload_name, workload in workloads.items():
            for name in order:
                gc.collect()  # garbage left by the previous run must not be collected in this one
                # A Connection listener, once registered, leaves Engine._has_events set for
                # good (removing it does not reset it) and every Connection then dispatches
                # its events, about 10 µs a lazy load: no condition pays for another's (an
                # older version's hook, the baseline after any of them).
                Engine._has_events = False
                with conditions[name]():
                    gc.disable()
                    try:
                        start = clock()
                        sample = workload(engine)
                        elapsed = clock() - start
                    finally:
                        gc.enable()
                    alive = sum(ref() is not None for ref in sample)
                    if outlived is not None and name in outlived:
                        outlived[name] += alive
                    else:
                        assert not alive, f"{name}: {alive} instances outlived the timed region"
                    times[workload_name][name].append(elapsed)
    return times


def ratio_table(times: dict[str, dict[str, list[float]]], baseline: str = "none") -> str:
    conditions = [c for c in next(iter(times.values())) if c != baseline]
    lines = ["| workload | none (median) | " + " | ".join(f"{c} ratio" for c in conditions) + " |",
             "|---|---|" + "---|" * len(conditions)]
    for workload, by_condition in times.items():
        base = by_condition[baseline]
        cells = [
            f"{statistics.median(t / b for t, b in zip(by_condition[c], base, strict=True)):.3f}"
            for c in conditions
        ]
        lines.append(f"| {workload} | {statistics.median(base) * 1000:.1f} ms | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=None, help="database URL (default: SQLite in memory)")
    parser.add_argument("--reps", type=int, default=15, help="interleaved repetitions")
    parser.add_argument("--workloads", default="load,lazy,statement",
                        help="comma-separated: load, lazy, statement (default: all three)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall-clock time, or this process's CPU time (steadier when other "
                        "jobs share the machine; on PostgreSQL it leaves out the server's work)")
    parser.add_argument("--against", metavar="REVISION", default=None,
                        help="also run sqlaopt at this git revision (log and record), "
                        "interleaved with today's in the same process")
    args = parser.parse_args()
    chosen = {w: f for w, f in WORKLOADS.items()
              if any(f"{name}-heavy" in w for name in args.workloads.split(","))}
    conditions = dict(CONDITIONS)
    older = older_conditions(args.against) if args.against else {}
    conditions.update(older)
    logging.getLogger("sqlaopt").addHandler(logging.NullHandler())  # an older one's too
    logging.getLogger("sqlaopt").propagate = False
    engine = prepare(args.url)
    for workload in chosen.values():  # warm caches and connections
        workload(engine)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    outlived = dict.fromkeys(older, 0)
    times = measure(engine, conditions, args.reps, chosen, clock, outlived)
    print(f"database: {engine.dialect.name}, repetitions: {args.reps}, {args.clock} clock, "
          "ratio = median over repetitions of (condition time / no-detector time)\n")
    print(ratio_table(times))
    for name, count in outlived.items():
        if count:  # it does not pay to free them in its timed region, unlike today's code
            print(f"\n{name}: {count} sampled instances (1 in 10 or 100) outlived the timed "
                  "region, still held when it ended")
    Base.metadata.drop_all(engine)


if __name__ == "__main__":
    main()
