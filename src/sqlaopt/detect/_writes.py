"""Row-by-row writes: the same INSERT, UPDATE or DELETE run once per row from one call stack.

The one hook hands every write that is not an ``executemany`` (SQLAlchemy's bulk forms and
insertmanyvalues batches are) to :func:`observe`. It is counted by (shape, lane, call stack)
like an N+1 and reported per place at the scope's threshold, on a count table of its own kind,
so it never changes an N+1 verdict. A flush writes many rows with one call: its statements
count once per flush, so a flush of 100 objects is one write and a ``flush()`` per iteration is
a row-by-row write.
"""

from __future__ import annotations

from sqlalchemy.engine import ExecutionContext

from .._lanes import lane
from ._callsite import capture, describe, is_library_code, is_test_code
from ._emit import emit
from ._orm import flush_number, write_kind, written_table
from ._report import Detection
from ._scope import MAX_COUNT_KEYS, Scope
from ._sql import fingerprint
from ._suggest import row_by_row_detection

__all__ = ["observe"]


def observe(scope: Scope, context: ExecutionContext, statement: str) -> None:
    """One write statement (not an executemany) in ``scope``."""
    kind = write_kind(context)
    if kind is None:
        return
    compiled = context.compiled
    shape = fingerprint(compiled.string if compiled is not None else statement)
    site = capture(scope.anchor, 4)
    if site is None:  # schema work
        return
    key = ("row_by_row_write", shape, lane(), site)
    flush = flush_number()
    if flush:
        if scope.flushes.get(key) == flush:
            return  # this flush already counted this write
        if len(scope.flushes) >= MAX_COUNT_KEYS:  # bounded: an older flush is over anyway
            scope.flushes.clear()
        scope.flushes[key] = flush
    found = scope.found.get(key)
    if found is not None:
        for detection in found:
            detection.count += 1
        return
    count = scope.count(key)
    if count >= scope.settings.threshold:
        _new(scope, key, kind, context, statement, shape, count, in_flush=flush > 0)


def _new(scope: Scope, key: tuple[object, ...], kind: str, context: ExecutionContext,
         statement: str, shape: str, count: int, *, in_flush: bool) -> None:
    site = describe(scope.anchor, 5)
    in_test = is_test_code(site.repeating_file)
    location = str(site.location) if site.location is not None else "<unknown>"
    loop = str(site.loop) if site.loop is not None and site.loop_elsewhere else None

    # A loop in a library (SQLAlchemy-Continuum writing version rows from its flush listener)
    # is not the application's to batch: reported, it failed 17 of ihatemoney's tests on a
    # fix nobody could make.
    in_library = is_library_code(site.repeating_file)

    def make() -> Detection | None:
        if in_library or (in_test and not scope.settings.test_loops):
            return None
        detection = row_by_row_detection(kind, written_table(context), in_flush, location,
                                         loop, statement)
        detection.in_test_code = in_test
        return detection

    place = ("row_by_row_write", shape, site.location, site.loop, False)
    new = scope.place(key, place, count, make)
    if new is not None and scope.emit_at_once and scope.settings.mode != "raise":
        emit(new, scope.settings.mode)
