"""The public entry points of the detector: scopes, process defaults, allow lists, budgets."""

from __future__ import annotations

import contextlib
import inspect
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from types import FrameType, TracebackType
from typing import Any, TypeVar

from .. import batching
from .._decorate import each_call_inside
from .._errors import NPlusOneError, QueryBudgetError
from ._callsite import is_test_code
from ._emit import DEFAULT_LOG_WINDOW, flush_log_summaries, set_log_window
from ._hook import (
    QueryCount,
    close_counter,
    enter,
    install_defaults,
    leave,
    open_counter,
    test_running,
)
from ._report import END_OF_SCOPE_KINDS, Report
from ._scope import Scope, Settings, active_scope, allowed_patterns, check_patterns

__all__ = ["allow", "assert_max_queries", "count_queries", "detect", "install", "uninstall"]

F = TypeVar("F", bound=Callable[..., Any])


class detect:
    """Open an N+1 detection scope, as a context manager or as a decorator.

    ``with sqlaopt.detect() as report:`` gives the scope's :class:`~sqlaopt.Report`. As a
    decorator (sync or async functions) each call runs in a fresh scope. One ``detect`` object
    may be used by many threads and tasks at once: each gets its own scope.

    :param mode: ``"raise"`` (raise :class:`~sqlaopt.NPlusOneError` at the access that reaches
        the threshold), ``"warn"``, ``"log"`` (both when the scope ends, with final counts),
        ``"record"`` (collect only) or ``"off"``.
    :param threshold: how many repeats from one place make an N+1 (default 2).
    :param allow: patterns such as ``"Appointment.client"``, ``"Appointment.*"``, ``"*.client"``
        whose detections are ignored.
    :param slow_ms: also report statements slower than this many milliseconds
        (``"slow_statement"``), with their plan when ``plans`` is a
        ``sqlaopt.watch.PlanSampler``.
    :param unused_eager: report eager loads nothing read (``"unused_eager_load"``); None (the
        default) means on in ``raise``, ``warn`` and ``record`` modes, off in ``log``.
    :param explosion_factor: rows per root entity that make a joined load a
        ``"row_explosion"`` (with at least 1,000 rows; default 10).

    Row-by-row writes, row explosions and unused eager loads are found too (see
    docs/findings.md); ``"raise"`` mode raises those when the block ends.
    """

    def __init__(
        self, mode: str = "raise", *, threshold: int = 2, allow: Iterable[str] = (),
        slow_ms: float | None = None, plans: Any = None, unused_eager: bool | None = None,
        explosion_factor: float = 10.0,
    ) -> None:
        self.settings = Settings.checked(mode, threshold, allow, slow_ms=slow_ms, plans=plans,
                                         unused_eager=unused_eager,
                                         explosion_factor=explosion_factor)

    def __enter__(self) -> Report:
        anchor = _with_frame(sys._getframe(1))
        scope = enter(self.settings, anchor=anchor, opener=self,
                      owns=_owns(anchor.f_code.co_filename))
        return scope.report

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        scope = active_scope.get()
        while scope is not None and (scope.opener is not self or scope.closed):
            scope = scope.parent
        if scope is not None:
            _leave_raising(scope, failing=exc is not None)

    def __call__(self, function: F) -> F:
        settings = self.settings
        code = getattr(function, "__code__", None)
        filename = code.co_filename if code is not None else None
        # Whether the scope owns its detections depends on whether a test runs: at each call.
        return each_call_inside(
            function, "sqlaopt.detect(...)", lambda: enter(settings, owns=_owns(filename)),
            lambda scope: _leave_raising(scope, failing=sys.exc_info()[1] is not None))


def _leave_raising(scope: Scope, *, failing: bool) -> None:
    """Close the scope; in ``raise`` mode, raise what is found only when it ends (unused eager
    loads, row explosions, row-by-row writes), unless the block is already failing."""
    leave(scope)
    if scope.settings.mode != "raise" or failing:
        return
    found = [d for d in scope.actionable() if d.kind in END_OF_SCOPE_KINDS and not d.batched]
    if found:
        raise NPlusOneError(found)


def _owns(opener_file: str | None) -> bool:
    """A ``detect()`` block owns its detections, except one opened by application code while a
    test runs: the test's verdict includes what that block finds."""
    return not test_running() or is_test_code(opener_file)


def _with_frame(frame: FrameType) -> FrameType:
    """The frame running the ``with`` statement: inside a ``@contextmanager`` generator that is
    the caller of contextlib, since the generator is not on the stack while the block runs."""
    while frame.f_code.co_flags & inspect.CO_GENERATOR and frame.f_back is not None \
            and frame.f_back.f_code.co_filename == contextlib.__file__:
        frame = frame.f_back
        while frame.f_back is not None and frame.f_code.co_filename == contextlib.__file__:
            frame = frame.f_back
    return frame


def install(
    mode: str = "log", *, threshold: int = 2, allow: Iterable[str] = (),
    sample_rate: float = 1.0, log_window: float = DEFAULT_LOG_WINDOW, batch: bool = False,
    slow_ms: float | None = None, plans: Any = None, unused_eager: bool = False,
    explosion_factor: float = 10.0,
) -> None:
    """Detect N+1s process-wide, outside explicit scopes: each Session is its own scope.

    Meant for production: ``"log"`` writes a WARNING on the ``sqlaopt.nplusone`` logger the
    first time a distinct N+1 is found, then one summary record per ``log_window`` seconds
    for its repeats. ``sample_rate`` is the fraction of Sessions observed. ``batch=True`` also
    turns on :func:`sqlaopt.batch` process-wide (batched N+1s are still logged, once each).
    ``slow_ms`` also reports statements slower than that many milliseconds, at the
    application's line, with their plan when ``plans`` is a ``sqlaopt.watch.PlanSampler``.
    ``unused_eager=True`` also reports eager loads nothing read, judged when each Session's
    outermost transaction ends (it watches every loaded instance: see docs/findings.md for
    its cost); ``explosion_factor`` as in :func:`detect`. Calling it again replaces the
    settings (for sessions that begin a transaction afterwards); it is idempotent.
    """
    settings = Settings.checked(mode, threshold, allow, sample_rate=sample_rate,
                                slow_ms=slow_ms, plans=plans, unused_eager=unused_eager,
                                explosion_factor=explosion_factor)
    if isinstance(log_window, bool) or not isinstance(log_window, (int, float)) \
            or log_window < 0:
        raise ValueError(f"log_window must be a number of seconds >= 0; got {log_window!r}")
    batching.install(batch, flag="batch")
    set_log_window(log_window)
    install_defaults(settings)


def uninstall() -> None:
    """Undo :func:`install` (batching included, writing any pending log summaries);
    idempotent. Explicit scopes keep working."""
    batching.uninstall()
    install_defaults(None)
    flush_log_summaries()


@contextmanager
def allow(*patterns: str) -> Iterator[None]:
    """Ignore detections matching any pattern (``"Model.attr"``, fnmatch wildcards) in this block.

    >>> with sqlaopt.allow("Appointment.client", "*.payment"):
    ...     ...
    """
    token = allowed_patterns.set(allowed_patterns.get() + check_patterns(patterns))
    try:
        yield
    finally:
        allowed_patterns.reset(token)


@contextmanager
def count_queries() -> Iterator[QueryCount]:
    """Count the SQL statements run in the block (ORM, Core and flush alike).

    >>> with sqlaopt.count_queries() as queries:
    ...     session.scalars(select(User)).all()
    >>> queries.count, queries.statements
    """
    counter, token = open_counter()
    try:
        yield counter
    finally:
        close_counter(token)


@contextmanager
def assert_max_queries(n: int) -> Iterator[QueryCount]:
    """Raise :class:`~sqlaopt.QueryBudgetError`, listing the statements, if the block runs more
    than ``n`` SQL statements."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"the query budget must be a non-negative integer; got {n!r}")
    with count_queries() as counter:
        yield counter
    if counter.count > n:
        raise QueryBudgetError(n, counter.statements)
