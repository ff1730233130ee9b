"""The one "did you mean" rule: near misses and extensions, never names that merely share
letters."""

from __future__ import annotations

import difflib

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Column, Integer, MetaData, Table

from sqlaopt._names import CUTOFF, closest, did_you_mean
from sqlaopt.indexes import REPORT, IndexSpecError, apply


@pytest.mark.parametrize(
    ("name", "candidates", "expected"),
    [
        ("clients", ["payments", "users"], None),  # 0.53: shares letters only
        ("end_time", ["start_time", "status"], None),  # mapping one to the other is wrong
        ("paymnets", ["payments", "users"], "payments"),
        ("weak", ["week", "day"], "week"),
        ("Day", ["day", "week"], "day"),
        ("services", ["services_offered", "appointments"], "services_offered"),
        ("user", ["user_organizations"], None),  # a prefix, but a quarter of the name
        ("last_visit", ["last_visit_date", "created_at"], "last_visit_date"),
        ("payment", ["payments", "payment_id"], "payments"),
    ],
)
def test_suggestions(name: str, candidates: list[str], expected: str | None) -> None:
    assert closest(name, candidates) == expected
    assert (f"(did you mean {expected!r}?)" in did_you_mean(name, candidates)) if expected else (
        did_you_mean(name, candidates) == ""
    )


names = st.text(alphabet="abcdeilmnopstu_", min_size=1, max_size=12)


@given(name=names, candidates=st.lists(names, max_size=6))
def test_a_suggestion_is_a_candidate_that_is_close_by_the_rule(
    name: str, candidates: list[str]
) -> None:
    found = closest(name, candidates)
    if found is None:
        return
    assert found in candidates and found != name
    ratio = difflib.SequenceMatcher(None, name.lower(), found.lower()).ratio()
    shorter, longer = sorted((name.lower(), found.lower()), key=len)
    extension = longer.startswith(shorter) and len(shorter) >= 4 and 2 * len(shorter) >= len(longer)
    assert ratio >= CUTOFF or extension or name.lower() == found.lower()


def test_a_missing_table_is_not_offered_an_unrelated_one() -> None:
    """The models lack ``clients``: the message lists the tables, suggests none of them."""
    metadata = MetaData()
    for table in ("payments", "users"):
        Table(table, metadata, Column("id", Integer, primary_key=True))
    with pytest.raises(IndexSpecError) as raised:
        apply(metadata, REPORT.only("idx_clients_retention_analysis"))
    message = str(raised.value)
    assert "no table 'clients' in the target (tables: payments, users)" in message
    assert "did you mean" not in message
