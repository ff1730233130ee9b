"""CPU instructions per statement that the detector adds, counted by valgrind (callgrind).

Instruction counts do not depend on what else the machine is doing, so this tells where the
detector's cost goes even on a loaded machine (timings belong to detector_overhead.py). Each
condition runs in its own process, once with the workload repeated ``--repeat`` times and once
with it not run at all; the difference is the workload's own count.

    uv run python benchmarks/probes/instructions.py --workload statement --repeat 300
    uv run python benchmarks/probes/instructions.py --workload load --repeat 1000
    uv run python benchmarks/probes/instructions.py --workload lazy --conditions log,record
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

CONDITIONS = ("none", "log", "log10", "record", "test")
HERE = Path(__file__).resolve()


def run_workload(condition: str, workload: str, repeat: int) -> None:
    import contextlib
    import gc

    from sqlalchemy import create_engine, select
    from sqlalchemy.orm import Session, joinedload, selectinload
    from sqlalchemy.pool import StaticPool

    import sqlaopt
    from sqlaopt.booking import SampleSize, build_sample
    from sqlaopt.booking.models import Appointment, Base

    engine = create_engine("sqlite://", poolclass=StaticPool)
    Base.metadata.create_all(engine)
    with Session(engine) as s:
        build_sample(s, SampleSize(organizations=2, barbers=10, clients=200, appointments=1_000))
    scope: contextlib.AbstractContextManager[object] = contextlib.nullcontext()
    if condition == "log":
        sqlaopt.install("log")
    elif condition == "log10":
        sqlaopt.install("log", sample_rate=0.1)
    elif condition == "record":  # as detector_overhead.py: unused eager loads not watched
        scope = sqlaopt.detect("record", unused_eager=False)
    elif condition == "test":  # the defaults of a test under the pytest plugin
        scope = sqlaopt.detect("record")
    with Session(engine) as s:  # warm SQLAlchemy's caches outside the counted difference
        s.execute(select(Appointment.status).where(Appointment.id == 1)).one()
        for a in s.scalars(select(Appointment).limit(2)).all():
            a.payment  # noqa: B018
    # A cyclic collection that happens to fall inside the counted part traverses every object
    # of the process (the sample data included): millions of instructions that depend on how
    # many objects each condition allocated before, not on the workload. Collect first and
    # count with the collector off, as detector_overhead.py times.
    gc.collect()
    gc.disable()
    with scope, Session(engine) as s:
        if workload == "statement":
            for i in range(repeat):
                s.execute(select(Appointment.status).where(Appointment.id == i % 1000 + 1)).one()
        elif workload == "load":  # the rows of one eager statement, nothing lazy
            s.scalars(select(Appointment).options(
                joinedload(Appointment.client), joinedload(Appointment.service),
                selectinload(Appointment.payment),
            ).order_by(Appointment.id).limit(repeat)).unique().all()
        else:
            rows = s.scalars(select(Appointment).order_by(Appointment.id).limit(repeat)).all()
            for a in rows:
                a.payment  # noqa: B018


def count(condition: str, workload: str, repeat: int) -> int:
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
         str(HERE), "--run", condition, "--workload", workload, "--repeat", str(repeat)],
        capture_output=True, text=True, check=True,
        # String hashes decide dict and set layouts, hence instruction counts: fix them, so
        # that the two runs of a condition differ only by the workload.
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
    parser.add_argument("--run", choices=CONDITIONS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        run_workload(args.run, args.workload, args.repeat)
        return
    conditions = ["none", *(c for c in args.conditions.split(",") if c != "none")]
    unknown = set(conditions) - set(CONDITIONS)
    if unknown:
        parser.error(f"unknown condition(s) {sorted(unknown)}; accepted: {', '.join(CONDITIONS)}")
    per: dict[str, float] = {}
    for condition in conditions:
        total = count(condition, args.workload, args.repeat)
        base = count(condition, args.workload, 0)
        per[condition] = (total - base) / args.repeat
    print(f"{args.workload} workload, instructions per iteration (callgrind), "
          f"{args.repeat} iterations:")
    for condition, instructions in per.items():
        print(f"  {condition:7} {instructions:12,.0f}  ratio {instructions / per['none']:.3f}")


if __name__ == "__main__":
    main()
