"""``tooling``: the statements of a monitoring call are not the application's SQL."""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

__all__ = ["tooling"]

P = ParamSpec("P")
R = TypeVar("R")


def tooling(function: Callable[P, R]) -> Callable[P, R]:
    """Run ``function`` in a fresh context.

    sqlaopt's detection scopes and statement counters live in context variables; a
    monitoring call reads catalogs and EXPLAINs the same statement many times, which is
    tooling, not an N+1 of the application. In a fresh context none of them sees it (found
    when the pytest plugin failed a test that called :func:`report` on a repeated settings
    read).
    """

    @functools.wraps(function)
    def isolated(*args: P.args, **kwargs: P.kwargs) -> R:
        return contextvars.Context().run(function, *args, **kwargs)

    return isolated
