"""Where table versions and entries live: the interface, and the in-process backend.

A backend stores opaque bytes under string keys the cache builds (the namespace is already in
them). Versions are random-looking tokens, never counters: a version that disappears (evicted,
server restarted) comes back as a fresh token, so an old entry can never match it again.
"""

from __future__ import annotations

import itertools
import threading
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Sequence

from ._errors import CacheError

__all__ = ["Backend", "MemoryBackend"]


class Backend(ABC):
    """Versions, entries and locks. Methods may raise on I/O failure; the cache turns any
    failure into an uncached query."""

    io = False
    """True when the ``a*`` methods do I/O and must be awaited (instead of the sync ones)
    under asyncio."""

    @abstractmethod
    def read(self, version_keys: Sequence[str], entry_key: str | None
             ) -> tuple[list[str], bytes | None]:
        """The current token of each version (created when missing) and the entry, if any."""

    @abstractmethod
    def write(self, entry_key: str, value: bytes, ttl: float) -> None:
        """Store an entry for ``ttl`` seconds."""

    @abstractmethod
    def bump(self, version_keys: Sequence[str]) -> None:
        """Give each version a new token."""

    def acquire(self, lock_key: str, seconds: float) -> str | None:
        """Take a lock shared across processes; None when another holder has it. Backends
        that live in one process need none (the per-process stampede guard is enough)."""
        return "local"

    def release(self, lock_key: str, token: str) -> None:  # noqa: B027  (optional hook)
        """Release a lock taken with :meth:`acquire`."""

    @abstractmethod
    def clear(self, prefix: str) -> int:
        """Delete every key starting with ``prefix``; returns how many."""

    def close(self) -> None:  # noqa: B027  (optional hook)
        """Release connections the backend opened itself."""

    async def aread(self, version_keys: Sequence[str], entry_key: str | None
                    ) -> tuple[list[str], bytes | None]:
        return self.read(version_keys, entry_key)

    async def awrite(self, entry_key: str, value: bytes, ttl: float) -> None:
        self.write(entry_key, value, ttl)

    async def abump(self, version_keys: Sequence[str]) -> None:
        self.bump(version_keys)

    async def aacquire(self, lock_key: str, seconds: float) -> str | None:
        return self.acquire(lock_key, seconds)

    async def arelease(self, lock_key: str, token: str) -> None:
        self.release(lock_key, token)


def positive_int(value: object, name: str) -> int:
    if type(value) is not int or value < 1:
        raise CacheError(f"{name} must be a positive int, not {value!r}")
    return value


class MemoryBackend(Backend):
    """The in-process backend: entries in a least-recently-used map bounded by count and
    bytes, versions in a dict. Right for one process, or when only this process writes to the
    database; several worker processes need :class:`RedisBackend` to see each other's writes.
    """

    _MAX_VERSIONS = 100_000

    def __init__(self, max_entries: int = 10_000, max_bytes: int = 64 * 2**20) -> None:
        self.max_entries = positive_int(max_entries, "max_entries")
        self.max_bytes = positive_int(max_bytes, "max_bytes")
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._bytes = 0
        self._versions: dict[str, str] = {}
        self._tokens = itertools.count(1)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MemoryBackend(max_entries={self.max_entries}, max_bytes={self.max_bytes})"

    def read(self, version_keys: Sequence[str], entry_key: str | None
             ) -> tuple[list[str], bytes | None]:
        with self._lock:
            versions = [self._versions.get(key) or self._new_version(key)
                        for key in version_keys]
            if entry_key is None:
                return versions, None
            found = self._entries.get(entry_key)
            if found is None:
                return versions, None
            if found[0] <= time.monotonic():
                self._drop(entry_key)
                return versions, None
            self._entries.move_to_end(entry_key)
            return versions, found[1]

    def write(self, entry_key: str, value: bytes, ttl: float) -> None:
        if len(value) > self.max_bytes:
            return
        with self._lock:
            if entry_key in self._entries:
                self._drop(entry_key)
            self._entries[entry_key] = (time.monotonic() + ttl, value)
            self._bytes += len(value)
            while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
                self._drop(next(iter(self._entries)))

    def bump(self, version_keys: Sequence[str]) -> None:
        with self._lock:
            for key in version_keys:
                self._new_version(key)

    def clear(self, prefix: str) -> int:
        with self._lock:
            doomed = [k for k in (*self._entries, *self._versions) if k.startswith(prefix)]
            for key in doomed:
                if key in self._entries:
                    self._drop(key)
                self._versions.pop(key, None)
            return len(doomed)

    def _new_version(self, key: str) -> str:
        if len(self._versions) >= self._MAX_VERSIONS:
            self._versions.clear()  # every version gets a fresh token: old entries never match
        token = self._versions[key] = str(next(self._tokens))
        return token

    def _drop(self, key: str) -> None:
        self._bytes -= len(self._entries.pop(key)[1])
