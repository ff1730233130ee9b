"""Listeners that exist only while something uses them.

sqlaopt adds nothing to SQLAlchemy's events when nothing is on: the detector's cursor hook,
the slow-statement timer, the eager-load watch and the batch loader are each registered by
the first user (a scope, a block, ``install()``) and removed by the last.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = ["WhileUsed"]


class WhileUsed:
    """Calls ``switch(True)`` when the first user arrives and ``switch(False)`` when the last
    leaves; thread-safe."""

    __slots__ = ("_lock", "_switch", "_users")

    def __init__(self, switch: Callable[[bool], None]) -> None:
        self._switch = switch
        self._lock = threading.Lock()
        self._users = 0

    def use(self) -> None:
        with self._lock:
            if self._users == 0:
                self._switch(True)
            self._users += 1

    def done(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0:
                self._switch(False)
