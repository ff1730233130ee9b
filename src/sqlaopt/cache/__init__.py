"""Query result cache with exact invalidation, for sync and asyncio Sessions.

- :func:`install` / :func:`uninstall`: turn it on (in-process, or Redis) and off;
- ``.execution_options(sqlaopt_cache=600)`` on a ``select()``, ``Query`` or ``text()``
  (with ``sqlaopt_tables=...``): cache that statement's rows for 600 seconds;
- :func:`cached`: cache a service function's result;
- invalidation is automatic: every write through SQLAlchemy bumps its tables' versions after
  its transaction commits; :func:`invalidate` declares writes made elsewhere;
- :func:`bypass`, :func:`clear`, :func:`stats`.

See ``docs/cache.md``.
"""

from ._api import bypass, clear, install, invalidate, stats, uninstall
from ._backends import MemoryBackend
from ._errors import CacheError, CacheKeyError
from ._functions import cached
from ._redis import RedisBackend
from ._state import CacheStats

__all__ = [
    "CacheError",
    "CacheKeyError",
    "CacheStats",
    "MemoryBackend",
    "RedisBackend",
    "bypass",
    "cached",
    "clear",
    "install",
    "invalidate",
    "stats",
    "uninstall",
]
