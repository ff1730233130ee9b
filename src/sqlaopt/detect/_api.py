"""The public entry points of the detector: scopes, process defaults, allow lists, budgets."""

from __future__ import annotations

import contextlib
import inspect
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import Token
from types import FrameType, TracebackType
from typing import Any, TypeVar

import wrapt

from .. import batching
from .._errors import QueryBudgetError
from ._hook import QueryCount, close_counter, enter, install_defaults, leave, open_counter
from ._report import Report
from ._scope import Scope, Settings, allowed_patterns, check_patterns

__all__ = ["allow", "assert_max_queries", "count_queries", "detect", "install", "uninstall"]

F = TypeVar("F", bound=Callable[..., Any])


class detect:
    """Open an N+1 detection scope, as a context manager or as a decorator.

    ``with sqlaopt.detect() as report:`` gives the scope's :class:`~sqlaopt.Report`. Detections
    made inside belong to the innermost scope alone. As a decorator (sync or async functions)
    each call runs in a fresh scope.

    :param mode: ``"raise"`` (raise :class:`~sqlaopt.NPlusOneError` at the access that reaches
        the threshold), ``"warn"``, ``"log"`` (both when the scope ends, with final counts),
        ``"record"`` (collect only) or ``"off"``.
    :param threshold: how many repeats from one place make an N+1 (default 2).
    :param allow: patterns such as ``"Appointment.client"``, ``"Appointment.*"``, ``"*.client"``
        whose detections are ignored.
    """

    def __init__(
        self, mode: str = "raise", *, threshold: int = 2, allow: Iterable[str] = ()
    ) -> None:
        self.settings = Settings.checked(mode, threshold, allow)
        self._open: list[tuple[Scope, Token[Scope | None]]] = []

    def __enter__(self) -> Report:
        scope, token = enter(self.settings, anchor=_with_frame(sys._getframe(1)))
        self._open.append((scope, token))
        return scope.report

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        leave(*self._open.pop())

    def __call__(self, function: F) -> F:
        if not callable(function):
            raise TypeError(
                "sqlaopt.detect(...) decorates a function or method (sync or async); "
                f"got {type(function).__name__} {function!r}"
            )
        settings = self.settings
        if inspect.iscoroutinefunction(function):

            @wrapt.decorator
            async def run_async(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
                scope, token = enter(settings)
                try:
                    return await wrapped(*args, **kwargs)
                finally:
                    leave(scope, token)

            return run_async(function)  # type: ignore[return-value]

        @wrapt.decorator
        def run(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            scope, token = enter(settings)
            try:
                return wrapped(*args, **kwargs)
            finally:
                leave(scope, token)

        return run(function)  # type: ignore[return-value]


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
    mode: str = "log", *, threshold: int = 2, allow: Iterable[str] = (), batch: bool = False
) -> None:
    """Detect N+1s process-wide, outside explicit scopes: each Session is its own scope.

    Meant for production: ``"log"`` writes one WARNING per distinct N+1 per Session on the
    ``sqlaopt.nplusone`` logger the moment it is found. Calling it again replaces the settings
    (for sessions that begin a transaction afterwards); it is idempotent. ``batch=True`` also
    turns on :func:`sqlaopt.batch` process-wide (batched N+1s are still logged, once each).
    """
    settings = Settings.checked(mode, threshold, allow)
    batching.install(batch, flag="batch")
    install_defaults(settings)


def uninstall() -> None:
    """Undo :func:`install` (batching included); idempotent. Explicit scopes keep working."""
    batching.uninstall()
    install_defaults(None)


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
