"""``advise()``: indexes for a workload, each proven with HypoPG hypothetical indexes.

1. Every statement is explained (its custom plan when the workload has its values, else the
   generic plan); statements PostgreSQL cannot plan are listed as skipped, with its reason;
   statements that read no application table (catalog reads, ``SELECT 1``) are left out.
2. For each relation a plan reads sequentially, candidates come from its conditions
   (equalities first in predicate order, then an IN list, a range, the sort order, a join
   column, or an expression), see :mod:`._candidates`.
3. Proof, as a greedy set cover: a statement is *served* when its plan costs 1/``factor``
   of its cost without advice. Each round, every candidate is created hypothetically next to
   those already chosen and the statements on its table re-explained; the candidate whose
   plans serve the most not-yet-served work (cost × calls) is chosen (ties: the most cost
   saved). Rounds repeat until no candidate serves anything new. Then each chosen index
   whose removal leaves every served statement served is dropped.
4. Each chosen index is then narrowed or widened where that proves itself: a partial index
   when every statement using it repeats the same literal equality or IN list (all of them
   still use it, generic plans included, and it is at most 1/``factor`` the size), covering
   columns when that cuts those statements' cost by ``factor`` again (an index-only scan).

Nothing is built: the output is IndexSpec entries, DDL and an Alembic migration.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from ._advice import DEFAULT_FACTOR, Advice, Recommendation, StatementAdvice
from ._candidates import (
    Access,
    Candidate,
    accesses,
    candidates_for,
    covering,
    literal_terms,
    partial,
)
from ._errors import NotEnabledError, WatchError
from ._filters import Term
from ._plans import Explainer, ExplainError, PlanTree
from ._server import Extension, kind, require_pg_extension
from ._specs import index_name, to_spec
from ._tooling import tooling
from ._workload import Workload, WorkloadStatement

__all__ = [
    "advise",
    "as_statements",
    "hypothetical_run",
]

#: A narrower (partial) index may cost its statements at most this much more.
_PARTIAL_SLACK = 1.05
_SYSTEM_SCHEMAS = frozenset({"pg_catalog", "information_schema"})


# --- the run ---------------------------------------------------------------------------------


@dataclass
class _Statement:
    entry: WorkloadStatement
    baseline: PlanTree
    accesses: list[Access]
    tables: frozenset[tuple[str, str]]
    cost: float = 0.0  # with the indexes chosen so far


@dataclass
class _Hypothetical:
    candidate: Candidate
    oid: int
    name: str


@tooling
def advise(
    bind: Engine | Connection | Session,
    workload: Workload | Iterable[WorkloadStatement],
    *,
    factor: float = DEFAULT_FACTOR,
) -> Advice:
    """Indexes that make ``workload`` cheaper on the PostgreSQL database behind ``bind``,
    each proven with HypoPG (nothing is built; see the module docstring for the method).

    Needs the ``hypopg`` extension in the database (:class:`NotEnabledError` says how to
    install it). Hypothetical indexes live in one session only; ``advise`` resets those of
    its connection when it starts and when it ends. ``factor``: how many times a candidate
    must cut a statement's plan cost (default 2, as Dexter's 50%).
    """
    if not isinstance(factor, (int, float)) or factor <= 1:
        raise WatchError(f"factor must be a number above 1, not {factor!r}")
    with hypothetical_run(bind, factor) as run:
        return run.advise(as_statements(workload))


def as_statements(workload: Workload | Iterable[WorkloadStatement]) -> tuple[
        WorkloadStatement, ...]:
    """The distinct statements of ``workload``."""
    if isinstance(workload, Workload):
        return workload.statements
    return Workload(tuple(workload)).statements


@contextmanager
def hypothetical_run(bind: Engine | Connection | Session, factor: float) -> Iterator[_Run]:
    """A :class:`_Run` on a PostgreSQL connection with HypoPG, cleaned up afterwards."""
    with _session(bind) as (conn, savepoints):
        if kind(conn) != "postgresql":
            raise NotEnabledError(
                f"sqlaopt.watch proves indexes with PostgreSQL's HypoPG; {kind(conn)} has no "
                "hypothetical indexes",
                "Run it against a PostgreSQL copy of the schema and data",
            )
        hypopg = require_pg_extension(conn, "hypopg", preload=False,
                                      purpose="Proving candidate indexes")
        run = _Run(conn, hypopg, Explainer(conn, conn.dialect.paramstyle, savepoints), factor)
        try:
            yield run
        finally:
            run.close()


@contextmanager
def _session(bind: Engine | Connection | Session) -> Iterator[tuple[Connection, bool]]:
    """A connection for the run and whether it needs savepoints (it is the caller's, inside
    a transaction) or runs in autocommit (our own)."""
    if isinstance(bind, Engine):
        with bind.connect() as conn:
            yield conn.execution_options(isolation_level="AUTOCOMMIT"), False
    elif isinstance(bind, Connection):
        yield bind, True
    elif isinstance(bind, Session):
        yield bind.connection(), True
    else:
        raise WatchError(f"bind must be an Engine, Connection or Session, not {bind!r}")


class _Run:
    def __init__(self, conn: Connection, hypopg: Extension, explainer: Explainer,
                 factor: float) -> None:
        self.conn = conn
        self.explainer = explainer
        self.factor = factor
        self.fn = {name: hypopg.qualified(conn, name) for name in (
            "hypopg_create_index", "hypopg_drop_index", "hypopg_reset", "hypopg_relation_size")}
        self.chosen: list[_Hypothetical] = []
        self.rejected: dict[Candidate, str] = {}
        self._sql(f"SELECT {self.fn['hypopg_reset']}()")

    # -- HypoPG ------------------------------------------------------------------------------

    def _sql(self, sql: str, parameters: dict[str, Any] | None = None) -> list[Any]:
        if self.explainer.savepoints:
            with self.conn.begin_nested():
                return list(self.conn.execute(text(sql), parameters or {}))
        return list(self.conn.execute(text(sql), parameters or {}))

    def hypothetical(self, ddl: str) -> tuple[int, str] | str:
        """Create a hypothetical index from ``CREATE INDEX ON ...``: (oid, name), or the
        reason HypoPG refused it."""
        try:
            row = self._sql(f"SELECT indexrelid, indexname FROM {self.fn['hypopg_create_index']}"
                            "(:ddl)", {"ddl": ddl})[0]
        except DBAPIError as error:
            return str(error.orig).strip().splitlines()[0] if error.orig else str(error)
        self.explainer.forget_plans()
        return int(row[0]), str(row[1])

    def create(self, candidate: Candidate) -> _Hypothetical | None:
        quote = self.conn.dialect.identifier_preparer.quote
        created = self.hypothetical(f"CREATE INDEX ON {candidate.body(quote)}")
        if isinstance(created, str):
            self.rejected[candidate] = created
            return None
        return _Hypothetical(candidate, *created)

    def drop(self, index: _Hypothetical | int) -> None:
        oid = index if isinstance(index, int) else index.oid
        self._sql(f"SELECT {self.fn['hypopg_drop_index']}(:oid)", {"oid": oid})
        self.explainer.forget_plans()

    def size(self, index: _Hypothetical) -> int:
        rows = self._sql(f"SELECT {self.fn['hypopg_relation_size']}(:oid)", {"oid": index.oid})
        return int(rows[0][0] or 0)

    def close(self) -> None:
        try:
            self._sql(f"SELECT {self.fn['hypopg_reset']}()")
            self.explainer.forget_plans()
        finally:
            self.explainer.close()

    # -- explaining --------------------------------------------------------------------------

    def plan(self, statement: _Statement, *, generic: bool = False) -> PlanTree:
        return self.explainer.plan(statement.entry, generic=generic)

    def baseline(self, entries: Iterable[WorkloadStatement]) -> tuple[
            list[_Statement], list[tuple[str, str]]]:
        kept, skipped = [], []
        for entry in entries:
            if not entry.is_query:
                continue
            try:
                tree = self.explainer.plan(entry)
            except ExplainError as error:
                skipped.append((entry.text, str(error)))
                continue
            if not {schema for schema, _ in tree.relations()} - _SYSTEM_SCHEMAS:
                continue  # reads no table of the application: no index of ours can help
            kept.append(_Statement(entry, tree, accesses(tree, self._literals(entry)),
                                   tree.relations(), tree.cost))
        return kept, skipped

    def _literals(self, entry: WorkloadStatement) -> frozenset[Term] | None:
        """For a statement with values, the terms written in its SQL (its generic plan shows
        the parameters as $n); None when the plan already is the generic one."""
        if entry.parameters is None:
            return None
        try:
            return literal_terms(self.explainer.plan(entry, generic=True))
        except ExplainError:
            return frozenset()  # no generic plan: treat every constant as a parameter

    def evaluate(self, candidate: Candidate, statements: list[_Statement]) -> dict[int, tuple[
            float, bool]] | None:
        """{statement position: (cost, uses it)} with ``candidate`` added, for the statements
        on its table; None when HypoPG refuses it."""
        index = self.create(candidate)
        if index is None:
            return None
        try:
            results = {}
            for position, statement in enumerate(statements):
                if (candidate.schema, candidate.table) in statement.tables:
                    tree = self.plan(statement)
                    results[position] = (tree.cost, index.name in tree.indexes)
            return results
        finally:
            self.drop(index)

    # -- the method --------------------------------------------------------------------------

    def advise(self, entries: Iterable[WorkloadStatement]) -> Advice:
        statements, skipped = self.baseline(entries)
        pool = {c for s in statements for a in s.accesses for c in candidates_for(a)}
        self.greedy(statements, pool)
        self.prune(statements)
        self.refine(statements)
        return self.result(statements, skipped)

    def serves(self, statement: _Statement, cost: float) -> bool:
        """A statement is served when its plan costs 1/factor of its cost without advice."""
        return cost * self.factor <= statement.baseline.cost

    def greedy(self, statements: list[_Statement], pool: set[Candidate]) -> None:
        """Greedy set cover: each round, the candidate serving the most unserved work."""
        cache: dict[Candidate, dict[int, tuple[float, bool]] | None] = {}
        while True:
            best, best_score = None, (0.0, 0.0)
            for candidate in sorted(pool):
                if candidate not in cache:
                    cache[candidate] = self.evaluate(candidate, statements)
                score = self._score(cache[candidate], statements)
                if score > best_score:
                    best, best_score = candidate, score
            if best is None:
                return
            index = self.create(best)
            assert index is not None  # it was created once already
            self.chosen.append(index)
            pool.discard(best)
            changed = self._recost(statements, best)
            for candidate in list(cache):  # their results involved the statements that changed
                results = cache[candidate]
                if results is None or changed.intersection(results):
                    del cache[candidate]

    def _score(self, results: dict[int, tuple[float, bool]] | None,
               statements: list[_Statement]) -> tuple[float, float]:
        """(cost x calls, without advice, of the statements it newly serves; cost x calls it
        saves overall), or zeros when it serves nothing new."""
        if not results:
            return 0.0, 0.0
        newly = [p for p, (cost, used) in results.items() if used
                 and self.serves(statements[p], cost)
                 and not self.serves(statements[p], statements[p].cost)]
        if not newly:
            return 0.0, 0.0
        work = sum(statements[p].baseline.cost * statements[p].entry.calls for p in newly)
        saved = sum((statements[p].cost - cost) * statements[p].entry.calls
                    for p, (cost, _) in results.items())
        return work, saved

    def _recost(self, statements: list[_Statement], candidate: Candidate) -> set[int]:
        changed = set()
        for position, statement in enumerate(statements):
            if (candidate.schema, candidate.table) in statement.tables:
                statement.cost = self.plan(statement).cost
                changed.add(position)
        return changed

    def used_by(self, statements: list[_Statement]) -> dict[str, list[int]]:
        """{hypothetical index name: positions of the statements whose plan uses it}."""
        users: dict[str, list[int]] = {index.name: [] for index in self.chosen}
        for position, statement in enumerate(statements):
            for name in self.plan(statement).indexes:
                if name in users:
                    users[name].append(position)
        return users

    def prune(self, statements: list[_Statement]) -> None:
        """Drop each chosen index, first chosen first, whose removal leaves every served
        statement served (a later, narrower choice took over its work)."""
        for index in list(self.chosen):
            position = self.chosen.index(index)
            self.drop(index)
            del self.chosen[position]
            table = (index.candidate.schema, index.candidate.table)
            costs = {p: self.plan(s).cost for p, s in enumerate(statements) if table in s.tables}
            if all(self.serves(statements[p], cost) or not self.serves(statements[p],
                                                                       statements[p].cost)
                   for p, cost in costs.items()):
                for p, cost in costs.items():
                    statements[p].cost = cost
                continue
            restored = self.create(index.candidate)
            assert restored is not None
            self.chosen.insert(position, restored)

    def refine(self, statements: list[_Statement]) -> None:
        """Try each chosen index partial, then covering; keep what proves itself."""
        for position in range(len(self.chosen)):
            for build in (self._partial_variant, self._covering_variant):
                index = self.chosen[position]
                users = self.used_by(statements)[index.name]
                variant = build(index.candidate, [statements[u] for u in users])
                if variant is not None and variant not in self.rejected:
                    self._try_variant(position, variant, statements, users)

    def _accesses_of(self, candidate: Candidate, users: list[_Statement]) -> list[Access]:
        return [a for s in users for a in s.accesses
                if (a.schema, a.table) == (candidate.schema, candidate.table)]

    def _partial_variant(self, candidate: Candidate, users: list[_Statement]) -> Candidate | None:
        found = self._accesses_of(candidate, users)
        if not found or candidate.where:
            return None
        common: set[Term] = set(found[0].terms)
        for access in found[1:]:
            common &= set(access.terms)
        key = {part for part, _ in candidate.parts}
        return partial(candidate, sorted((t for t in common if t.part in key),
                                         key=lambda t: (t.part, t.op, t.value)))

    def _covering_variant(self, candidate: Candidate, users: list[_Statement]) -> Candidate | None:
        found = self._accesses_of(candidate, users)
        if not found:
            return None
        needed = frozenset().union(*(a.needed for a in found))
        return covering(candidate, replace(found[0], needed=needed))

    def _try_variant(self, position: int, variant: Candidate, statements: list[_Statement],
                     users: list[int]) -> None:
        current = self.chosen[position]
        before = {u: statements[u].cost for u in users}
        size_before = self.size(current)
        self.drop(current)
        trial = self.create(variant)
        accepted = trial is not None and self._variant_holds(
            trial, variant, statements, users, before, size_before)
        if accepted:
            assert trial is not None
            self.chosen[position] = trial
            for statement in statements:
                statement.cost = self.plan(statement).cost
            return
        if trial is not None:
            self.drop(trial)
        restored = self.create(current.candidate)
        assert restored is not None
        self.chosen[position] = restored

    def _variant_holds(self, trial: _Hypothetical, variant: Candidate,
                       statements: list[_Statement], users: list[int],
                       before: dict[int, float], size_before: int) -> bool:
        plans = {u: self.plan(statements[u]) for u in users}
        if any(trial.name not in plan.indexes for plan in plans.values()):
            return False
        after = sum(plan.cost * statements[u].entry.calls for u, plan in plans.items())
        was = sum(before[u] * statements[u].entry.calls for u in users)
        if variant.where:  # narrower: must still serve every user, generic plans included
            for u in users:
                if statements[u].entry.parameters is not None and trial.name not in self.plan(
                        statements[u], generic=True).indexes:
                    return False
            return self.size(trial) * self.factor <= size_before and after <= was * _PARTIAL_SLACK
        return after * self.factor <= was  # covering: must pay for its width

    # -- the result --------------------------------------------------------------------------

    def result(self, statements: list[_Statement], skipped: list[tuple[str, str]]) -> Advice:
        quote = self.conn.dialect.identifier_preparer.quote
        taken: set[str] = set()
        names: dict[str, str] = {}
        recommendations = []
        users = self.used_by(statements)
        finals = [self.plan(s) for s in statements]
        for index in self.chosen:
            name = index_name(index.candidate, taken)
            taken.add(name)
            names[index.name] = name
            served = users[index.name]
            spec, note = to_spec(index.candidate, name)
            recommendations.append(Recommendation(
                name=name, table=index.candidate.table,
                definition=index.candidate.describe(),
                ddl=f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {quote(name)} ON "
                    f"{index.candidate.body(quote)};",
                spec=spec,
                cost_before=sum(statements[u].baseline.cost * statements[u].entry.calls
                                for u in served),
                cost_after=sum(finals[u].cost * statements[u].entry.calls for u in served),
                size_bytes=self.size(index),
                statements=tuple(statements[u].entry.text for u in served),
                best=max((statements[u].baseline.cost / max(finals[u].cost, 1e-9)
                          for u in served), default=0.0),
                note=note,
            ))
        advised = tuple(
            StatementAdvice(
                text=s.entry.text, calls=s.entry.calls, cost_before=s.baseline.cost,
                cost_after=plan.cost,
                indexes=tuple(sorted(names[n] for n in plan.indexes if n in names)),
                seq_scans=tuple(sorted({a.table for a in accesses(plan)})),
                sql=s.entry.sql,
            )
            for s, plan in zip(statements, finals, strict=True)
        )
        rejected = tuple((c.describe(), reason) for c, reason in sorted(self.rejected.items()))
        return Advice(self.factor, tuple(recommendations), advised, tuple(skipped), rejected)
