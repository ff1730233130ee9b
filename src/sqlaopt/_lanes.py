"""Lanes: which thread, asyncio task or copied context a piece of work runs in."""

from __future__ import annotations

import itertools
import threading
import weakref
from asyncio import current_task
from asyncio.events import _get_running_loop
from contextvars import ContextVar

__all__ = ["lane"]

_lane: ContextVar[tuple[object, int] | None] = ContextVar("sqlaopt_lane", default=None)
_numbers = itertools.count(1)
_this_thread = threading.local()


class _ThreadMark:
    """Stands for one thread. It lives in the thread's local storage for as long as the thread,
    and a lane holds it: while any context still refers to a finished thread's lane, no later
    thread can have its mark (unlike a thread id or an object address, which CPython reuses)."""

    __slots__ = ()


def lane() -> int:
    """A number for the running asyncio task, thread, or piece of work run in a copy of
    another's context (``asyncio.to_thread``, executor work under the pytest plugin), that no
    later one gets, even when CPython hands a finished thread's or task's id to the next."""
    # Runs for every observed statement: a thread-local mark instead of
    # threading.current_thread() (a Python call) and a weak reference to call.
    owned = _lane.get()
    loop = _get_running_loop()
    task = current_task(loop) if loop is not None else None
    if task is None:
        try:
            mark = _this_thread.mark
        except AttributeError:
            mark = _this_thread.mark = _ThreadMark()
        if owned is not None and owned[0] is mark:
            return owned[1]
        return _new_lane(mark)
    # A task is held weakly (the application's tasks must be freed when they finish); a dead
    # reference matches no later task. The value lives in the context: a copy made for another
    # thread or task carries the original owner's, which the identity check tells apart.
    if owned is not None and type(owned[0]) is weakref.ref and owned[0]() is task:
        return owned[1]
    return _new_lane(weakref.ref(task))


def _new_lane(owner: object) -> int:
    number = next(_numbers)
    _lane.set((owner, number))
    return number
