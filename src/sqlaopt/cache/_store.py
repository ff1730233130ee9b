"""The installed cache: a backend behind the failure policy, and key names.

Every backend call goes through :meth:`Store._call`: an exception (Redis down, a timeout)
makes that one statement or call run uncached, opens a breaker for ``RETRY_SECONDS`` (so a
slow Redis costs one timeout a second, not one per query) and logs one WARNING per
``WARN_SECONDS``. A version bump that fails is kept and sent before anything else reaches the
backend again; until then this process reads nothing from it.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Iterable
from typing import Any

from sqlalchemy.util import await_only

from ._backends import Backend
from ._state import count, logger
from ._tables import ALL

__all__ = ["FAILED", "Store", "current", "set_current"]

FAILED: Any = object()
"""What a backend call returns when the backend failed."""

Versions = dict[str, str]


class Store:
    """A backend, a namespace, the failure breaker and the bumps still to send."""

    RETRY_SECONDS = 1.0
    WARN_SECONDS = 60.0
    MAX_UNSENT = 10_000

    def __init__(self, backend: Backend, namespace: str) -> None:
        self.backend = backend
        self.namespace = namespace
        self.prefix = f"sqlaopt:{namespace}:"
        self._down_until = 0.0
        self._warned_at = -math.inf
        self._unsent: set[str] = set()
        self._lock = threading.Lock()

    def entry_key(self, digest: str) -> str:
        return f"{self.prefix}e:{digest}"

    def lock_key(self, entry_key: str) -> str:
        return f"{entry_key}:lock"

    def _version_keys(self, tables: Iterable[str]) -> tuple[list[str], list[str]]:
        names = sorted({*tables, ALL})
        return names, [f"{self.prefix}t:{name}" for name in names]

    # ------------------------------------------------------------------------- reading

    def read(self, tables: Iterable[str], entry_key: str | None, in_greenlet: bool
             ) -> tuple[Versions, bytes | None] | Any:
        """Current versions of ``tables`` (and the epoch) and the entry; FAILED on failure."""
        names, keys = self._version_keys(tables)
        found = self._call("read", (keys, entry_key), in_greenlet)
        return found if found is FAILED else (dict(zip(names, found[0], strict=True)), found[1])

    async def aread(self, tables: Iterable[str], entry_key: str | None
                    ) -> tuple[Versions, bytes | None] | Any:
        names, keys = self._version_keys(tables)
        found = await self._acall("read", (keys, entry_key))
        return found if found is FAILED else (dict(zip(names, found[0], strict=True)), found[1])

    def write(self, entry_key: str, value: bytes, ttl: float, in_greenlet: bool) -> bool:
        return self._call("write", (entry_key, value, ttl), in_greenlet) is not FAILED

    async def awrite(self, entry_key: str, value: bytes, ttl: float) -> bool:
        return await self._acall("write", (entry_key, value, ttl)) is not FAILED

    def acquire(self, lock_key: str, seconds: float, in_greenlet: bool) -> str | None:
        token = self._call("acquire", (lock_key, seconds), in_greenlet)
        return "local" if token is FAILED else token

    async def aacquire(self, lock_key: str, seconds: float) -> str | None:
        token = await self._acall("acquire", (lock_key, seconds))
        return "local" if token is FAILED else token

    def release(self, lock_key: str, token: str, in_greenlet: bool) -> None:
        self._call("release", (lock_key, token), in_greenlet)

    async def arelease(self, lock_key: str, token: str) -> None:
        await self._acall("release", (lock_key, token))

    # ------------------------------------------------------------------------ bumping

    def bump(self, tables: Iterable[str], in_greenlet: bool) -> None:
        """Give ``tables`` new versions: entries that read them are never served again."""
        names = sorted(tables)
        if not names:
            return
        keys = [f"{self.prefix}t:{name}" for name in names]
        if self._call("bump", (keys,), in_greenlet) is FAILED:
            self._keep_unsent(keys)
            return
        count(None, "invalidations", len(names))
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("sqlaopt cache: invalidated %s", ", ".join(names))

    def _keep_unsent(self, keys: list[str]) -> None:
        with self._lock:
            self._unsent.update(keys)
            if len(self._unsent) > self.MAX_UNSENT:
                self._unsent = {f"{self.prefix}t:{ALL}"}  # every entry depends on the epoch

    def _take_unsent(self) -> list[str]:
        with self._lock:
            keys, self._unsent = sorted(self._unsent), set()
        return keys

    # ------------------------------------------------------------------------ failures

    def _call(self, name: str, args: tuple[Any, ...], in_greenlet: bool) -> Any:
        if time.monotonic() < self._down_until:
            return FAILED
        unsent = self._take_unsent() if self._unsent else []
        try:
            if in_greenlet and self.backend.io:
                if unsent:
                    await_only(self.backend.abump(unsent))
                    self._sent(unsent)
                return await_only(getattr(self.backend, "a" + name)(*args))
            if unsent:
                self.backend.bump(unsent)
                self._sent(unsent)
            return getattr(self.backend, name)(*args)
        except Exception as error:  # the application never sees a cache failure
            self._failed(error, unsent)
            return FAILED

    async def _acall(self, name: str, args: tuple[Any, ...]) -> Any:
        if time.monotonic() < self._down_until:
            return FAILED
        unsent = self._take_unsent() if self._unsent else []
        try:
            if not self.backend.io:
                if unsent:
                    self.backend.bump(unsent)
                    self._sent(unsent)
                return getattr(self.backend, name)(*args)
            if unsent:
                await self.backend.abump(unsent)
                self._sent(unsent)
            return await getattr(self.backend, "a" + name)(*args)
        except Exception as error:  # the application never sees a cache failure
            self._failed(error, unsent)
            return FAILED

    def _sent(self, keys: list[str]) -> None:
        count(None, "invalidations", len(keys))
        logger.debug("sqlaopt cache: sent the invalidation of %s", ", ".join(keys))

    def _failed(self, error: Exception, unsent: list[str]) -> None:
        if unsent:
            self._keep_unsent(unsent)
        now = time.monotonic()
        self._down_until = now + self.RETRY_SECONDS
        count(None, "errors")
        if now - self._warned_at >= self.WARN_SECONDS:
            self._warned_at = now
            logger.warning(
                "sqlaopt cache: %r failed (%s: %s); statements and calls run uncached, "
                "retrying every %.0f s (next warning in %.0f s at most)", self.backend,
                type(error).__name__, error, self.RETRY_SECONDS, self.WARN_SECONDS)


_current: Store | None = None


def current() -> Store | None:
    return _current


def set_current(store: Store | None) -> Store | None:
    """Install ``store`` (or none); returns the previous one."""
    global _current
    previous, _current = _current, store
    return previous
