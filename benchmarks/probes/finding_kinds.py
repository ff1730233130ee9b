"""What issue 13's finding kinds add on the hot paths.

    uv run python benchmarks/probes/finding_kinds.py

(1) the per-SELECT check every mode pays (is this a statement whose joined collections can
multiply rows?), on a real execution context; (2) one read of a loaded collection, plain and
while a scope watches it for unused eager loads. ``timeit``, best of 5.
"""

from __future__ import annotations

import timeit
from typing import Any

from sqlalchemy import create_engine, event, select
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.pool import StaticPool

import sqlaopt
from sqlaopt.booking import build_sample
from sqlaopt.booking.models import Appointment, Base, User
from sqlaopt.detect import _eager
from sqlaopt.detect._scope import Scope, Settings

N = 200_000


def per_call(function: Any) -> float:
    return min(timeit.repeat(function, number=N, repeat=5)) / N


def main() -> None:
    engine = create_engine("sqlite://", poolclass=StaticPool)
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        build_sample(session)
    contexts: list[Any] = []
    event.listen(engine, "before_cursor_execute",
                 lambda conn, cursor, sql, parameters, context, many: contexts.append(context))
    with Session(engine) as session:
        session.execute(select(Appointment.status).where(Appointment.id == 1)).one()
    context, scope = contexts[-1], Scope(Settings("log"))
    empty = per_call(lambda: None)
    check = per_call(lambda: _eager.watch_rows(scope, context, "")) - empty
    print(f"(1) row-explosion check on a plain SELECT: {check * 1e9:.0f} ns")
    with Session(engine) as session:
        user = session.scalars(select(User).options(selectinload(User.appointments))).first()
        plain = per_call(lambda: user.appointments) - empty
        session.expunge_all()
        with sqlaopt.detect("record"):
            user = session.scalars(select(User).options(selectinload(User.appointments))).first()
            watched = per_call(lambda: user.appointments) - empty
            user.appointments  # noqa: B018  (read: no report)
    print(f"(2) read of a loaded collection: {plain * 1e9:.0f} ns plain, "
          f"{watched * 1e9:.0f} ns watched")


if __name__ == "__main__":
    main()
