"""Slow statements: a statement slower than a scope's ``slow_ms`` is a finding of its own.

The one hook notes when a statement of such a scope starts (an attribute on its execution
context); an ``after_cursor_execute`` listener, registered only while a scope or ``install()``
asks for it, measures it. A slow one is reported like an N+1: at the application's line (the
same location machinery), one detection per place with a count and the slowest time, acted on
by the scope's mode (so log mode aggregates it), and with the statement's plan when a planner
is given (``sqlaopt.watch.PlanSampler``: EXPLAIN without ANALYZE, on its own connection,
rate-limited). Timing is not a test verdict: slow statements never reach an enclosing test.
"""

from __future__ import annotations

import time
from typing import Any, Final

from sqlalchemy import Engine, event
from sqlalchemy.engine import Connection, ExecutionContext

from .._while_used import WhileUsed
from ._callsite import describe
from ._emit import emit, internal_error
from ._report import Detection
from ._scope import Scope
from ._sql import fingerprint
from ._suggest import entity_name

__all__ = ["acquire", "release", "start"]

_STARTED: Final = "_sqlaopt_started"
_PLAN_LINES: Final = 3


def start(context: ExecutionContext, scope: Scope) -> None:
    """The statement of ``context`` starts now, in ``scope`` (whose settings ask for it)."""
    context.__dict__[_STARTED] = (scope, time.perf_counter())


def _on_after_execute(
    conn: Connection, cursor: Any, statement: str, parameters: Any,
    context: ExecutionContext, executemany: bool,
) -> None:
    started = context.__dict__.pop(_STARTED, None)
    if started is None:
        return
    scope, at = started
    elapsed_ms = (time.perf_counter() - at) * 1000
    slow_ms = scope.settings.slow_ms
    if slow_ms is None or elapsed_ms < slow_ms:
        return
    try:
        _report(scope, context, statement, parameters, elapsed_ms)
    except Exception as error:  # a slow-statement log never breaks the application
        internal_error(error)


def _report(scope: Scope, context: ExecutionContext, statement: str, parameters: Any,
            elapsed_ms: float) -> None:
    site = describe(scope.anchor, 3)
    compiled = context.compiled
    shape = fingerprint(compiled.string if compiled is not None else statement)
    place = ("slow_statement", shape, site.location, site.loop)

    def make() -> Detection:
        location = str(site.location) if site.location is not None else "<unknown>"
        model = entity_name(getattr(compiled, "statement", None)) or "?"
        return Detection("slow_statement", model, None, 0, location,
                         _fix(scope, statement, parameters), statement)

    new = scope.slow(place, make, elapsed_ms)
    if new is not None and scope.emit_at_once and scope.settings.mode != "raise":
        emit(new, scope.settings.mode)


def _fix(scope: Scope, statement: str, parameters: Any) -> str:
    planner = scope.settings.plans
    plan = planner.plan(statement, parameters) if planner is not None else None
    shown = " / ".join(line.strip() for line in plan.splitlines()[:_PLAN_LINES]) if plan else ""
    where = f"plan: {shown}; " if shown else ""
    return (f"{where}find the index it needs with `sqlaopt db advise`, or see what it reads "
            "with sqlaopt.explain.explain()")


def _switch(on: bool) -> None:
    if on:
        event.listen(Engine, "after_cursor_execute", _on_after_execute)
    else:
        event.remove(Engine, "after_cursor_execute", _on_after_execute)


_timer = WhileUsed(_switch)
acquire = _timer.use
"""Measure statements from now on (a scope or ``install()`` with ``slow_ms``)."""
release = _timer.done
