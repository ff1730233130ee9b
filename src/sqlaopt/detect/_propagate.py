"""Threads and executor work carry the context of the code that started them (under pytest).

``asyncio.to_thread`` already runs its function in a copy of the caller's context; a
``threading.Thread`` or ``concurrent.futures`` work item (which ``loop.run_in_executor`` uses)
starts with an empty one, so an N+1 inside a thread a test started would belong to no scope.
While propagation is on, ``Thread.start`` and ``ThreadPoolExecutor.submit`` run their target in
a copy of the starter's context, as Python 3.14's ``Thread(context=...)`` and the free-threaded
build do. The pytest plugin turns it on; production code is left as it is.
"""

from __future__ import annotations

import contextvars
from concurrent.futures import ThreadPoolExecutor
from threading import Thread
from typing import Any

import wrapt

__all__ = ["propagate_context"]

_enabled = False
_patched = False


def _start(wrapped: Any, instance: Thread, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if _enabled and "run" not in vars(instance):
        context = contextvars.copy_context()
        run = instance.run
        instance.run = lambda: context.run(run)  # type: ignore[method-assign]
    return wrapped(*args, **kwargs)


def _submit(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if _enabled and args:
        args = (contextvars.copy_context().run, *args)
    return wrapped(*args, **kwargs)


def propagate_context(on: bool) -> None:
    """Turn context propagation into threads and executor work on or off."""
    global _enabled, _patched
    _enabled = on
    if on and not _patched:
        _patched = True
        wrapt.wrap_function_wrapper(Thread, "start", _start)
        wrapt.wrap_function_wrapper(ThreadPoolExecutor, "submit", _submit)
