"""Spec entries validate on construction: every malformed input is a clear IndexSpecError."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sqlaopt._errors import SqlaoptError
from sqlaopt.indexes import (
    MAX_NAME_LENGTH,
    REPORT,
    Condition,
    ExclusionSpec,
    IndexSpec,
    IndexSpecError,
    Spec,
    date,
    date_trunc,
    eq,
    in_,
    is_null,
    not_null,
    tsrange,
)
from sqlaopt.indexes._spec import validate_name

VALID_NAME = re.compile(r"[a-z_][a-z0-9_]*")


def test_index_spec_error_is_a_sqlaopt_error() -> None:
    assert issubclass(IndexSpecError, SqlaoptError)


@given(st.text(alphabet="abcxyz_019AZ -$é", max_size=80))
def test_a_name_is_valid_exactly_when_lowercase_identifier_of_at_most_63(name: str) -> None:
    expected = bool(VALID_NAME.fullmatch(name)) and len(name) <= MAX_NAME_LENGTH
    try:
        validate_name(name)
    except IndexSpecError:
        assert not expected
    else:
        assert expected


def test_too_long_name_says_why() -> None:
    name = "idx_" + "x" * 60
    with pytest.raises(IndexSpecError, match=r"64 characters; PostgreSQL keeps only 63"):
        IndexSpec(name, "payments", ["status"])


def test_uppercase_name_is_refused() -> None:
    with pytest.raises(IndexSpecError, match="lower-case"):
        IndexSpec("Idx_Payments", "payments", ["status"])


def test_duplicate_names_across_the_spec() -> None:
    first = IndexSpec("idx_a", "payments", ["status"])
    second = IndexSpec("idx_a", "users", ["email"])
    with pytest.raises(IndexSpecError, match="'idx_a' is used twice"):
        Spec([first, second])


@pytest.mark.parametrize("unit", ["weak", "WEEK", "fortnight", ""])
def test_bad_date_trunc_unit(unit: str) -> None:
    with pytest.raises(IndexSpecError, match="unknown date_trunc unit"):
        date_trunc(unit, "created_at")


def test_bad_unit_suggests_the_close_one() -> None:
    with pytest.raises(IndexSpecError, match="did you mean 'week'"):
        date_trunc("weak", "created_at")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"columns": []}, "at least one key part"),
        ({"columns": ["status", "status"]}, "appears twice"),
        ({"columns": [42]}, "a key part is a column name"),
        ({"columns": ["status"], "using": "bitmap"}, "unknown access method"),
        ({"columns": ["status"], "using": "gist", "unique": True}, "only btree"),
        ({"columns": ["a", "b"], "using": "hash"}, "exactly one key part"),
        ({"columns": ["a"], "using": "brin", "include": ["b"]}, "cannot INCLUDE"),
        ({"columns": ["a"], "include": ["a"]}, "both a key column and included"),
        ({"columns": [tsrange("a", "b")]}, "needs using='gist'"),
        ({"columns": ["a"], "where": "status = 'completed'"}, "never a raw SQL string"),
        ({"columns": ["a"], "where": [("status", "completed")]}, "not a Condition"),
        ({"columns": [" a"]}, "non-empty string"),
    ],
)
def test_malformed_index_specs(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(IndexSpecError, match=message):
        IndexSpec("idx_x", "payments", **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (lambda: eq("status", None), "is_null"),  # type: ignore[arg-type]
        (lambda: eq("status", [1]), "must be str, int"),  # type: ignore[arg-type]
        (lambda: in_("status", []), "at least one value"),
        (lambda: in_("status", "ab"), "not a string"),
        (lambda: Condition("status", "like", "a%"), "unknown condition operator"),
        (lambda: Condition("", "=", 1), "needs a column name"),
        (lambda: eq("x", float("nan")), "NaN"),
    ],
)
def test_malformed_conditions(factory: object, message: str) -> None:
    with pytest.raises(IndexSpecError, match=message):
        factory()  # type: ignore[operator]


def test_exclusion_validation() -> None:
    with pytest.raises(IndexSpecError, match="unknown operator"):
        ExclusionSpec("ex", "appointments", [("barber_id", "==")])
    with pytest.raises(IndexSpecError, match=r"\(key part, operator\)"):
        ExclusionSpec("ex", "appointments", ["barber_id"])  # type: ignore[list-item]


def test_gist_index_duplicating_an_exclusion_constraint_is_refused() -> None:
    # The report's idx_appointments_time_range next to the constraint that replaces it.
    gist = IndexSpec(
        "idx_appointments_time_range",
        "appointments",
        ["barber_id", tsrange("start_time", "end_time")],
        using="gist",
        where=in_("status", ["confirmed", "pending"]),
    )
    with pytest.raises(IndexSpecError, match="duplicates the GiST index"):
        Spec([*REPORT, gist])


def test_where_shorthands_normalise_to_conditions() -> None:
    spec = IndexSpec(
        "idx_x",
        "t",
        ["a"],
        where={"status": "completed", "kind": ("b", "a"), "deleted_at": None, "n": 3},
    )
    assert spec.conditions == (
        eq("status", "completed"),
        in_("kind", ["b", "a"]),
        is_null("deleted_at"),
        eq("n", 3),
    )
    assert IndexSpec("idx_y", "t", ["a"], where=not_null("a")).conditions == (not_null("a"),)


def test_entries_are_immutable_and_hashable() -> None:
    entry = IndexSpec("idx_x", "t", ["a", date("b")], where=eq("c", Decimal("1.5")))
    assert hash(entry) == hash(
        IndexSpec("idx_x", "t", ("a", date("b")), where=[eq("c", Decimal("1.5"))])
    )
    with pytest.raises(AttributeError):
        entry.name = "other"  # type: ignore[misc]


def test_spec_lookup_only_and_without() -> None:
    assert REPORT["no_double_booking"].table == "appointments"
    assert len(REPORT.only("no_double_booking")) == 1
    assert "no_double_booking" not in REPORT.without("no_double_booking")
    with pytest.raises(KeyError, match="did you mean 'no_double_booking'"):
        REPORT["no_double_bookings"]
    with pytest.raises(IndexSpecError, match="no entry named"):
        REPORT.without("idx_nope")


def test_describe_reads_like_sql() -> None:
    assert REPORT["idx_payments_daily_analytics"].describe() == (
        "payments (date(created_at), amount) WHERE status = 'completed'"
    )
    assert REPORT["no_double_booking"].describe() == (
        "appointments EXCLUDE USING gist (barber_id WITH =, tsrange(start_time, end_time, '[)') "
        "WITH &&) WHERE status IN ('confirmed', 'pending')"
    )
