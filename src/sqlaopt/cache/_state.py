"""Per-context state (bypass blocks, recordings of cached functions) and the counters."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, fields

__all__ = ["CacheStats", "Recording", "bypassing", "count", "logger", "recordings", "stats"]

logger = logging.getLogger("sqlaopt.cache")

bypassing: ContextVar[bool] = ContextVar("sqlaopt_cache_bypass", default=False)


class Recording:
    """What a cached function read while it ran: each table's version, read before the
    table's first statement, and the reason, if any, its result must not be stored."""

    __slots__ = ("unsafe", "versions")

    def __init__(self) -> None:
        self.versions: dict[str, str] = {}
        self.unsafe: str | None = None

    def add(self, versions: Mapping[str, str]) -> None:
        for table, token in versions.items():
            if self.versions.setdefault(table, token) != token:
                self.spoil(f"table {table} changed while the function ran")

    def spoil(self, reason: str) -> None:
        if self.unsafe is None:
            self.unsafe = reason


recordings: ContextVar[tuple[Recording, ...]] = ContextVar("sqlaopt_cache_recordings",
                                                           default=())


@dataclass(frozen=True)
class CacheStats:
    """Counters of this process, since :func:`~sqlaopt.cache.install`."""

    hits: int = 0
    """Statements and function calls answered from the cache."""
    misses: int = 0
    """Cacheable statements and calls that ran (nothing valid was cached)."""
    stores: int = 0
    """Entries written."""
    bypasses: int = 0
    """Cacheable statements and calls that ran uncached on purpose: inside ``bypass()``, after
    uncommitted writes to their tables, under a snapshot older than the cache, locking reads."""
    errors: int = 0
    """Backend failures (each one made a statement or call run uncached)."""
    invalidations: int = 0
    """Table versions bumped: after commits, autocommit writes and ``invalidate()``."""

    @property
    def hit_ratio(self) -> float | None:
        """``hits / (hits + misses)``, or None before the first cacheable read."""
        lookups = self.hits + self.misses
        return self.hits / lookups if lookups else None


_FIELDS = [f.name for f in fields(CacheStats)]
_counts: dict[str | None, dict[str, int]] = {}
_lock = threading.Lock()
MAX_NAMESPACES = 1000
OTHER_NAMESPACES = "(other namespaces)"
"""Where namespaces past the first :data:`MAX_NAMESPACES` are counted (tenants can be many)."""


def count(namespace: str | None, field: str, amount: int = 1) -> None:
    """Add to a counter; ``namespace`` None for the ones that belong to no entry namespace
    (errors, invalidations)."""
    with _lock:
        counts = _counts.get(namespace)
        if counts is None:
            if len(_counts) >= MAX_NAMESPACES:
                namespace = OTHER_NAMESPACES
            counts = _counts.setdefault(namespace, dict.fromkeys(_FIELDS, 0))
        counts[field] += amount


def stats(namespace: str | None = None) -> CacheStats:
    """The counters of one entry namespace, or with None the totals of this process."""
    with _lock:
        if namespace is not None:
            return CacheStats(**_counts.get(namespace, {}))
        return CacheStats(**{f: sum(c[f] for c in _counts.values()) for f in _FIELDS})


def reset() -> None:
    with _lock:
        _counts.clear()
