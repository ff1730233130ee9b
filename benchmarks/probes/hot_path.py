"""Microseconds spent by each step of the detector's per-statement path (one small select).

    uv run python benchmarks/probes/hot_path.py
"""

from __future__ import annotations

import timeit
from typing import Any

from sqlalchemy import Engine, create_engine, event, select
from sqlalchemy.orm import Session

import sqlaopt
from sqlaopt.booking import build_sample
from sqlaopt.booking.models import Appointment, Base
from sqlaopt.detect import _callsite, _hook, _orm
from sqlaopt.detect._scope import active_scope


def main() -> None:
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as s:
        build_sample(s)
    captured: dict[str, Any] = {}

    def grab(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        captured["context"] = context

    event.listen(Engine, "before_cursor_execute", grab)
    with Session(engine) as s:
        s.execute(select(Appointment.status).where(Appointment.id == 1)).one()
    event.remove(Engine, "before_cursor_execute", grab)
    context = captured["context"]
    n = 20_000

    def per_call(fn: Any) -> str:
        return f"{timeit.timeit(fn, number=n) / n * 1e6:.2f} µs"

    print("classify            ", per_call(lambda: _orm.classify(context)))
    print("capture (call site) ", per_call(lambda: _callsite.capture(None, 1)))
    with sqlaopt.detect("record"):
        scope = active_scope.get()
        assert scope is not None
        print("whole observe step  ", per_call(lambda: _hook._observe(scope, context, "x")))

    def one_select(s: Session) -> None:
        s.execute(select(Appointment.status).where(Appointment.id == 1)).one()

    with Session(engine) as s:
        for label in ("no detector", "record scope", "no detector"):
            scope_cm = sqlaopt.detect("record") if label == "record scope" else None
            if scope_cm:
                scope_cm.__enter__()
            print(f"one select, {label:12}", per_call(lambda: one_select(s))[:-3], "µs")
            if scope_cm:
                scope_cm.__exit__(None, None, None)


if __name__ == "__main__":
    main()
