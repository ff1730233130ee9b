"""Stampede protection in one process: one computation per key at a time.

The first caller of a key leads; the others wait (at most ``WAIT_SECONDS``) for it to finish
and then look the entry up again. Waiting under asyncio happens in a worker thread, so the
event loop keeps running the leader.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Hashable

from sqlalchemy.util import await_only

__all__ = ["Flight", "join"]

WAIT_SECONDS = 30.0

_flights: dict[Hashable, Flight] = {}
_lock = threading.Lock()


class Flight:
    """One computation in progress."""

    __slots__ = ("_done", "key")

    def __init__(self, key: Hashable) -> None:
        self.key = key
        self._done = threading.Event()

    def finish(self) -> None:
        with _lock:
            if _flights.get(self.key) is self:
                del _flights[self.key]
        self._done.set()

    def wait(self, in_greenlet: bool) -> None:
        if in_greenlet:
            loop = asyncio.get_running_loop()
            await_only(loop.run_in_executor(None, self._done.wait, WAIT_SECONDS))
        else:
            self._done.wait(WAIT_SECONDS)

    async def await_done(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._done.wait, WAIT_SECONDS)


def join(key: Hashable) -> tuple[Flight, bool]:
    """The flight for ``key`` and whether this caller leads it (and must ``finish`` it)."""
    with _lock:
        found = _flights.get(key)
        if found is not None:
            return found, False
        found = _flights[key] = Flight(key)
        return found, True
