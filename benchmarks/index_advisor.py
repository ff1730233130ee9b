"""The index advisor's acceptance run (issue 14): sqlaopt.watch.advise() on the report's flows.

On a fresh reference schema with no secondary indexes, filled by sqlaopt.booking.generate:

1. the naive and the optimized version of every report flow run once; the statements they
   send, with their values, are the workload (sqlaopt.watch.Workload.capture);
2. advise() proposes indexes, each proven with HypoPG hypothetical indexes;
3. the advised indexes are built for real (sqlaopt.indexes.create), and every statement of
   every optimized flow that the advice expects to use one is checked with
   sqlaopt.explain.assert_uses_index: every optimized flow must use an advised index;
4. compare() judges each entry of sqlaopt.indexes.REPORT + SUPPLEMENT against the same
   workload: covered, missed, not proven, unused or not tried (and why);
5. the same with the optimized flows alone (where the status lists are literals: partial
   indexes become possible).

Prints a Markdown section and writes it to --markdown. Needs HypoPG in the database::

    psql -h 127.0.0.1 -U postgres -c 'CREATE DATABASE sqlaopt_advisor'
    uv run python benchmarks/index_advisor.py \\
        --url postgresql+psycopg://postgres@127.0.0.1/sqlaopt_advisor --appointments 100000 \\
        --markdown benchmarks/results/index_advisor_pg_100k.md

The reference tables at --url are dropped, recreated and dropped again at the end. The
tests run the same checks at 20,000 appointments (tests/watch/test_advisor.py).
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session

from sqlaopt import indexes
from sqlaopt.booking import FLOWS, flow_arguments, generate
from sqlaopt.booking.models import Base
from sqlaopt.explain import assert_uses_index, indexes_used
from sqlaopt.watch import Advice, Coverage, Workload, advise, compare


@dataclass(frozen=True)
class Ran:
    """One statement an optimized flow ran: the flow, the SQL the driver got, the statement."""

    flow: str
    sql: str
    element: Any


def run_flows(engine: Engine, kinds: Sequence[str]) -> tuple[Workload, list[Ran]]:
    """Run each flow once per kind (``naive``, ``optimized``); the workload they make, and
    the statements of the optimized ones."""
    with Session(engine) as session:
        arguments = flow_arguments(session)
    ran: list[Ran] = []
    current = [""]

    def record(conn: Any, cursor: Any, sql: str, params: Any, context: Any, many: bool) -> None:
        if current[0]:
            ran.append(Ran(current[0], sql, context.invoked_statement))

    with Workload.capture(engine) as captured:
        event.listen(engine, "before_cursor_execute", record)
        try:
            for flow in FLOWS:
                for kind in kinds:
                    current[0] = flow.name if kind == "optimized" else ""
                    with Session(engine) as session:
                        getattr(flow, kind)(session, **arguments[flow.name])
        finally:
            event.remove(engine, "before_cursor_execute", record)
    return Workload(tuple(captured)), ran


@dataclass(frozen=True)
class Used:
    """What the real plan of one optimized statement uses, against the advice's prediction."""

    flow: str
    statement: str
    index: str
    predicted: bool


def check_flows(engine: Engine, advice: Advice, ran: Sequence[Ran]) -> list[Used]:
    """With the advised indexes built: every statement the advice gives an index uses an
    advised index in its real plan (assert_uses_index), and every optimized flow has one.

    Where two advised indexes cost about the same, the real planner may pick the other one
    than the hypothetical plan did: any advised index counts, and ``predicted`` says which.
    """
    planned = {s.sql: s for s in advice.statements}
    advised = [r.name for r in advice.recommendations]
    found = []
    for statement in ran:
        expected = planned[statement.sql].indexes
        if not expected:
            continue  # a primary-key lookup or a tiny table: nothing to advise
        used = indexes_used(engine, statement.element)
        name = next((n for n in advised if n in used), expected[0])
        assert_uses_index(engine, statement.element, name)
        found.append(Used(statement.flow, planned[statement.sql].text, name, name in expected))
    missing = {flow.name for flow in FLOWS} - {u.flow for u in found}
    assert not missing, f"optimized flows using no advised index: {sorted(missing)}"
    return found


def build(engine: Engine, advice: Advice) -> None:
    """Build the advised indexes for real, then ANALYZE."""
    indexes.create(engine, advice.spec, Base)
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))


def drop(engine: Engine, advice: Advice) -> None:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for recommendation in advice.recommendations:
            conn.execute(text(f"DROP INDEX IF EXISTS {recommendation.name}"))


# --- the run ---------------------------------------------------------------------------------


def _advice_section(title: str, advice: Advice, seconds: float, workload: Workload) -> list[str]:
    lines = [f"### {title}", "",
             f"{len(workload)} distinct statements, {sum(s.calls for s in workload)} "
             f"executions; advise() took {seconds:.1f} s.", "",
             "| index | definition | best cut | cut over its statements | statements | "
             "est. size |", "|---|---|---|---|---|---|"]
    for r in advice.recommendations:
        lines.append(f"| `{r.name}` | `{r.definition}` | {r.best:,.1f}x | "
                     f"{r.improvement:,.1f}x | {len(r.statements)} | "
                     f"{r.size_bytes / 1024 / 1024:,.1f} MB |")
    before = sum(s.cost_before * s.calls for s in advice.statements)
    after = sum(s.cost_after * s.calls for s in advice.statements)
    lines += ["", f"Workload plan cost {before:,.0f} -> {after:,.0f} "
              f"({before / after:,.1f}x). Skipped statements: {len(advice.skipped)}.", ""]
    return lines


def _flows_section(used: Sequence[Used]) -> list[str]:
    lines = ["| optimized flow | statement | advised index in the real plan | as predicted |",
             "|---|---|---|---|"]
    for u in used:
        lines.append(f"| {u.flow} | `{u.statement[:70]}…` | `{u.index}` | "
                     f"{'yes' if u.predicted else 'no'} |")
    return [*lines, ""]


def _coverage_section(coverage: Coverage) -> list[str]:
    lines = ["| REPORT + SUPPLEMENT entry | status | why |", "|---|---|---|"]
    lines += [f"| `{e.name}` | {e.status} | {e.reason} |" for e in coverage.entries]
    return [*lines, ""]


def main(argv: Sequence[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="a PostgreSQL database with HypoPG")
    parser.add_argument("--appointments", type=int, default=100_000)
    parser.add_argument("--markdown", help="also write the Markdown here")
    args = parser.parse_args(argv)
    engine = create_engine(args.url)
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS hypopg"))
    try:
        lines = _run(engine, args.appointments)
    finally:
        Base.metadata.drop_all(engine)
        engine.dispose()
    command = "uv run python benchmarks/index_advisor.py " + shlex.join(
        sys.argv[1:] if argv is None else list(argv))
    lines += ["```console", f"$ {command}", "```", "",
              f"Python {platform.python_version()}, SQLAlchemy {sqlalchemy.__version__}, "
              f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} at the end."]
    document = "\n".join(lines) + "\n"
    print(document)
    if args.markdown:
        with open(args.markdown, "w") as handle:
            handle.write(document)
    return document


def _run(engine: Engine, appointments: int) -> list[str]:
    generated = generate(engine, appointments, progress=False)
    with engine.connect() as conn:
        version = conn.execute(text("SHOW server_version")).scalar()
    lines = [f"## Index advisor at {appointments:,} appointments (PostgreSQL {version})", "",
             f"Generated {generated.appointments:,} appointments and {generated.payments:,} "
             f"payments in {generated.seconds:.1f} s; no secondary indexes.", ""]
    workload, ran = run_flows(engine, ("naive", "optimized"))
    started = time.perf_counter()
    advice = advise(engine, workload)
    lines += _advice_section("Naive and optimized flows as the workload", advice,
                             time.perf_counter() - started, workload)
    started = time.perf_counter()
    coverage = compare(engine, workload, indexes.REPORT + indexes.SUPPLEMENT, advice, target=Base)
    lines += [f"compare() against REPORT + SUPPLEMENT took {time.perf_counter() - started:.1f} s:",
              "", *_coverage_section(coverage)]
    build(engine, advice)
    try:
        used = check_flows(engine, advice, ran)
    finally:
        drop(engine, advice)
    lines += ["Built for real, every optimized flow uses an advised index "
              "(`assert_uses_index` on each statement):", "", *_flows_section(used)]
    optimized, _ = run_flows(engine, ("optimized",))
    started = time.perf_counter()
    alone = advise(engine, optimized)
    lines += _advice_section("Optimized flows alone as the workload", alone,
                             time.perf_counter() - started, optimized)
    return lines


if __name__ == "__main__":
    main()
