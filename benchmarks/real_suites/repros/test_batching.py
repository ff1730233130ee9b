"""Shape `in-list-batching` (issue 9 rule 6), and the guard that keeps `.first()` loops real.

1. Batching: a loop over chunks of one id list, one ``IN (...)`` SELECT per chunk, is reported
   today as ``repeated_statement`` (``_hook._target`` keys a statement by its compiled SQL; a
   POSTCOMPILE IN list compiles to the same string whatever its length, and nothing looks at
   the parameters). Rule 6: not an N+1. Fails on sqlaopt 2e01b7d.
2. Guard: ``Query.first()`` / ``.limit(1)`` in a loop compiles to ``LIMIT ? OFFSET ?``: that
   is a per-item fetch, not paging. In ihatemoney, history.py:80 ``version.previous`` (a
   Continuum query ending in ``.first()``) runs once per version: a real N+1. A paging rule
   must not silence it (paging = one statement whose offset or keyset advances with a limit
   > 1). Passes today; must keep passing.
3. Per-item IN lists, from ihatemoney's ``import_bills``: one ``WHERE name IN (<this bill's
   owers>)`` per bill. The lists differ per item and overlap (the same people owe many bills):
   a per-item query, fixable with one query for all names. Rule 6 as worded ("a loop whose
   statements each carry an IN list of more than one value") would silence it; this test says
   it stays reported. Passes today.
"""

from __future__ import annotations

import mini_app
from sqlalchemy import select
from sqlalchemy.orm import Session

import sqlaopt


def names_in_chunks(session: Session, ids: list[int], size: int) -> list[str]:
    names: list[str] = []
    for start in range(0, len(ids), size):       # batching: disjoint chunks of one list
        chunk = ids[start:start + size]
        names += session.scalars(select(mini_app.Parent.name)
                                 .where(mini_app.Parent.id.in_(chunk))).all()
    return names


def latest_child_of_each(session: Session, parent_ids: list[int]) -> list[str]:
    names = []
    for parent_id in parent_ids:                   # a per-item fetch, LIMIT 1 OFFSET 0
        child = session.scalars(select(mini_app.Child).where(mini_app.Child.parent_id ==
                                parent_id).order_by(mini_app.Child.id.desc())).first()
        names.append(child.name)
    return names


def owers_per_bill(session: Session, bills: list[list[str]]) -> int:
    found = 0
    for owers in bills:                            # per-item IN lists, overlapping values
        found += len(session.scalars(select(mini_app.Parent)
                                     .where(mini_app.Parent.name.in_(owers))).all())
    return found


def test_chunked_in_lists_are_batching():
    engine = mini_app.make_engine(parents=9)
    with Session(engine) as session, sqlaopt.detect("record") as report:
        assert len(names_in_chunks(session, list(range(1, 10)), size=3)) == 9
    assert report.detections == [], str(report)


def test_first_in_a_loop_is_still_an_n_plus_one():
    engine = mini_app.make_engine()
    with Session(engine) as session, sqlaopt.detect("record") as report:
        latest_child_of_each(session, [1, 2, 3])
    [detection] = report.detections
    assert detection.kind == "repeated_statement" and detection.count == 3


def test_per_item_in_lists_are_still_an_n_plus_one():
    engine = mini_app.make_engine()
    bills = [["parent 1", "parent 2"], ["parent 2", "parent 3"], ["parent 1", "parent 3"]]
    with Session(engine) as session, sqlaopt.detect("record") as report:
        assert owers_per_bill(session, bills) == 6
    [detection] = report.detections
    assert detection.kind == "repeated_statement" and detection.count == 3
