"""Partial-index predicates: structured conditions, their SQL, a parser for a database's text.

A predicate is a conjunction of :class:`Condition` objects built with :func:`eq`, :func:`in_`,
:func:`is_null`, ... (never a raw SQL string: the spec must be able to rename its columns,
render it per dialect and compare it with what a database reports).

Databases hand predicates back in their own normalised spelling: PostgreSQL turns
``status IN ('a', 'b')`` into
``(status)::text = ANY ((ARRAY['a'::character varying, ...])::text[])``, and ``n <= -2`` into
``n <= '-2'::integer``. :func:`parse_predicate` reads that spelling (and SQLite's, which is the
text as written) back into a canonical form, so comparing a spec with a live index is a
comparison of two :func:`canonical` values, never of strings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import and_, null
from sqlalchemy.sql.elements import ColumnElement

from ._errors import IndexSpecError

__all__ = [
    "Condition",
    "Predicate",
    "PredicateParseError",
    "Value",
    "canonical",
    "coerce_predicate",
    "eq",
    "ge",
    "gt",
    "in_",
    "is_null",
    "le",
    "lt",
    "ne",
    "not_null",
    "parse_predicate",
    "predicate_sql",
]

#: A literal a condition may compare with.
Value = str | int | float | Decimal | bool

_COMPARISONS = ("=", "<>", "<", "<=", ">", ">=")
_OPERATORS = (*_COMPARISONS, "in", "is null", "is not null")
_FLIPPED = {"=": "=", "<>": "<>", "<": ">", "<=": ">=", ">": "<", ">=": "<="}


@dataclass(frozen=True)
class Condition:
    """One term of a partial-index predicate: ``column op value``.

    ``op`` is one of ``= <> < <= > >=``, ``in`` (``value`` is a tuple), ``is null`` or
    ``is not null`` (``value`` is None). Build it with the factory functions.
    """

    column: str
    op: str
    value: Value | tuple[Value, ...] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.column, str) or not self.column:
            raise IndexSpecError(f"a condition needs a column name, not {self.column!r}")
        if self.op not in _OPERATORS:
            raise IndexSpecError(f"unknown condition operator {self.op!r}; use one of {_OPERATORS}")
        if self.op == "in":
            _check_in_values(self.column, self.value)
        elif self.op in _COMPARISONS:
            _check_value(self.column, self.value)
        elif self.value is not None:
            raise IndexSpecError(f"{self.column} {self.op} takes no value")

    def renamed(self, column: str) -> Condition:
        """The same condition on another column name."""
        return Condition(column, self.op, self.value)

    def sql(self, column: ColumnElement[Any]) -> ColumnElement[bool]:
        """This condition as a SQLAlchemy expression on ``column``."""
        if self.op == "in":
            assert isinstance(self.value, tuple)
            return column.in_(list(self.value))
        if self.op == "is null":
            return column.is_(null())
        if self.op == "is not null":
            return column.is_not(null())
        return column.operate(_SQL_OPERATORS[self.op], self.value)

    def __str__(self) -> str:
        if self.op == "in":
            assert isinstance(self.value, tuple)
            return f"{self.column} IN ({', '.join(_literal(v) for v in self.value)})"
        if self.op in ("is null", "is not null"):
            return f"{self.column} {self.op.upper()}"
        assert not isinstance(self.value, tuple) and self.value is not None
        return f"{self.column} {self.op} {_literal(self.value)}"


def _sql_operators() -> dict[str, Any]:
    import operator

    return {
        "=": operator.eq,
        "<>": operator.ne,
        "<": operator.lt,
        "<=": operator.le,
        ">": operator.gt,
        ">=": operator.ge,
    }


_SQL_OPERATORS = _sql_operators()


def _check_value(column: str, value: object) -> None:
    if value is None:
        raise IndexSpecError(
            f"{column}: compare with None using is_null()/not_null(), not a comparison"
        )
    if not isinstance(value, (str, int, float, Decimal, bool)):
        raise IndexSpecError(
            f"{column}: a predicate value must be str, int, float, Decimal or bool, "
            f"not {type(value).__name__}"
        )
    if isinstance(value, float) and value != value:  # NaN never equals itself
        raise IndexSpecError(f"{column}: NaN cannot be compared")


def _check_in_values(column: str, values: object) -> None:
    if not isinstance(values, tuple) or not values:
        raise IndexSpecError(f"{column} IN (...) needs at least one value")
    for value in values:
        _check_value(column, value)


def _literal(value: Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return str(value)


def eq(column: str, value: Value) -> Condition:
    """``column = value``."""
    return Condition(column, "=", value)


def ne(column: str, value: Value) -> Condition:
    """``column <> value``."""
    return Condition(column, "<>", value)


def lt(column: str, value: Value) -> Condition:
    """``column < value``."""
    return Condition(column, "<", value)


def le(column: str, value: Value) -> Condition:
    """``column <= value``."""
    return Condition(column, "<=", value)


def gt(column: str, value: Value) -> Condition:
    """``column > value``."""
    return Condition(column, ">", value)


def ge(column: str, value: Value) -> Condition:
    """``column >= value``."""
    return Condition(column, ">=", value)


def in_(column: str, values: Iterable[Value]) -> Condition:
    """``column IN (values...)``; the values keep their order for rendering."""
    if isinstance(values, (str, bytes)):
        raise IndexSpecError(f"{column} IN (...) takes a sequence of values, not a string")
    return Condition(column, "in", tuple(values))


def is_null(column: str) -> Condition:
    """``column IS NULL``."""
    return Condition(column, "is null")


def not_null(column: str) -> Condition:
    """``column IS NOT NULL``."""
    return Condition(column, "is not null")


#: What ``where=`` accepts: one condition, several (ANDed), or a mapping shorthand
#: ``{"status": "completed"}`` (=), ``{"status": ("a", "b")}`` (IN), ``{"x": None}`` (IS NULL).
Predicate = Condition | Sequence[Condition] | Mapping[str, Any] | None


def coerce_predicate(where: Predicate) -> tuple[Condition, ...]:
    """Normalise a ``where=`` argument to a tuple of conditions (ANDed)."""
    if where is None:
        return ()
    if isinstance(where, Condition):
        return (where,)
    if isinstance(where, Mapping):
        return tuple(_from_mapping_item(column, value) for column, value in where.items())
    if isinstance(where, str):
        raise IndexSpecError(
            "a predicate is structured data (eq('status', 'completed') or "
            "{'status': 'completed'}), never a raw SQL string"
        )
    conditions = tuple(where)
    for condition in conditions:
        if not isinstance(condition, Condition):
            raise IndexSpecError(f"not a Condition: {condition!r} (build it with eq(), in_(), ...)")
    return conditions


def _from_mapping_item(column: str, value: Any) -> Condition:
    if value is None:
        return is_null(column)
    if isinstance(value, (list, tuple, set, frozenset)):
        return in_(column, sorted(value) if isinstance(value, (set, frozenset)) else value)
    return eq(column, value)


def predicate_sql(
    conditions: Sequence[Condition], columns: Mapping[str, ColumnElement[Any]]
) -> ColumnElement[bool] | None:
    """The conjunction as one SQLAlchemy expression over ``columns`` (None when empty)."""
    if not conditions:
        return None
    terms = [condition.sql(columns[condition.column]) for condition in conditions]
    return terms[0] if len(terms) == 1 else and_(*terms)


# --- canonical form -----------------------------------------------------------------------

#: A hashable, order-free form of a predicate; equal for equivalent spellings.
Canonical = frozenset[tuple[str, str, Any]]


def _value_key(value: Value) -> tuple[str, Any]:
    # bool is an int in Python: tag values so True never equals the number 1.
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, (int, float, Decimal)):
        return ("number", Decimal(str(value)))
    return ("text", value)


def canonical(conditions: Iterable[Condition]) -> Canonical:
    """The canonical form of a conjunction: column names lower-cased, ``IN`` as a set (a
    one-value ``IN`` is ``=``, as PostgreSQL stores it), numbers as exact decimals."""
    terms: set[tuple[str, str, Any]] = set()
    for condition in conditions:
        column = condition.column.lower()
        if condition.op == "in":
            assert isinstance(condition.value, tuple)
            keys = frozenset(_value_key(v) for v in condition.value)
            if len(keys) == 1:
                terms.add((column, "=", next(iter(keys))))
            else:
                terms.add((column, "in", keys))
        elif condition.value is None:
            terms.add((column, condition.op, None))
        else:
            assert not isinstance(condition.value, tuple)
            terms.add((column, condition.op, _value_key(condition.value)))
    return frozenset(terms)


# --- parser for database-rendered predicates ---------------------------------------------


class PredicateParseError(ValueError):
    """The text is not a conjunction of simple conditions that the spec could have produced."""


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^']|'')*')
      | (?P<number>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)
      | (?P<quoted>"(?:[^"]|"")*"|`[^`]*`)
      | (?P<word>[A-Za-z_][A-Za-z0-9_$]*)
      | (?P<op><>|!=|<=|>=|::|[=<>(),.\[\]])
    )""",
    re.VERBOSE,
)
_NUMERIC_TYPES = {
    "integer",
    "int",
    "int2",
    "int4",
    "int8",
    "smallint",
    "bigint",
    "numeric",
    "decimal",
    "real",
    "double",
    "float4",
    "float8",
}
_STOP_WORDS = {"and", "or", "is", "in", "not", "any", "all"}


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise PredicateParseError(f"cannot read {text[position:]!r}")
        kind = match.lastgroup
        assert kind is not None
        tokens.append(_Token(kind, match.group(kind)))
        position = match.end()
    return tokens


@dataclass(frozen=True)
class _Column:
    name: str


class _Parser:
    """Recursive descent over the token list, backtracking over ambiguous parentheses."""

    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.at = 0

    def peek(self, offset: int = 0) -> _Token | None:
        index = self.at + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def is_word(self, word: str, offset: int = 0) -> bool:
        token = self.peek(offset)
        return token is not None and token.kind == "word" and token.text.lower() == word

    def is_op(self, op: str, offset: int = 0) -> bool:
        token = self.peek(offset)
        return token is not None and token.kind == "op" and token.text == op

    def take(self) -> _Token:
        token = self.peek()
        if token is None:
            raise PredicateParseError("unexpected end of predicate")
        self.at += 1
        return token

    def expect_op(self, op: str) -> None:
        token = self.take()
        if token.kind != "op" or token.text != op:
            raise PredicateParseError(f"expected {op!r}, found {token.text!r}")

    def ends_term(self) -> bool:
        """True where a term may end: the end, AND/OR, or a closing parenthesis."""
        return self.peek() is None or self.is_word("and") or self.is_word("or") or self.is_op(")")

    # conjunction := term (AND term)*
    def conjunction(self) -> list[Condition]:
        conditions = self.term()
        while self.is_word("and"):
            self.take()
            conditions.extend(self.term())
        if self.is_word("or"):
            raise PredicateParseError("OR is not supported in a spec predicate")
        return conditions

    def term(self) -> list[Condition]:
        if self.is_op("("):
            saved = self.at
            try:
                self.take()
                inner = self.conjunction()
                self.expect_op(")")
                if self.ends_term():
                    return inner
            except PredicateParseError:
                pass
            self.at = saved  # the parenthesis opened an operand, as in "(status)::text = ..."
        if self.is_word("not") and not self.is_word("null", 1):
            self.take()
            operand = self.operand()
            if not isinstance(operand, _Column):
                raise PredicateParseError("NOT applies to a boolean column only")
            return [Condition(operand.name, "=", False)]
        return [self.condition()]

    def condition(self) -> Condition:
        left = self.operand()
        if self.is_word("is"):
            return self.is_test(left)
        if self.is_word("in"):
            self.take()
            return self.in_list(left)
        token = self.peek()
        if token is None or token.kind != "op" or token.text not in (*_COMPARISONS, "!="):
            if isinstance(left, _Column):  # a bare boolean column: PostgreSQL's "flag = true"
                return Condition(left.name, "=", True)
            raise PredicateParseError(f"expected a comparison after {left!r}")
        op = "<>" if self.take().text == "!=" else token.text
        if op == "=" and self.is_word("any"):
            self.take()
            return self.any_array(left)
        return _comparison(left, op, self.operand())

    def is_test(self, left: object) -> Condition:
        self.take()
        negated = self.is_word("not")
        if negated:
            self.take()
        if not self.is_word("null"):
            raise PredicateParseError("only IS [NOT] NULL is supported")
        self.take()
        if not isinstance(left, _Column):
            raise PredicateParseError("IS NULL applies to a column")
        return Condition(left.name, "is not null" if negated else "is null")

    def in_list(self, left: object) -> Condition:
        self.expect_op("(")
        values = [self.literal_operand()]
        while self.is_op(","):
            self.take()
            values.append(self.literal_operand())
        self.expect_op(")")
        if not isinstance(left, _Column):
            raise PredicateParseError("IN applies to a column")
        return Condition(left.name, "in", tuple(values))

    def any_array(self, left: object) -> Condition:
        self.expect_op("(")
        values = self.array()
        self.expect_op(")")
        if not isinstance(left, _Column):
            raise PredicateParseError("= ANY applies to a column")
        return Condition(left.name, "in", tuple(values))

    def array(self) -> list[Value]:
        if self.is_op("("):  # PostgreSQL wraps a cast array in parentheses
            self.take()
            values = self.array()
            self.expect_op(")")
            self.casts()
            return values
        if not self.is_word("array"):
            raise PredicateParseError("expected ARRAY[...]")
        self.take()
        self.expect_op("[")
        values = [self.literal_operand()]
        while self.is_op(","):
            self.take()
            values.append(self.literal_operand())
        self.expect_op("]")
        self.casts()
        return values

    def literal_operand(self) -> Value:
        value = self.operand()
        if isinstance(value, _Column):
            raise PredicateParseError(f"expected a literal, found column {value.name}")
        return value

    # operand := '(' operand ')' casts | column casts | literal casts
    def operand(self) -> Value | _Column:
        token = self.take()
        if token.kind == "op" and token.text == "(":
            value = self.operand()
            self.expect_op(")")
            return _cast(value, self.casts())
        if token.kind == "string":
            return _cast(token.text[1:-1].replace("''", "'"), self.casts())
        if token.kind == "number":
            return _cast(Decimal(token.text), self.casts())
        if token.kind == "word" and token.text.lower() in ("true", "false"):
            return _cast(token.text.lower() == "true", self.casts())
        if token.kind in ("word", "quoted") and token.text.lower() not in _STOP_WORDS:
            name = _identifier(token)
            while self.is_op("."):  # table-qualified: keep the column name
                self.take()
                name = _identifier(self.take())
            self.casts()
            return _Column(name)
        raise PredicateParseError(f"unexpected {token.text!r}")

    def casts(self) -> str | None:
        """Skip ``::type`` suffixes; return the last type name (it decides a literal's kind)."""
        last = None
        while self.is_op("::"):
            self.take()
            words = []
            while (token := self.peek()) is not None and token.kind in ("word", "quoted"):
                if token.text.lower() in _STOP_WORDS:
                    break
                words.append(self.take().text.lower())
            if not words:
                raise PredicateParseError("a cast without a type")
            if self.is_op("(") and (number := self.peek(1)) is not None and number.kind == "number":
                while not self.is_op(")"):  # a type modifier such as numeric(10,2)
                    self.take()
                self.take()
            if self.is_op("[") and self.is_op("]", 1):
                self.take()
                self.take()
            last = words[0]
        return last


def _identifier(token: _Token) -> str:
    if token.kind == "quoted":
        return token.text[1:-1].replace('""', '"')
    return token.text


def _cast(value: Value | _Column, type_name: str | None) -> Value | _Column:
    """Apply what a cast tells about a literal: ``'-2'::integer`` is the number -2."""
    if type_name in _NUMERIC_TYPES and isinstance(value, str):
        try:
            return Decimal(value)
        except InvalidOperation as error:
            raise PredicateParseError(f"{value!r} cast to {type_name}") from error
    if type_name == "boolean" and isinstance(value, str):
        return value.lower() in ("t", "true", "1", "yes", "on")
    return value


def _comparison(left: Value | _Column, op: str, right: Value | _Column) -> Condition:
    if isinstance(left, _Column) and not isinstance(right, _Column):
        return Condition(left.name, op, right)
    if isinstance(right, _Column) and not isinstance(left, _Column):
        return Condition(right.name, _FLIPPED[op], left)
    raise PredicateParseError("a comparison needs one column and one literal")


def parse_predicate(text: str) -> list[Condition]:
    """Read a predicate as PostgreSQL (``pg_get_expr``) or SQLite (the index's SQL) spells it.

    Raises :class:`PredicateParseError` for anything the spec could not have produced (OR,
    functions, column-to-column comparisons).
    """
    parser = _Parser(_tokenize(text))
    conditions = parser.conjunction()
    if parser.peek() is not None:
        raise PredicateParseError(f"unexpected {parser.peek()!r} after the predicate")
    return conditions
