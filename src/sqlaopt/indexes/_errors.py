"""The exception and warning classes of :mod:`sqlaopt.indexes`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._errors import SqlaoptError

if TYPE_CHECKING:
    from ._create import CreateResult

__all__ = ["IndexBuildError", "IndexLockError", "IndexSpecError", "IndexSpecWarning"]


class IndexSpecError(SqlaoptError, ValueError):
    """A spec entry is malformed, or does not fit the schema or dialect it is used with.

    Raised before anything is changed: a call that raises it has attached, emitted or
    created nothing.
    """

    def __init__(self, message: str, *, cli_message: str | None = None) -> None:
        super().__init__(message)
        #: The message with its hints in ``sqlaopt indexes`` syntax (``--rename OLD=NEW``
        #: rather than ``rename={...}``); the same message when it has no such hint.
        self.cli_message = cli_message or message


class IndexBuildError(SqlaoptError):
    """:func:`sqlaopt.indexes.create` could not build one or more entries.

    Every other entry was still attempted; :attr:`result` holds what happened to each.
    """

    def __init__(self, message: str, result: CreateResult) -> None:
        super().__init__(message)
        #: The :class:`~sqlaopt.indexes.CreateResult` of the whole run.
        self.result = result


class IndexLockError(SqlaoptError, TimeoutError):
    """:func:`sqlaopt.indexes.create` waited longer than its ``lock_timeout`` for the build lock
    (another session is building indexes on the same tables). Nothing was built."""


class IndexSpecWarning(UserWarning):
    """Issued by ``apply(..., on_missing="warn")`` for each entry that did not fit the schema."""
