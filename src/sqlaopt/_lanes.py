"""Lanes: which thread, asyncio task or copied context a piece of work runs in."""

from __future__ import annotations

import itertools
import threading
import weakref
from asyncio import current_task
from asyncio.events import _get_running_loop
from contextvars import ContextVar

__all__ = ["lane"]

_lane: ContextVar[tuple[weakref.ref[object], int] | None] = ContextVar("sqlaopt_lane", default=None)
_numbers = itertools.count(1)


def lane() -> int:
    """A number for the running asyncio task, thread, or piece of work run in a copy of
    another's context (``asyncio.to_thread``, executor work under the pytest plugin), that no
    later one gets, even when CPython hands a finished thread's or task's id to the next."""
    loop = _get_running_loop()
    owner: object = current_task(loop) if loop is not None else None
    if owner is None:
        owner = threading.current_thread()
    # The value lives in the context: a copy made for another thread or task carries the
    # original owner's, which the identity check tells apart.
    owned = _lane.get()
    if owned is not None and owned[0]() is owner:
        return owned[1]
    number = next(_numbers)
    _lane.set((weakref.ref(owner), number))
    return number
