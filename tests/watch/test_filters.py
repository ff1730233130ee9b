"""Reading PostgreSQL's deparsed conditions into index terms, and candidates from them."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sqlaopt.watch._candidates import Access, Candidate, candidates_for, covering, partial
from sqlaopt.watch._filters import SortKey, Term, parse_conjuncts, parse_sort_key
from sqlaopt.watch._specs import index_name, to_spec

FILTER = (
    "(((a.status)::text = ANY ('{confirmed,pending}'::text[])) AND (a.barber_id = $1) AND "
    "(date(a.start_time) = '2024-05-01'::date) AND (a.price > 10.5) AND "
    "((a.x = 1) OR (a.y = 2)) AND (28 = a.user_id) AND (a.z IS NULL) AND (a.w <> 3))"
)


def test_conjuncts_become_terms() -> None:
    terms = parse_conjuncts(FILTER, ["a", "b"])
    assert terms == [
        Term("in", "a", "status", False, "= ANY", "('{confirmed,pending}'::text[])", True),
        Term("eq", "a", "barber_id", False, "=", "$1", False),
        Term("eq", "a", "date(start_time)", True, "=", "'2024-05-01'::date", True),
        Term("range", "a", "price", False, ">", "10.5", True),
        Term("eq", "a", "user_id", False, "=", "28", True),  # flipped: column first
        Term("null", "a", "z", False, "IS NULL", "", True),
    ]  # the OR and the <> are no index terms


def test_joins_belong_to_both_sides() -> None:
    assert parse_conjuncts("(uo.user_id = users.id)", ["uo", "users"]) == [
        Term("join", "uo", "user_id", False, "=", "users.id", False),
        Term("join", "users", "id", False, "=", "uo.user_id", False),
    ]


def test_expressions_keep_their_text_without_the_alias() -> None:
    [term] = parse_conjuncts(
        "(((p.created_at AT TIME ZONE 'UTC'::text))::date >= '2024-01-01'::date)", ["p"])
    assert term.part == "((created_at AT TIME ZONE 'UTC'::text))::date" and term.is_expression
    assert parse_conjuncts("(lower((u.email)::text) = 'x'::text)", ["u"])[0].part == (
        "lower((email)::text)")


def test_sort_keys() -> None:
    assert parse_sort_key("a.start_time DESC", ["a"]) == SortKey("a", "start_time", True)
    assert parse_sort_key("a.id", ["a"]) == SortKey("a", "id", False)
    assert parse_sort_key("(date_trunc('week'::text, a.t))", ["a"]) is None
    assert parse_sort_key("a.id NULLS FIRST", ["a"]) is None


@given(st.text(max_size=60))
def test_unreadable_text_gives_no_terms_rather_than_wrong_ones(text: str) -> None:
    for term in parse_conjuncts(text, ["a"]):
        assert term.alias == "a" and term.part


def _access(*terms: Term, sort: tuple[SortKey, ...] = (), needed: frozenset[str] = frozenset()
            ) -> Access:
    return Access("public", "t", "t", terms, sort, needed)


def test_candidates_put_parameters_first_and_constants_last() -> None:
    access = _access(
        Term("eq", "t", "status", False, "=", "'done'::text", True),
        Term("eq", "t", "barber_id", False, "=", "$1", False),
        Term("range", "t", "start_time", False, ">=", "$2", False),
        sort=(SortKey("t", "start_time", False), SortKey("t", "id", False)),
    )
    keys = {tuple(p for p, _ in c.parts) for c in candidates_for(access)}
    assert keys == {("barber_id", "status"), ("barber_id", "status", "start_time"),
                    ("barber_id", "status", "start_time", "id")}


def test_variants() -> None:
    status = Term("in", "t", "status", False, "= ANY", "('{a,b}'::text[])", True)
    base = Candidate("public", "t", (("user_id", False), ("status", False), ("day", False)))
    narrow = partial(base, [status])
    assert narrow is not None
    assert narrow.parts == (("user_id", False), ("day", False))
    assert narrow.where == ("status = ANY ('{a,b}'::text[])",)
    param = Term("eq", "t", "status", False, "=", "$1", False)
    assert partial(base, [param]) is None  # a parameter can never be a predicate
    wide = covering(base, _access(needed=frozenset({"user_id", "status", "day", "price"})))
    assert wide is not None and wide.include == ("price",)
    assert covering(base, _access(needed=frozenset("abcde") | {"user_id"})) is None  # too wide
    spec, note = to_spec(narrow, index_name(narrow, set()))
    assert spec is not None and not note
    assert spec.name == "idx_t_user_id_day_partial"
    assert [(c.column, c.op, c.value) for c in spec.conditions] == [("status", "in", ("a", "b"))]


def test_index_names_are_valid_and_unique() -> None:
    long = Candidate("public", "appointments", tuple((f"column_number_{n}", False)
                                                     for n in range(6)))
    first = index_name(long, set())
    second = index_name(long, {first})
    assert len(first) <= 63 and len(second) <= 63 and first != second
    expression = Candidate("public", "payments", (("((created_at AT TIME ZONE 'UTC'::text))::date",
                                                   True),))
    spec, _ = to_spec(expression, index_name(expression, set()))
    assert spec is not None and str(spec.key_parts[0]) == "date(created_at)"
    odd = Candidate("public", "users", (("lower((email)::text)", True),))
    spec, note = to_spec(odd, "idx_users_lower")
    assert spec is None and "use the DDL" in note
