"""Shape `duplicate-reports` (issue 9 rule 1): one place, several detections in one scope.

The count key is (kind, target, lane, whole call-site key) (``_hook._observe``), and the
call-site key is every user frame up to the scope's anchor (``_callsite._walk_user_frames``).
So the same (kind, target, location) is reported once per distinct outer stack:

1. ihatemoney ``get_pretty_bills`` calls the helper ``Person.query.get`` on two lines of one
   loop body (models.py:363 and :364): two ``repeated_statement Person at models.py:610 in
   get`` detections in the same test (23 tests).
2. ihatemoney ``test_logs_for_common_actions`` GETs /history from four lines: the history
   loop is reported once per request line (x2, x3 for the same location in 30 tests).

Rule 1 wants one detection per (kind, target, location) per scope, count summed (rule 8 adds
a ``loop`` location so that two different loops reaching one helper stay two; for case 1 the
lead must say whether two calling lines inside one loop body are one loop, as asserted here,
or two). Fails on sqlaopt 2e01b7d.
"""

from __future__ import annotations

import mini_app
from sqlalchemy.orm import Session

import sqlaopt


def test_two_lines_of_one_loop_reaching_one_helper():
    engine = mini_app.make_engine()
    with Session(engine) as session, sqlaopt.detect("record") as report:
        mini_app.describe_children(session)
    assert len(report.detections) == 1, str(report)
    assert report.detections[0].count == 20


def test_one_loop_reached_from_two_call_sites():
    engine = mini_app.make_engine()
    with sqlaopt.detect("record") as report:
        with Session(engine) as session:
            mini_app.total_children(session)                 # first request
        with Session(engine) as session:
            mini_app.total_children(session)                 # second request, another line
    assert len(report.detections) == 1, str(report)
    assert report.detections[0].count == 10
