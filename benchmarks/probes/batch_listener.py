"""What batching's ``do_orm_execute`` listener costs per statement, and a lone instance's peer
lookup, measured directly (no database time in the figures).

    uv run python benchmarks/probes/batch_listener.py

1. the listener called on a captured top-level select's ORMExecuteState, against a no-op
   function (the part of a statement's cost that is batching's own);
2. ``peers_of`` for an instance loaded alone by ``get()`` in a Session holding 600 others
   (what every lazy load that cannot be batched pays).
"""

from __future__ import annotations

import timeit
from typing import Any

from sqlalchemy import create_engine, event, inspect, select
from sqlalchemy.orm import ORMExecuteState, Session
from sqlalchemy.pool import StaticPool

import sqlaopt
from sqlaopt.batching._hook import on_orm_execute
from sqlaopt.batching._peers import peers_of
from sqlaopt.booking import generate
from sqlaopt.booking.models import Appointment, Payment

CALLS = 100_000


def captured_state(engine: Any) -> ORMExecuteState:
    states: list[ORMExecuteState] = []
    grab = states.append
    event.listen(Session, "do_orm_execute", grab)
    try:
        with Session(engine) as session:
            session.execute(select(Appointment).where(Appointment.id == 1)).all()
    finally:
        event.remove(Session, "do_orm_execute", grab)
    return states[0]


def main() -> None:
    engine = create_engine("sqlite://", poolclass=StaticPool)
    generate(engine, appointments=3_000, progress=False)
    state = captured_state(engine)
    with sqlaopt.batch():
        for name, function in (("no-op", lambda s: None), ("batching listener", on_orm_execute),
                               ("no-op", lambda s: None), ("batching listener", on_orm_execute)):
            seconds = timeit.timeit(lambda f=function: f(state), number=CALLS)
            print(f"{name:>18}: {seconds / CALLS * 1e6:.2f} µs per top-level statement")
    with Session(engine) as session:
        held = [session.get(Payment, i) for i in range(1, 301)]
        held += [session.get(Appointment, i) for i in range(1, 301)]
        lone = session.get(Payment, 400)
        lone_state = inspect(lone)
        seconds = timeit.timeit(lambda: peers_of(session, lone_state), number=CALLS // 10)
        print(f"peers_of, a lone instance among {len(held):,}: "
              f"{seconds / (CALLS // 10) * 1e6:.1f} µs")


if __name__ == "__main__":
    main()
