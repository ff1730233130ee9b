"""Decorators that run each call of a sync or async function inside a block (a scope, a batch
block): what ``sqlaopt.detect(...)`` and ``sqlaopt.batch(...)`` do when they decorate."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

import wrapt

__all__ = ["each_call_inside"]

F = TypeVar("F", bound=Callable[..., Any])
H = TypeVar("H")


def each_call_inside(
    function: F, name: str, enter: Callable[[], H], leave: Callable[[H], None]
) -> F:
    """``function`` wrapped so that each call runs between ``enter()`` and ``leave(handle)``;
    ``name`` (e.g. ``"sqlaopt.batch(...)"``) is for the error when it is not callable."""
    if not callable(function):
        raise TypeError(f"{name} decorates a function or method (sync or async); "
                        f"got {type(function).__name__} {function!r}")
    if inspect.iscoroutinefunction(function):

        @wrapt.decorator
        async def run_async(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            handle = enter()
            try:
                return await wrapped(*args, **kwargs)
            finally:
                leave(handle)

        return run_async(function)  # type: ignore[return-value]

    @wrapt.decorator
    def run(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        handle = enter()
        try:
            return wrapped(*args, **kwargs)
        finally:
            leave(handle)

    return run(function)  # type: ignore[return-value]
