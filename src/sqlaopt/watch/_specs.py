"""A proven candidate as a :class:`sqlaopt.indexes.IndexSpec`: a name, portable key parts
(columns, ``date()``, ``date_trunc()``) and a structured predicate."""

from __future__ import annotations

import re

from ..indexes import IndexSpec, IndexSpecError, date, date_trunc, eq, in_
from ..indexes._predicates import Condition, Value
from ..indexes._spec import MAX_NAME_LENGTH, KeyPart
from ._candidates import Candidate
from ._filters import Term

__all__ = ["index_name", "to_spec"]

# The expressions the spec can write, as PostgreSQL deparses them (timestamptz columns are
# indexed AT TIME ZONE 'UTC', which is what the spec renders for them).
_EXPRESSIONS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"date\((\w+)\)"), "date"),
    (re.compile(r"\(*(\w+) AT TIME ZONE 'UTC'(?:::text)?\)*::date"), "date"),
    (re.compile(r"date_trunc\('(\w+)'(?:::text)?, \(*(\w+)"
                r"(?: AT TIME ZONE 'UTC'(?:::text)?)?\)*\)"), "date_trunc"),
)
_NAME_CHARACTERS = re.compile(r"[^a-z0-9_]+")


def index_name(candidate: Candidate, taken: set[str]) -> str:
    """``idx_<table>_<parts>[_partial]``, lower-case, at most 63 characters, not in ``taken``."""
    words = [candidate.table] + [
        _NAME_CHARACTERS.sub("_", part.lower()).strip("_") for part, _ in candidate.parts
    ]
    if candidate.where:
        words.append("partial")
    base = _NAME_CHARACTERS.sub("_", "idx_" + "_".join(words)).strip("_")[:MAX_NAME_LENGTH]
    name, number = base, 2
    while name in taken:
        suffix = f"_{number}"
        name, number = base[: MAX_NAME_LENGTH - len(suffix)] + suffix, number + 1
    return name


def _part(text: str, expression: bool) -> KeyPart | None:
    if not expression:
        return text
    bare = text.strip()
    while bare.startswith("(") and bare.endswith(")"):
        bare = bare[1:-1].strip()
    for pattern, kind in _EXPRESSIONS:
        match = pattern.fullmatch(bare)
        if match and kind == "date":
            return date(match.group(1))
        if match:
            return date_trunc(match.group(1), match.group(2))
    return None


_LITERAL = re.compile(r"'((?:[^']|'')*)'(?:::[\w ]+(?:\[\])?)*\Z")


def _value(text: str) -> Value | None:
    text = text.strip()
    while text.startswith("(") and text.endswith(")"):
        text = text[1:-1].strip()
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    match = _LITERAL.match(text)
    return match.group(1).replace("''", "'") if match else None


def _condition(term: Term) -> Condition | None:
    if term.kind == "eq":
        value = _value(term.value)
        return None if value is None else eq(term.part, value)
    array = _value(term.value)
    if not isinstance(array, str) or not (array.startswith("{") and array.endswith("}")):
        return None
    items = [item.strip().strip('"') for item in array[1:-1].split(",")]
    return in_(term.part, items) if items and all(items) else None


def to_spec(candidate: Candidate, name: str) -> tuple[IndexSpec | None, str]:
    """The IndexSpec for ``candidate``, or None and the reason it cannot be written as one."""
    parts = [_part(text, expression) for text, expression in candidate.parts]
    if None in parts:
        odd = next(t for (t, _), p in zip(candidate.parts, parts, strict=True) if p is None)
        return None, f"the key part {odd} is not one IndexSpec can write: use the DDL"
    conditions = [_condition(term) for term in candidate.where_terms]
    if None in conditions:
        return None, "the predicate is not one IndexSpec can write: use the DDL"
    try:
        spec = IndexSpec(name, candidate.table, [p for p in parts if p is not None],
                         where=tuple(c for c in conditions if c is not None),
                         include=candidate.include)
    except IndexSpecError as error:
        return None, f"not expressible as an IndexSpec ({error}): use the DDL"
    return spec, ""
