"""From plans to candidate indexes: which relations a statement scans sequentially or sorts,
what its conditions offer an index, and the indexes that could serve them."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace

from ._filters import SortKey, Term, column_refs, parse_conjuncts, parse_sort_key
from ._plans import Node, PlanTree, nodes

__all__ = [
    "Access",
    "Candidate",
    "Part",
    "accesses",
    "candidates_for",
    "covering",
    "literal_terms",
    "partial",
]

#: A key part: SQL text (a column name or an expression) and whether it is an expression.
Part = tuple[str, bool]
_CONDITIONS = ("Filter", "Index Cond", "Recheck Cond", "Hash Cond", "Merge Cond", "Join Filter")
_SEQUENTIAL = ("Seq Scan",)
_SORTS = ("Sort", "Incremental Sort")
#: The widest key a candidate gets, and the most covering columns tried.
MAX_KEY = 4
MAX_INCLUDE = 4


@dataclass(frozen=True)
class Access:
    """One relation a statement reads sequentially, with what its plan says about it."""

    schema: str
    table: str
    alias: str
    terms: tuple[Term, ...]
    sort: tuple[SortKey, ...]
    needed: frozenset[str]
    """Every column of the relation the statement uses (for covering indexes)."""


@dataclass(frozen=True, order=True)
class Candidate:
    """An index to try: key parts, covering columns, partial predicate (SQL text)."""

    schema: str
    table: str
    parts: tuple[Part, ...]
    include: tuple[str, ...] = ()
    where: tuple[str, ...] = ()
    where_terms: tuple[Term, ...] = field(default=(), compare=False)

    def body(self, quote: Callable[[str], str]) -> str:
        """``schema.table (parts) [INCLUDE (...)] [WHERE ...]`` for ``CREATE INDEX``."""
        keys = [f"({p})" if expression else quote(p) for p, expression in self.parts]
        return self._text(f"{quote(self.schema)}.{quote(self.table)}", keys, quote)

    def describe(self) -> str:
        """``table (parts) INCLUDE (...) WHERE ...`` for people."""
        return self._text(self.table, [p for p, _ in self.parts], str)

    def _text(self, table: str, keys: list[str], quote: Callable[[str], str]) -> str:
        text = f"{table} ({', '.join(keys)})"
        if self.include:
            text += f" INCLUDE ({', '.join(quote(c) for c in self.include)})"
        if self.where:
            text += " WHERE " + " AND ".join(self.where)
        return text

    @property
    def key_columns(self) -> frozenset[str]:
        return frozenset(p for p, expression in self.parts if not expression)


def _aliases(root: Node) -> dict[str, tuple[str, str]]:
    return {str(n["Alias"]): (str(n.get("Schema", "public")), str(n["Relation Name"]))
            for n in nodes(root) if "Relation Name" in n and "Alias" in n}


def _strings(node: Node, skip_output: bool) -> Iterator[str]:
    for key, value in node.items():
        if key == "Plans" or (skip_output and key == "Output"):
            continue
        if isinstance(value, str):
            yield value
        elif isinstance(value, list):
            yield from (v for v in value if isinstance(v, str))


def _all_terms(plan: PlanTree, aliases: dict[str, tuple[str, str]]) -> Iterator[Term]:
    for node in nodes(plan.root):
        for key in _CONDITIONS:
            if isinstance(node.get(key), str):
                yield from parse_conjuncts(node[key], aliases)


def literal_terms(plan: PlanTree) -> frozenset[Term]:
    """The terms of ``plan`` whose constant is written in the SQL (read from a generic plan,
    where parameters show as ``$n``: a custom plan shows bound values as constants too)."""
    return frozenset(t for t in _all_terms(plan, _aliases(plan.root)) if t.literal)


def accesses(plan: PlanTree, literals: frozenset[Term] | None = None) -> list[Access]:
    """The relations ``plan`` reads with a sequential scan. ``literals``: the terms known to
    be literal in the SQL (from :func:`literal_terms` of the generic plan); when given, any
    other term counts as a parameter."""
    aliases = _aliases(plan.root)
    terms: dict[str, list[Term]] = {}
    sorts: dict[str, tuple[SortKey, ...]] = {}
    for term in _all_terms(plan, aliases):
        if literals is not None:
            term = replace(term, literal=replace(term, literal=True) in literals)
        terms.setdefault(term.alias, []).append(term)
    for node in nodes(plan.root):
        if node["Node Type"] in _SORTS:
            keys = [parse_sort_key(k, aliases) for k in node.get("Sort Key", ())]
            owners = {k.alias for k in keys if k is not None}
            if keys and None not in keys and len(owners) == 1:
                sorts.setdefault(owners.pop(), tuple(k for k in keys if k is not None))
    found = []
    for scan in nodes(plan.root):
        if scan["Node Type"] not in _SEQUENTIAL or "Alias" not in scan:
            continue
        alias = str(scan["Alias"])
        needed = {column for node in nodes(plan.root)
                  for text in _strings(node, node is scan)
                  for owner, column in column_refs(text, [alias]) if owner == alias}
        schema, table = aliases[alias]
        found.append(Access(schema, table, alias, tuple(terms.get(alias, ())),
                            sorts.get(alias, ()), frozenset(needed)))
    return found


def _unique(parts: Iterable[Part]) -> tuple[Part, ...]:
    return tuple(dict.fromkeys(parts))


def candidates_for(access: Access) -> set[Candidate]:
    """Key-only candidates for one access: equality parts first (in predicate order), then an
    IN list, a range, the sort order, a join column or an expression."""
    def parts(kind: str) -> tuple[Part, ...]:
        return _unique((t.part, t.is_expression) for t in access.terms if t.kind == kind)

    # Parameters first, constants written in the SQL last: those repeat in every use and can
    # become a partial index's predicate instead.
    literal = {(t.part, t.is_expression) for t in access.terms if t.kind == "eq" and t.literal}
    equal = _unique((*sorted(parts("eq"), key=lambda p: p in literal), *parts("null")))
    lists, ranges, joins = parts("in"), parts("range"), parts("join")
    order = _sort_parts(access.sort)
    keys: list[tuple[Part, ...]] = []
    if equal:
        keys.append(equal)
    keys += [(*equal, r) for r in ranges[:2]]
    if lists:
        keys += [equal + lists, equal + lists + ranges[:1]]
    if order:
        keys.append(equal + order)
    keys += [(*equal, j) for j in joins] + [(j,) for j in joins]
    if not equal:
        keys += [(r,) for r in ranges[:2]]
    found = set()
    for key in keys:
        key = _unique(key)[:MAX_KEY]
        if key:
            found.add(Candidate(access.schema, access.table, key))
    return found


def _sort_parts(keys: tuple[SortKey, ...]) -> tuple[Part, ...]:
    """The sort columns, when one btree direction can produce them."""
    if not keys or len({k.descending for k in keys}) != 1:
        return ()
    return tuple((k.column, False) for k in keys)


def covering(candidate: Candidate, access: Access) -> Candidate | None:
    """``candidate`` with the access's other needed columns as INCLUDE, when few enough."""
    extra = tuple(sorted(access.needed - candidate.key_columns - set(candidate.include)))
    if not extra or len(extra) + len(candidate.include) > MAX_INCLUDE:
        return None
    include = tuple(sorted(set(candidate.include) | set(extra)))
    return Candidate(candidate.schema, candidate.table, candidate.parts, include,
                     candidate.where, candidate.where_terms)


def partial(candidate: Candidate, terms: Iterable[Term]) -> Candidate | None:
    """``candidate`` limited to rows matching ``terms`` (literal equalities or IN lists that
    every statement it serves repeats), the columns they pin taken out of the key: the
    predicate already answers them."""
    chosen = tuple(t for t in terms if t.kind in ("eq", "in") and t.literal
                   and not t.is_expression)
    if not chosen:
        return None
    pinned = {(t.part, False) for t in chosen}
    key = tuple(p for p in candidate.parts if p not in pinned)
    if not key:
        return None
    where = tuple(f"{t.part} {t.op} {t.value}" for t in chosen)
    return Candidate(candidate.schema, candidate.table, key, candidate.include, where, chosen)
