"""The exception classes of :mod:`sqlaopt.structure`."""

from __future__ import annotations

from .._errors import SqlaoptError

__all__ = ["MigrationError", "ReadOnlyViewError", "StructureError"]


class StructureError(SqlaoptError, ValueError):
    """A declaration does not fit the schema or the database it is used with, or the database
    lacks what an operation needs. Raised before anything is changed."""


class ReadOnlyViewError(SqlaoptError):
    """A flush tried to insert, update or delete rows of a materialized view's ORM class."""


class MigrationError(SqlaoptError):
    """The online migration to a partitioned table stopped: verification failed, or the table
    cannot be swapped as it is. The old table is untouched and still in use."""
