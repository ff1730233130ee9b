"""The advisor's result: :class:`Advice`, its :class:`Recommendation` entries and each
:class:`StatementAdvice`, with the IndexSpec code, DDL and Alembic migration they make."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from ..indexes import IndexSpec, Spec, alembic_migration
from ._format import Tabular, jsonable, rows_table, shorten

__all__ = ["DEFAULT_FACTOR", "Advice", "Recommendation", "StatementAdvice"]

#: A candidate must cut a statement's plan cost at least this many times (Dexter: 50%).
DEFAULT_FACTOR = 2.0


@dataclass(frozen=True)
class Recommendation:
    """One proven index: its name, definition, DDL, IndexSpec and what it does.

    ``statements`` are those whose final plan uses it; ``cost_before``/``cost_after`` sum
    their plan costs (× calls), ``best`` is the largest cut of one of them (at least the
    factor: that is what proved it). ``size_bytes`` is HypoPG's size estimate; ``spec`` is
    None when the definition cannot be written as an IndexSpec (``note`` says why; the DDL
    still works).
    """

    name: str
    table: str
    definition: str
    ddl: str
    spec: IndexSpec | None
    cost_before: float
    cost_after: float
    size_bytes: int
    statements: tuple[str, ...]
    best: float = 0.0
    note: str = ""

    @property
    def improvement(self) -> float:
        """How many times cheaper its statements' plans are with it."""
        return self.cost_before / self.cost_after if self.cost_after else float("inf")


@dataclass(frozen=True)
class StatementAdvice:
    """One workload statement: plan cost before and after, the recommended indexes its final
    plan uses, and the tables it still reads sequentially."""

    text: str
    calls: int
    cost_before: float
    cost_after: float
    indexes: tuple[str, ...]
    seq_scans: tuple[str, ...]
    sql: str = field(default="", repr=False)


@dataclass(frozen=True)
class Advice(Tabular):
    """The outcome of :func:`advise`."""

    factor: float
    recommendations: tuple[Recommendation, ...]
    statements: tuple[StatementAdvice, ...]
    skipped: tuple[tuple[str, str], ...] = ()
    """(statement, reason) for statements that were not advised on."""
    rejected: tuple[tuple[str, str], ...] = ()
    """(candidate, reason) for candidates that could not even be tried."""

    @property
    def spec(self) -> Spec:
        """The recommendations that IndexSpec can write, as a Spec."""
        return Spec(r.spec for r in self.recommendations if r.spec is not None)

    def sql(self) -> str:
        """The DDL, one statement a line (run each on its own: CONCURRENTLY)."""
        return "\n".join(r.ddl for r in self.recommendations)

    def python(self) -> str:
        """The recommendations as IndexSpec code to paste into your spec."""
        lines = ["from sqlaopt.indexes import IndexSpec, Spec, date, date_trunc, eq, in_", "",
                 "ADVISED = Spec(", "    ["]
        for recommendation in self.recommendations:
            if recommendation.spec is None:
                lines.append(f"        # {recommendation.name}: {recommendation.note}")
                lines.append(f"        #   {recommendation.ddl}")
            else:
                lines.append(f"        {_spec_code(recommendation.spec)},")
        return "\n".join([*lines, "    ]", ")", ""])

    def migration(self, target: object | None = None) -> str:
        """An Alembic revision body building :attr:`spec` (fitted to ``target``, your
        declarative base or MetaData; the reference schema when None), via
        :func:`sqlaopt.indexes.alembic_migration`."""
        return alembic_migration(self.spec, target, dialect="postgresql")

    def table(self, width: int = 70) -> str:
        """Plain text: recommendations, then the statements before and after."""
        total_before = sum(s.cost_before * s.calls for s in self.statements)
        total_after = sum(s.cost_after * s.calls for s in self.statements)
        lines = [f"index advice ({len(self.statements)} statements, plan cost "
                 f"{total_before:,.0f} -> {total_after:,.0f}; a candidate must cut a "
                 f"statement's cost {self.factor:g}x):"]
        for r in self.recommendations:
            lines.append(f"  {r.name}: {r.definition}")
            lines.append(f"      best {r.best:,.1f}x; {r.improvement:,.1f}x over the "
                         f"{len(r.statements)} statement(s) using it; "
                         f"~{r.size_bytes / 1024 / 1024:,.1f} MB")
            lines.append(f"      {r.ddl}")
        if not self.recommendations:
            lines.append("  (no index proves itself on this workload)")
        rows = [(f"{s.cost_before:,.0f}", f"{s.cost_after:,.0f}", ", ".join(s.indexes) or "-",
                 shorten(s.text, width)) for s in self.statements]
        lines += ["", "statements:", rows_table(("before", "after", "uses", "statement"), rows)]
        lines += [f"skipped: {shorten(s, width)}: {reason}" for s, reason in self.skipped]
        lines += [f"not tried: {c}: {reason}" for c, reason in self.rejected]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (IndexSpec entries as their descriptions)."""
        document = Tabular.to_dict(replace(self, recommendations=()))
        document["recommendations"] = [
            {**jsonable(replace(r, spec=None)), "spec": r.spec.describe() if r.spec else None,
             "improvement": r.improvement}
            for r in self.recommendations
        ]
        return document


def _spec_code(spec: IndexSpec) -> str:
    from ..indexes._predicates import Condition

    def part(p: object) -> str:
        return repr(p) if isinstance(p, str) else _expression_code(p)

    key = "[" + ", ".join(part(p) for p in spec.key_parts) + "]"
    args = [repr(spec.name), repr(spec.table), key]
    conditions: tuple[Condition, ...] = spec.conditions
    if conditions:
        terms = [f"in_({c.column!r}, {list(c.value)!r})" if c.op == "in"  # type: ignore[arg-type]
                 else f"eq({c.column!r}, {c.value!r})" for c in conditions]
        args.append(f"where=[{', '.join(terms)}]")
    if spec.include:
        args.append(f"include={list(spec.include)!r}")
    return f"IndexSpec({', '.join(args)})"


def _expression_code(part: object) -> str:
    from ..indexes._spec import DateOf, DateTrunc

    if isinstance(part, DateOf):
        return f"date({part.column!r})"
    if isinstance(part, DateTrunc):
        return f"date_trunc({part.unit!r}, {part.column!r})"
    return repr(part)
