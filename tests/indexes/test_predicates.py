"""Predicates survive the round trip through a database's own spelling.

A partial index's predicate comes back from PostgreSQL normalised (casts, ``= ANY (ARRAY[...])``,
parentheses, one-value ``IN`` turned into ``=``); check() compares canonical forms, so these
tests pin the rule "render, let the database normalise, parse: equal" for all inputs.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import (
    Boolean,
    Column,
    Engine,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.schema import CreateIndex

from sqlaopt.indexes import Condition, eq, ge, gt, in_, is_null, le, lt, ne, not_null
from sqlaopt.indexes._predicates import (
    PredicateParseError,
    canonical,
    parse_predicate,
    predicate_sql,
)
from sqlaopt.indexes._render import offline_dialect

TYPES: dict[str, Any] = {
    "s": Text(),
    "v": String(20),
    "n": Integer(),
    "d": Numeric(10, 3),
    "b": Boolean(),
}
table = Table("t", MetaData(), *(Column(name, type_) for name, type_ in TYPES.items()))

# Text without NUL (PostgreSQL text cannot hold it).
texts = st.text(
    st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=8
)
values: dict[str, st.SearchStrategy[Any]] = {
    "s": texts,
    "v": texts,
    "n": st.integers(-(2**31) + 1, 2**31 - 1),
    "d": st.decimals(min_value=-9999, max_value=9999, places=3, allow_nan=False),
    "b": st.booleans(),
}
COMPARE = [eq, ne, lt, le, gt, ge]


@st.composite
def conditions(draw: st.DrawFn) -> Condition:
    column = draw(st.sampled_from(sorted(TYPES)))
    kind = draw(st.sampled_from(["compare", "in", "null", "not null"]))
    if column == "b" and kind in ("compare", "in"):
        return eq("b", draw(values["b"]))
    if kind == "compare":
        return draw(st.sampled_from(COMPARE))(column, draw(values[column]))
    if kind == "in":
        return in_(column, draw(st.lists(values[column], min_size=1, max_size=4)))
    return is_null(column) if kind == "null" else not_null(column)


predicates = st.lists(conditions(), min_size=1, max_size=4)


def render(conds: list[Condition], dialect: Any) -> str:
    where = predicate_sql(conds, dict(table.c.items()))
    compiled = where.compile(  # type: ignore[union-attr]
        dialect=dialect, compile_kwargs={"include_table": False, "literal_binds": True}
    )
    return str(compiled)


def pg_literal(value: Any, column: str) -> str:
    """A value as PostgreSQL's deparser writes it next to ``column``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'::text"
    if value < 0:
        return f"'{value}'::{'integer' if column == 'n' else 'numeric'}"
    return f"{value}" if column == "n" else f"({value})::numeric"


def pg_style(condition: Condition) -> str:
    """How ``pg_get_expr`` spells a condition: casts, ANY (ARRAY[...]), parentheses."""
    column = f"({condition.column})::text" if condition.column == "v" else condition.column
    if condition.op in ("is null", "is not null"):
        return f"({condition.column} {condition.op.upper()})"
    if condition.op == "in":
        assert isinstance(condition.value, tuple)
        items = ", ".join(pg_literal(v, condition.column) for v in condition.value)
        return f"({column} = ANY ((ARRAY[{items}])::text[]))"
    if condition.column == "b":
        return condition.column if condition.value else f"(NOT {condition.column})"
    return f"({column} {condition.op} {pg_literal(condition.value, condition.column)})"


@given(predicates)
def test_postgresql_normalised_spelling_parses_back(conds: list[Condition]) -> None:
    spelled = "(" + " AND ".join(pg_style(c) for c in conds) + ")"
    assert canonical(parse_predicate(spelled)) == canonical(conds)


@given(predicates)
def test_rendered_predicate_parses_back_on_postgresql(conds: list[Condition]) -> None:
    # The dialect sqlaopt renders SQL text with ('%' and '\\' single, as the server reads them).
    dialect = offline_dialect("postgresql")
    assert canonical(parse_predicate(render(conds, dialect))) == canonical(conds)


@given(predicates)
def test_rendered_predicate_parses_back_on_sqlite(conds: list[Condition]) -> None:
    # SQLite stores booleans as 1/0, and so does SQLAlchemy's rendering for it.
    expected = [
        Condition(c.column, c.op, int(c.value)) if isinstance(c.value, bool) else c for c in conds
    ]
    rendered = render(conds, offline_dialect("sqlite"))
    assert canonical(parse_predicate(rendered)) == canonical(expected)


@pytest.mark.parametrize(
    ("spelled", "expected"),
    [
        # Real pg_get_expr output (PostgreSQL 15), see notes/index-facts.md.
        ("status::text = 'completed'::text", [eq("status", "completed")]),
        (
            "status::text = ANY (ARRAY['confirmed'::character varying, "
            "'pending'::character varying]::text[])",
            [in_("status", ["pending", "confirmed"])],
        ),
        (
            "((status)::text = ANY ((ARRAY['confirmed'::character varying, "
            "'pending'::character varying])::text[]))",
            [in_("status", ["confirmed", "pending"])],
        ),
        (
            "flag = false AND n IS NULL AND amount < 1.5 AND n <= '-2'::integer",
            [eq("flag", False), is_null("n"), lt("amount", Decimal("1.5")), le("n", -2)],
        ),
        (
            "amount > 100::numeric AND txt IS NOT NULL AND role::text <> 'x'::text",
            [gt("amount", 100), not_null("txt"), ne("role", "x")],
        ),
        ("'completed' = status", [eq("status", "completed")]),
        ("status::text = 'it''s'::text", [eq("status", "it's")]),
        ("\"Status\" IN ('a')", [eq("status", "a")]),
        ("appointments.status IN ('a', 'b')", [in_("status", ["a", "b"])]),
        ("is_active", [eq("is_active", True)]),
        ("NOT is_active", [eq("is_active", False)]),
    ],
)
def test_known_spellings(spelled: str, expected: list[Condition]) -> None:
    assert canonical(parse_predicate(spelled)) == canonical(expected)


@pytest.mark.parametrize(
    "spelled",
    ["a = 1 OR b = 2", "lower(name) = 'x'", "a = b", "a LIKE 'x%'", "a = ", "(a = 1"],
)
def test_what_the_spec_cannot_produce_is_refused(spelled: str) -> None:
    with pytest.raises(PredicateParseError):
        parse_predicate(spelled)


def test_true_is_not_the_number_one() -> None:
    assert canonical([eq("a", True)]) != canonical([eq("a", 1)])
    assert canonical([eq("a", 1)]) == canonical([eq("a", Decimal("1.000"))])


# Hypothesis runs the same statements once per example: repetition by design, not an N+1.
@pytest.mark.nplusone(mode="off")
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(conds=predicates)
def test_live_postgresql_round_trip(pg_engine: Engine, conds: list[Condition]) -> None:
    """PostgreSQL stores the predicate and hands back its own spelling: still equal."""
    with pg_engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TABLE IF NOT EXISTS t "
                "(s text, v varchar(20), n integer, d numeric(10,3), b boolean)"
            )
        )
        where = predicate_sql(conds, dict(table.c.items()))
        conn.execute(CreateIndex(Index("ix_roundtrip", table.c.n, postgresql_where=where)))
        stored = conn.execute(
            text(
                "SELECT pg_get_expr(indpred, indrelid, true) FROM pg_index "
                "WHERE indexrelid = to_regclass('ix_roundtrip')"
            )
        ).scalar_one()
        conn.execute(text("DROP INDEX ix_roundtrip"))
    assert canonical(parse_predicate(stored)) == canonical(conds), stored
