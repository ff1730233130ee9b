"""CPU instructions per statement that the detector adds, counted by valgrind (callgrind).

Instruction counts do not depend on what else the machine is doing, so this tells where the
detector's cost goes even on a loaded machine (timings belong to detector_overhead.py). Each
condition runs in its own process; callgrind counts only the workload (collection is switched
on inside one ``functools.reduce`` call that runs it), so sample data, imports and warm-up are
not counted. With ``--warm`` the workload runs once uncounted first, so what a process pays
only once (reading the bytecode of each function on the stack, for the loop's line) is left
out and what every run pays again (a new scope, its detection) is counted: the work that
detector_overhead.py's repetitions time.

A count depends on where objects land in memory: SQLAlchemy's identity map and sqlaopt's
tables are keyed by object ids, and their probe lengths change with the heap layout, by up to
±3 % of a whole lazy load between two layouts. Any change to the code moves the layout, so one
run per condition can show a change that is not there. Each condition therefore runs once per
``--paddings`` value (that many objects allocated first, shifting every later address) and
the mean is reported with the spread.

    uv run python benchmarks/probes/instructions.py --workload statement --repeat 300
    uv run python benchmarks/probes/instructions.py --workload load --repeat 1000
    uv run python benchmarks/probes/instructions.py --workload lazy --conditions log,record
    uv run python benchmarks/probes/instructions.py --workload lazy --conditions log,record --warm
    # other sources (another checkout's src), the same harness:
    PYTHONPATH=/tmp/v01/src uv run --no-sync python benchmarks/probes/instructions.py ...
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

CONDITIONS = ("none", "log", "log10", "record", "test")
HERE = Path(__file__).resolve()


def run_workload(condition: str, workload: str, repeat: int, padding: int,
                 warm: bool = False) -> None:
    import contextlib
    import functools
    import gc

    from sqlalchemy import create_engine, select
    from sqlalchemy.orm import Session, joinedload, selectinload
    from sqlalchemy.pool import StaticPool

    import sqlaopt
    from sqlaopt.booking import SampleSize, build_sample
    from sqlaopt.booking.models import Appointment, Base

    shift = [object() for _ in range(padding)]  # moves every later allocation
    engine = create_engine("sqlite://", poolclass=StaticPool)
    Base.metadata.create_all(engine)
    with Session(engine) as s:
        build_sample(s, SampleSize(organizations=1, barbers=4, clients=50, appointments=max(
            repeat, 300)))

    def scope() -> contextlib.AbstractContextManager[object]:
        if condition == "record":  # as detector_overhead.py: unused eager loads not watched
            return sqlaopt.detect("record", unused_eager=False)
        if condition == "test":  # the defaults of a test under the pytest plugin
            return sqlaopt.detect("record")
        return contextlib.nullcontext()

    if condition == "log":
        sqlaopt.install("log")
    elif condition == "log10":
        sqlaopt.install("log", sample_rate=0.1)
    with Session(engine) as s:  # warm SQLAlchemy's caches outside the counted part
        s.execute(select(Appointment.status).where(Appointment.id == 1)).one()
        for a in s.scalars(select(Appointment).limit(2)).all():
            a.payment  # noqa: B018
    # A cyclic collection that happens to fall inside the counted part traverses every object
    # of the process (the sample data included): millions of instructions that depend on how
    # many objects each condition allocated before, not on the workload. Collect first and
    # count with the collector off, as detector_overhead.py times.
    gc.collect()
    gc.disable()

    def counted(_: object, __: object) -> None:
        with scope(), Session(engine) as s:
            if workload == "statement":
                for i in range(repeat):
                    s.execute(select(Appointment.status).where(Appointment.id == i % 300 + 1)
                              ).one()
            elif workload == "load":  # the rows of one eager statement, nothing lazy
                s.scalars(select(Appointment).options(
                    joinedload(Appointment.client), joinedload(Appointment.service),
                    selectinload(Appointment.payment),
                ).order_by(Appointment.id).limit(repeat)).unique().all()
            else:
                rows = s.scalars(select(Appointment).order_by(Appointment.id).limit(repeat)).all()
                for a in rows:
                    a.payment  # noqa: B018

    if warm:  # once uncounted: what each run pays again (a new scope) is counted, not what
        counted(None, None)  # a process pays once (reading the loop's bytecode)
        gc.collect()
    functools.reduce(counted, [None, None])  # callgrind counts inside this call only
    del shift


def count(condition: str, workload: str, repeat: int, padding: int, warm: bool) -> int:
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
         "--toggle-collect=functools_reduce", sys.executable, str(HERE), "--run", condition,
         "--workload", workload, "--repeat", str(repeat), "--paddings", str(padding),
         *(["--warm"] if warm else [])],
        capture_output=True, text=True, check=True,
        # String hashes decide dict and set layouts, hence instruction counts: fix them.
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    found = re.search(r"Collected : (\d+)", out.stderr)
    assert found, out.stderr[-2000:]
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workload", choices=("statement", "lazy", "load"), default="statement")
    parser.add_argument("--repeat", type=int, default=300)
    parser.add_argument("--conditions", default=",".join(CONDITIONS),
                        help=f"comma-separated, from: {', '.join(CONDITIONS)} (none is always run)")
    parser.add_argument("--paddings", default="0,700,1500,4000",
                        help="heap layouts to average over (objects allocated first)")
    parser.add_argument("--warm", action="store_true",
                        help="run the workload once uncounted first: count what every run "
                        "pays, not what the first run in a process pays once")
    parser.add_argument("--jobs", type=int, default=2, help="valgrind processes at once")
    parser.add_argument("--run", choices=CONDITIONS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    paddings = [int(p) for p in args.paddings.split(",")]
    if args.run:
        run_workload(args.run, args.workload, args.repeat, paddings[0], args.warm)
        return
    conditions = ["none", *(c for c in args.conditions.split(",") if c != "none")]
    unknown = set(conditions) - set(CONDITIONS)
    if unknown:
        parser.error(f"unknown condition(s) {sorted(unknown)}; accepted: {', '.join(CONDITIONS)}")
    runs = [(c, p) for c in conditions for p in paddings]
    with ThreadPoolExecutor(args.jobs) as pool:
        totals = list(pool.map(
            lambda run: count(run[0], args.workload, args.repeat, run[1], args.warm), runs))
    per: dict[str, list[float]] = {}
    for (condition, _), total in zip(runs, totals, strict=True):
        per.setdefault(condition, []).append(total / args.repeat)
    base = statistics.mean(per["none"])
    print(f"{args.workload} workload, instructions per iteration (callgrind), "
          f"{args.repeat} iterations{', warm' if args.warm else ''}, mean over paddings "
          f"{paddings}:")
    for condition, values in per.items():
        mean = statistics.mean(values)
        print(f"  {condition:7} {mean:12,.0f}  +{mean - base:9,.0f}  ratio {mean / base:.3f}"
              f"  (layouts {min(values):,.0f} to {max(values):,.0f})")


if __name__ == "__main__":
    main()
