"""Portable query building blocks: ``overlaps`` and ``date_bucket``.

Both return ordinary SQLAlchemy column expressions, usable in ``select()``, ``where()``,
``group_by()`` and ORM queries alike, and both render SQL an index can serve.
"""

from ._buckets import UNITS, DateBucketUnitError, date_bucket
from ._overlaps import IntervalError, overlaps

__all__ = ["UNITS", "DateBucketUnitError", "IntervalError", "date_bucket", "overlaps"]
