"""Shapes `test-loop-requests` and `test-loop-direct`: the loop is the test's, not the app's.

Seen in ihatemoney: test_settle_button posts one /settle per transaction (each request runs
has_member -> Person.query.get once), test_deactivated_member_bill_display posts one
/members/add per name, test_bills_with_calculation posts three bills then GETs each; and
test_settle_button calls project.get_transactions_to_settle_bill() directly once per
iteration of its own loop. Each request (or call) runs the application's line once; the
detector's key for the statement is the whole stack up to the test function, so the test's
loop line makes every iteration "the same place", and the count reaches the threshold.

Rule 7 of issue 9: repetition across requests is never an N+1, and a loop whose repeating
frame is in a test module is the test's own repetition: not reported by default. Each test
below asserts that rule and fails on sqlaopt 2e01b7d (the detection is listed in the
assertion message).
"""

from __future__ import annotations

import mini_app
import pytest
from sqlalchemy.orm import Session


@pytest.mark.nplusone(mode="record")
def test_requests_in_a_test_loop_are_not_an_n_plus_one(engine, nplusone):
    app = mini_app.wsgi_app(engine)
    for parent_id in (1, 2, 3):                       # the test's loop: one request each
        mini_app.wsgi_get(app, f"/parents/{parent_id}")
    assert nplusone.detections == [], str(nplusone)


@pytest.mark.nplusone(mode="record")
def test_direct_calls_in_a_test_loop_are_not_an_n_plus_one(engine, nplusone):
    with Session(engine) as session:
        for parent_id in (1, 2, 3):                   # the test's loop: one app call each
            mini_app.parent_name(session, parent_id)
    assert nplusone.detections == [], str(nplusone)


@pytest.mark.nplusone(mode="record")
def test_an_app_loop_inside_one_request_is_still_reported(engine, nplusone):
    """The counterpart that must keep failing the default mode: the loop is the app's."""
    with Session(engine) as session:
        assert mini_app.total_children(session) == 10
    [detection] = nplusone.detections
    assert (detection.kind, detection.target) == ("lazy_load", "Parent.children")
