"""The errors of :mod:`sqlaopt.watch`."""

from __future__ import annotations

from .._errors import SqlaoptError

__all__ = ["NotEnabledError", "WatchError"]


class WatchError(SqlaoptError, ValueError):
    """Bad input to a :mod:`sqlaopt.watch` function: the message names what was wrong, what is
    accepted and the closest valid value."""


class NotEnabledError(SqlaoptError):
    """The database does not offer what was asked for (``pg_stat_statements``, HypoPG,
    ``performance_schema``); the message says how to enable it, and :attr:`fix` holds just
    that part."""

    def __init__(self, message: str, fix: str) -> None:
        super().__init__(f"{message}. {fix}")
        #: What to run or configure to enable it.
        self.fix = fix
