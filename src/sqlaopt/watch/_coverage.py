"""``compare()``: an existing index spec against a workload and an advice.

Each entry of the spec is created hypothetically on its own, the workload statements on its
table explained, and the entry judged by the statements whose plan uses it (its access
paths):

- ``covered``: each statement it makes ``factor`` times cheaper, the advice makes ``factor``
  times cheaper too (``reason`` names the advised indexes that do it);
- ``missed``: some statement it makes ``factor`` times cheaper, the advice does not;
- ``not proven``: statements use it, but none gets ``factor`` times cheaper with the spec;
- ``unused``: no statement of the workload uses it;
- ``not tried``: HypoPG cannot build it (GiST, exclusion constraints).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

from ..indexes import ExclusionSpec, Spec, ddl
from ..indexes._spec import Entry
from ._advice import Advice
from ._advisor import as_statements, hypothetical_run
from ._format import Tabular, rows_table
from ._tooling import tooling
from ._workload import Workload, WorkloadStatement

__all__ = ["Coverage", "EntryCoverage", "compare"]

CoverageStatus = Literal["covered", "missed", "not proven", "unused", "not tried"]
_CREATE = re.compile(r"CREATE (UNIQUE )?INDEX CONCURRENTLY IF NOT EXISTS (\S+) ON (.*)\Z", re.S)
_STRING = r"'(?:[^']|'')*'"
_IN_LIST = re.compile(rf"\b(\w+) IN \(({_STRING}(?:, {_STRING})*)\)")


@dataclass(frozen=True)
class EntryCoverage:
    """One spec entry: its status (see :func:`compare`), why, and the statements using it."""

    name: str
    status: CoverageStatus
    reason: str
    statements: tuple[str, ...] = ()


@dataclass(frozen=True)
class Coverage(Tabular):
    """The outcome of :func:`compare`, one :class:`EntryCoverage` per spec entry."""

    entries: tuple[EntryCoverage, ...]

    def __getitem__(self, name: str) -> EntryCoverage:
        for entry in self.entries:
            if entry.name == name:
                return entry
        raise KeyError(name)

    def with_status(self, *statuses: str) -> tuple[EntryCoverage, ...]:
        """The entries with one of these statuses."""
        return tuple(e for e in self.entries if e.status in statuses)

    def table(self) -> str:
        """Plain text: entry, status, reason."""
        rows = [(e.name, e.status, e.reason) for e in self.entries]
        return rows_table(("entry", "status", "reason"), rows)



@tooling
def compare(
    bind: Engine | Connection | Session,
    workload: Workload | Iterable[WorkloadStatement],
    spec: Spec | Iterable[Entry],
    advice: Advice,
    *,
    target: object | None = None,
) -> Coverage:
    """Judge each entry of ``spec`` (fitted to ``target``, the reference schema when None)
    against ``workload`` and ``advice`` (which :func:`advise` gave for that workload)."""
    entries = spec if isinstance(spec, Spec) else Spec(spec)
    advised = {s.sql: s for s in advice.statements}
    creatable = _index_ddl(entries, target)
    results = []
    with hypothetical_run(bind, advice.factor) as run:
        kept, _ = run.baseline(as_statements(workload))
        for entry in entries:
            if isinstance(entry, ExclusionSpec) or entry.name not in creatable:
                results.append(EntryCoverage(entry.name, "not tried",
                                             "HypoPG cannot build GiST indexes or constraints"))
                continue
            created = run.hypothetical(creatable[entry.name])
            if isinstance(created, str):
                results.append(EntryCoverage(entry.name, "not tried",
                                             f"HypoPG cannot build it: {created}"))
                continue
            oid, hypothetical_name = created
            try:
                plans = [(s, run.plan(s)) for s in kept]
            finally:
                run.drop(oid)
            users = [(s, p) for s, p in plans if hypothetical_name in p.indexes]
            results.append(_judge(entry.name, users, advised, advice.factor))
    return Coverage(tuple(results))


def _index_ddl(spec: Spec, target: object | None) -> dict[str, str]:
    """{entry name: ``CREATE INDEX ON ...`` for HypoPG} for the spec's indexes."""
    found = {}
    for statement in ddl(spec, "postgresql", target):
        match = _CREATE.match(statement.strip())
        if match:
            body = _IN_LIST.sub(_as_array, match.group(3))
            found[match.group(2)] = f"CREATE {match.group(1) or ''}INDEX ON {body}"
    return found


def _as_array(match: re.Match[str]) -> str:
    """``col IN ('a', 'b')`` as ``(col)::text = ANY ('{"a","b"}'::text[])``.

    HypoPG keeps a partial predicate as parsed: ``IN ('a', 'b')`` stays an ARRAY[...]
    expression, which the planner's implication proof does not match with the query's
    folded ``'{a,b}'::text[]`` constant, so the hypothetical index is never used, while the
    real index is (verified on PostgreSQL 15, HypoPG 1.3.1). An array constant is matched.
    """
    values = [v[1:-1].replace("''", "'") for v in re.findall(_STRING, match.group(2))]
    quoted = ",".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values)
    return f"({match.group(1)})::text = ANY ('{{{quoted}}}'::text[])"


def _judge(name: str, users: list[Any], advised: dict[str, Any], factor: float) -> EntryCoverage:
    texts = tuple(s.entry.text for s, _ in users)
    if not users:
        return EntryCoverage(name, "unused", "no statement of the workload uses it (even as "
                             "the only index added)")
    helped = [(s, p) for s, p in users if p.cost * factor <= s.baseline.cost]
    if not helped:
        best = max(s.baseline.cost / p.cost for s, p in users)
        return EntryCoverage(name, "not proven",
                             f"its statements get at most {best:.1f}x cheaper with it "
                             f"(the advice asks {factor:g}x)", texts)
    missed = [s for s, _ in helped
              if s.entry.sql not in advised or advised[s.entry.sql].cost_after * factor
              > advised[s.entry.sql].cost_before]
    if missed:
        return EntryCoverage(name, "missed", f"{len(missed)} of its statements get "
                             f"{factor:g}x cheaper with it but not with the advice", texts)
    serving = sorted({i for s, _ in helped for i in advised[s.entry.sql].indexes})
    return EntryCoverage(name, "covered", "served by " + (", ".join(serving) or "-"), texts)
