"""Shapes `flush-select-library` and `flush-select-orm`: SELECTs issued while a flush runs.

Seen in ihatemoney: SQLAlchemy-Continuum's after_flush (``update_version_validity``) selects
the previous version of every flushed object, reported as ``repeated_statement PersonVersion
at ihatemoney/versioning.py:39 in after_flush`` in 22 tests (19 of them fail the default mode
because of it, and in raise mode the NPlusOneError is raised inside ``flush()``); and in
``create_demo_project`` the unit of work's dependency sync (``sync.populate_dict``) loads an
expired Person's primary key inside an autoflush: ``column_load Person.id``.

``classify`` (``sqlaopt.detect._orm``) ignores only INSERT/UPDATE/DELETE/DDL contexts; a SELECT
run during a flush is classified like any other (STATEMENT, or COLUMN for the expired
attribute load), and nothing checks ``Session._flushing``. Issue 9 rule 3: any SELECT emitted
while a flush is in progress is never the application's N+1, in any mode. Each test fails on
sqlaopt 2e01b7d.
"""

from __future__ import annotations

import mini_app
import pytest
from sqlalchemy.orm import Session

import sqlaopt


@pytest.fixture
def engine():
    return mini_app.make_engine(parents=3)


def test_a_flush_listener_selecting_per_object(engine):
    with Session(engine) as session:
        mini_app.install_audit(session)
        with sqlaopt.detect("record") as report:
            session.add_all([mini_app.Child(name=f"new {i}") for i in range(3)])
            session.commit()                        # one flush: the listener selects 3 times
    # The loop's commits, one row each, are a row-by-row write: not the N+1 this is about.
    assert [d for d in report.detections if d.kind != "row_by_row_write"] == [], str(report)


def test_a_flush_listener_in_raise_mode_leaves_the_session_usable(engine):
    """In raise mode today the NPlusOneError escapes from flush(): the commit fails and the
    Session needs a rollback (PendingRollbackError on its next use)."""
    with Session(engine) as session:
        mini_app.install_audit(session)
        with sqlaopt.detect("raise"):
            session.add_all([mini_app.Child(name=f"new {i}") for i in range(3)])
            session.commit()
        assert session.scalars(mini_app.select(mini_app.Child)).first() is not None


def test_the_orm_loading_expired_keys_inside_a_flush(engine):
    """The loop body runs once per parent and reads nothing itself: each SELECT is the unit of
    work's, syncing child.parent_id from a parent whose attributes the previous commit
    expired."""
    with Session(engine) as session:
        parents = session.scalars(mini_app.select(mini_app.Parent)).all()
        session.commit()                            # expires every parent
        with sqlaopt.detect("record") as report:
            for parent in parents:
                session.add(mini_app.Child(name="late", parent=parent))
                session.commit()
    # The loop's commits, one row each, are a row-by-row write: not the N+1 this is about.
    assert [d for d in report.detections if d.kind != "row_by_row_write"] == [], str(report)
