"""Reading PostgreSQL's deparsed conditions (a plan's ``Filter``, ``Hash Cond``, ``Sort Key``)
into terms an index could serve.

EXPLAIN VERBOSE qualifies every column with its range alias (``a.barber_id``), so a term
belongs to an alias. A conjunct is usable when one side is a column (or an expression over
one alias) and the other a constant (``'x'::text``, ``28``, ``$1``) or another alias's
column (a join). ORs, NOTs and anything else are not: they are simply not terms.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = ["SortKey", "Term", "column_refs", "parse_conjuncts", "parse_sort_key"]

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>[EeBb]?'(?:[^']|'')*')
      | (?P<param>\$\d+)
      | (?P<number>\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)
      | (?P<quoted>"(?:[^"]|"")*")
      | (?P<word>[A-Za-z_][A-Za-z0-9_$]*)
      | (?P<op>::|<>|<=|>=|!=|!?~~\*?|\|\||[-+*/%^=<>(),.\[\]~!@#&|])
    )""",
    re.VERBOSE,
)
_COMPARISONS = {"=", "<>", "!=", "<", "<=", ">", ">="}
_RANGES = {"<", "<=", ">", ">="}
_FLIPPED = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "=": "="}

TermKind = Literal["eq", "in", "range", "null", "join"]


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str
    start: int
    end: int


def _tokenize(text: str) -> list[_Tok]:
    tokens = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            return []  # something this reader does not know: no terms rather than wrong ones
        kind = match.lastgroup
        assert kind is not None
        tokens.append(_Tok(kind, match.group(kind), match.start(kind), match.end(kind)))
        position = match.end()
    return tokens


@dataclass(frozen=True)
class Term:
    """One usable conjunct, seen from ``alias``.

    ``part`` is a column name, or (``is_expression``) the expression with its alias
    qualifiers removed, ready for ``CREATE INDEX``. ``value`` is the constant as written
    (``literal`` is False when it holds a ``$n`` parameter); a ``join`` term's value is the
    other side's ``alias.column``.
    """

    kind: TermKind
    alias: str
    part: str
    is_expression: bool
    op: str
    value: str
    literal: bool


@dataclass(frozen=True)
class SortKey:
    """One ``Sort Key`` entry on a column of ``alias``."""

    alias: str
    column: str
    descending: bool


@dataclass(frozen=True)
class _Side:
    kind: Literal["column", "expression", "constant", "mixed"]
    alias: str
    part: str
    literal: bool


def _split(tokens: list[_Tok], word: str) -> list[list[_Tok]]:
    """Split at ``word`` (AND/OR) outside parentheses."""
    parts: list[list[_Tok]] = [[]]
    depth = 0
    for token in tokens:
        if token.kind == "op" and token.text in "([":
            depth += 1
        elif token.kind == "op" and token.text in ")]":
            depth -= 1
        if depth == 0 and token.kind == "word" and token.text.upper() == word:
            parts.append([])
        else:
            parts[-1].append(token)
    return parts


def _unwrap(tokens: list[_Tok]) -> list[_Tok]:
    """Remove parentheses that enclose the whole token list."""
    while len(tokens) >= 2 and tokens[0].text == "(" and tokens[-1].text == ")":
        depth = 0
        for index, token in enumerate(tokens):
            depth += token.text == "(" and token.kind == "op"
            depth -= token.text == ")" and token.kind == "op"
            if depth == 0 and index < len(tokens) - 1:
                return tokens
        tokens = tokens[1:-1]
    return tokens


def column_refs(text: str, aliases: Iterable[str]) -> list[tuple[str, str]]:
    """Every ``alias.column`` in ``text`` for the given aliases, in order."""
    return _refs(_tokenize(text), frozenset(aliases))


def _name(token: _Tok) -> str:
    return token.text[1:-1].replace('""', '"') if token.kind == "quoted" else token.text


def _refs(tokens: Sequence[_Tok], aliases: frozenset[str]) -> list[tuple[str, str]]:
    found = []
    for index in range(len(tokens) - 2):
        first, dot, column = tokens[index : index + 3]
        if (first.kind in ("word", "quoted") and dot.text == "." and dot.kind == "op"
                and column.kind in ("word", "quoted") and _name(first) in aliases
                and (index == 0 or tokens[index - 1].text != ".")):
            found.append((_name(first), _name(column)))
    return found


def _without_casts(tokens: Sequence[_Tok]) -> list[_Tok]:
    """The tokens minus parentheses and ``::type`` casts."""
    kept = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token.kind == "op" and token.text == "::":
            index += 1
            while index < len(tokens) and tokens[index].kind in ("word", "quoted"):
                index += 1
            brackets = [t.text for t in tokens[index : index + 2]]
            if brackets == ["[", "]"]:
                index += 2
            continue
        if not (token.kind == "op" and token.text in "()"):
            kept.append(token)
        index += 1
    return kept


def _unqualified(text: str, tokens: Sequence[_Tok], alias: str) -> str:
    """``text`` without ``alias.`` qualifiers."""
    out, position = [], 0
    base = tokens[0].start if tokens else 0
    for index, token in enumerate(tokens):
        following = tokens[index + 1] if index + 1 < len(tokens) else None
        if (token.kind in ("word", "quoted") and _name(token) == alias and following is not None
                and following.text == "." and (index == 0 or tokens[index - 1].text != ".")):
            out.append(text[position : token.start - base])
            position = following.end - base
    out.append(text[position:])
    return "".join(out).strip()


def _side(tokens: list[_Tok], source: str, aliases: frozenset[str]) -> _Side:
    refs = _refs(tokens, aliases)
    literal = not any(t.kind == "param" for t in tokens)
    if not refs:
        return _Side("constant", "", "", literal)
    owners = {alias for alias, _ in refs}
    if len(owners) > 1:
        return _Side("mixed", "", "", literal)
    alias = owners.pop()
    bare = _without_casts(tokens)
    if len(bare) == 3 and len(refs) == 1:
        return _Side("column", alias, refs[0][1], literal)
    text = source[tokens[0].start : tokens[-1].end]
    return _Side("expression", alias, _unqualified(text, tokens, alias), literal)


def parse_conjuncts(text: str, aliases: Iterable[str]) -> list[Term]:
    """The usable terms of a condition (``Filter``, ``Index Cond``, ``Hash Cond``, ...)."""
    known = frozenset(aliases)
    terms: list[Term] = []
    for conjunct in _split(_unwrap(_tokenize(text)), "AND"):
        conjunct = _unwrap(conjunct)
        if not conjunct or len(_split(conjunct, "OR")) > 1:
            continue
        terms += _terms(conjunct, text, known)
    return terms


def _operator_at(tokens: list[_Tok]) -> int | None:
    depth = 0
    for index, token in enumerate(tokens):
        if token.kind == "op" and token.text in "([":
            depth += 1
        elif token.kind == "op" and token.text in ")]":
            depth -= 1
        elif depth == 0 and (
            (token.kind == "op" and token.text in _COMPARISONS)
            or (token.kind == "word" and token.text.upper() == "IS")
        ):
            return index
    return None


def _terms(tokens: list[_Tok], source: str, aliases: frozenset[str]) -> list[Term]:
    at = _operator_at(tokens)
    if at is None or at == 0:
        return []
    op = tokens[at].text.upper()
    left = _side(tokens[:at], source, aliases)
    right_tokens = tokens[at + 1 :]
    if op == "IS":
        words = [t.text.upper() for t in right_tokens]
        if words in (["NULL"], ["NOT", "NULL"]) and left.kind in ("column", "expression"):
            return [_term("null", left, " ".join(["IS", *words]), "", True)]
        return []
    if op == "=" and right_tokens and right_tokens[0].text.upper() == "ANY":
        right = _side(right_tokens[1:], source, aliases)
        if left.kind in ("column", "expression") and right.kind == "constant" and len(
                right_tokens) > 1:
            value = source[right_tokens[1].start : right_tokens[-1].end]
            return [_term("in", left, "= ANY", value, right.literal)]
        return []
    right = _side(right_tokens, source, aliases)
    value = source[right_tokens[0].start : right_tokens[-1].end] if right_tokens else ""
    if left.kind == "constant" and right.kind in ("column", "expression"):
        left_value = source[tokens[0].start : tokens[at - 1].end]
        left, right, value = right, left, left_value
        op = _FLIPPED.get(op, op)
    if left.kind not in ("column", "expression") or op in ("<>", "!="):
        return []
    if right.kind == "constant":
        kind: TermKind = "eq" if op == "=" else "range"
        return [_term(kind, left, op, value, right.literal)] if op in _RANGES | {"="} else []
    if right.kind == "column" and op == "=" and left.kind == "column" and left.alias != right.alias:
        return [
            _term("join", left, "=", f"{right.alias}.{right.part}", False),
            _term("join", right, "=", f"{left.alias}.{left.part}", False),
        ]
    return []


def _term(kind: TermKind, side: _Side, op: str, value: str, literal: bool) -> Term:
    return Term(kind, side.alias, side.part, side.kind == "expression", op, value, literal)


def parse_sort_key(text: str, aliases: Iterable[str]) -> SortKey | None:
    """A ``Sort Key`` entry on a plain column, or None (an expression, another alias...)."""
    tokens = _tokenize(text)
    words = [t.text.upper() for t in tokens]
    descending = False
    while words and words[-1] in ("DESC", "ASC", "FIRST", "LAST", "NULLS"):
        descending = descending or words[-1] == "DESC"
        if words[-1] in ("FIRST", "LAST") and "DESC" not in words[-3:]:
            return None  # an explicit NULLS order a plain btree may not match
        tokens, words = tokens[:-1], words[:-1]
    side = _side(tokens, text, frozenset(aliases)) if tokens else None
    if side is None or side.kind != "column":
        return None
    return SortKey(side.alias, side.part, descending)
