"""The exception and warning classes of :mod:`sqlaopt.indexes`."""

from __future__ import annotations

from .._errors import SqlaoptError

__all__ = ["IndexBuildError", "IndexSpecError", "IndexSpecWarning"]


class IndexSpecError(SqlaoptError, ValueError):
    """A spec entry is malformed, or does not fit the schema or dialect it is used with.

    Raised before anything is changed: a call that raises it has attached, emitted or
    created nothing.
    """


class IndexBuildError(SqlaoptError):
    """:func:`sqlaopt.indexes.create` could not build one or more entries.

    Every other entry was still attempted; :attr:`result` holds what happened to each.
    """

    def __init__(self, message: str, result: object) -> None:
        super().__init__(message)
        #: The :class:`~sqlaopt.indexes.CreateResult` of the whole run.
        self.result = result


class IndexSpecWarning(UserWarning):
    """Issued by ``apply(..., on_missing="warn")`` for each entry that did not fit the schema."""
