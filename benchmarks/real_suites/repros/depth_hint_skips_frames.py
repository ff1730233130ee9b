"""Run as a script (a fresh process: the detector's depth hints are process-wide state).

Shape `wrong-location` (depth hint): ``_callsite._innermost_user_frame`` first tries the
learned hints ``(depth, code of the SQLAlchemy function the user frame called)`` and accepts
``sys._getframe(depth)`` when that frame runs the same code and its caller is a "user" frame,
without looking at the frames in between. A hint learned from a SELECT the ORM issues inside
a flush has, as its "user" frame, SQLAlchemy's generated ``<string>:2 in _prepare_impl``
(``_classify`` calls ``<string>`` application code) and as its code ``state_changes._go``, the
wrapper shared by every state-changing Session method, found several times on any commit
stack. A later SELECT from an ``after_flush`` listener whose stack happens to put a ``_go`` at
that depth is then attributed to ``<string>:2 in commit``: the listener's frames are skipped,
and the call-site key is cut short too. In ihatemoney this turned Continuum's after_flush
SELECTs (normally reported at versioning.py:39) into ``<string>:2 in commit`` in test_demo;
disabling hints (``_learn`` a no-op) gives versioning.py:39 back.

Prints the paddings at which the location is wrong; exits 1 if there is any. Reproduces on
SQLAlchemy 2.0.45 (paddings 5 and 8: ``<string>:2 in commit`` / ``_prepare_impl``) and on
2.1.9 (padding 8: reported at ``main``'s ``session.commit()`` line, the listener and helper
frames skipped): the hint is unsound whatever ``<string>`` is classified as.
"""

from __future__ import annotations

import sys
from pathlib import Path

from sqlalchemy import event, select
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).parent))
import mini_app

import sqlaopt


def select_at_depth(depth: int, session: Session) -> object:
    """An application helper that selects ``depth`` calls deep (to vary the stack depth)."""
    if depth:
        return select_at_depth(depth - 1, session)
    return session.execute(select(mini_app.ChildAudit)).first()


N_PLUS_ONE = ("lazy_load", "column_load", "repeated_statement")


def main() -> int:
    engine = mini_app.make_engine(parents=3)
    wrong = []
    with Session(engine) as session:
        with sqlaopt.detect("record"):
            select_at_depth(0, session)              # learns the hint (depth, Session.execute)
        parents = session.scalars(select(mini_app.Parent)).all()
        session.commit()
        with sqlaopt.detect("record"):                # learns (depth, state_changes._go)
            for parent in parents:
                session.add(mini_app.Child(name="late", parent=parent))
                session.commit()
        for padding in range(40):
            def listener(s: Session, context: object, padding: int = padding) -> None:
                select_at_depth(padding, s)
            event.listen(session, "after_flush", listener)
            with sqlaopt.detect("record") as report:
                for _ in range(2):
                    session.add(mini_app.Child(name="x"))
                    session.commit()
            event.remove(session, "after_flush", listener)
            locations = [d.location for d in report.detections  # N+1s, not the row-by-row
                         if d.kind in N_PLUS_ONE]                   # commits of the loop
            if locations and not all("select_at_depth" in loc for loc in locations):
                wrong.append((padding, locations))
    for padding, locations in wrong:
        print(f"padding {padding}: reported at {locations}")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
