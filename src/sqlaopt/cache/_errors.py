"""The exception classes of :mod:`sqlaopt.cache`."""

from __future__ import annotations

from .._errors import SqlaoptError

__all__ = ["CacheError", "CacheKeyError"]


class CacheError(SqlaoptError, ValueError):
    """The cache was configured or used wrongly: an unknown backend, a bad ``sqlaopt_cache``
    value, a cached ``text()`` SELECT that does not declare its tables, a bad decorator
    argument. Raised before anything is cached or installed."""


class CacheKeyError(CacheError, TypeError):
    """An argument of a :func:`~sqlaopt.cache.cached` function cannot be part of a cache key.

    Raised when the function is called, before it runs; the message names the argument, its
    type, what keys accept and how to leave the argument out (``ignore=``).
    """


for _public in (CacheError, CacheKeyError):
    _public.__module__ = "sqlaopt.cache"
