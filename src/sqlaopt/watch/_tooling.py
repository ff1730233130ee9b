"""``tooling``: the statements of a monitoring call are not the application's SQL."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from ..detect._hook import unobserved

__all__ = ["tooling"]

P = ParamSpec("P")
R = TypeVar("R")


def tooling(function: Callable[P, R]) -> Callable[P, R]:
    """Run ``function`` unseen by the N+1 detector.

    A monitoring call reads catalogs and EXPLAINs the same statement many times, which is
    tooling, not an N+1 of the application (found when the pytest plugin failed a test that
    called :func:`report` on a repeated settings read). Statement counters still count it.
    """

    @functools.wraps(function)
    def isolated(*args: P.args, **kwargs: P.kwargs) -> R:
        with unobserved():
            return function(*args, **kwargs)

    return isolated
