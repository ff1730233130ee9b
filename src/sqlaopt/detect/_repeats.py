"""What the executions of one repeated statement have in common, to tell an N+1 from a batch.

A loop of one statement shape is an N+1 unless it is batching: pages (``LIMIT n`` with n > 1,
``OFFSET``, keyset conditions come with a LIMIT), or IN lists of several values that never
repeat a value (chunks of one list of ids). IN lists that share values are one query per item
(``WHERE name IN (<this bill's owers>)``): still an N+1. Parameters identical on every
execution mean the statement can run once, before the loop.
"""

from __future__ import annotations

from typing import Any, Final

from sqlalchemy.engine import ExecutionContext

from ._orm import in_list_values, limit_and_offset
from ._sql import carries_in_list, pages

__all__ = ["Repeats"]

_MAX_VALUES: Final = 10_000


class Repeats:
    """The executions of one statement shape from one call stack, so far."""

    __slots__ = ("batch", "digest", "overlap", "paged", "same", "values")

    def __init__(self) -> None:
        self.digest: int | None = None
        self.same = True
        self.values: set[Any] = set()
        self.batch = False
        self.overlap = False
        self.paged = False

    def add(self, context: ExecutionContext, statement: str, parameters: Any, first: bool,
            ) -> None:
        """One more execution."""
        digest = _digest(parameters)
        if first:
            self.digest = digest
        elif digest is None or digest != self.digest:
            self.same = False
        if not self.paged and pages(statement, *limit_and_offset(context)):
            self.paged = True
        if carries_in_list(statement) or self.values:
            self._in_list(in_list_values(context, statement))

    def _in_list(self, values: list[Any]) -> None:
        if len(values) > 1:
            self.batch = True
        try:
            if not self.overlap and any(v in self.values for v in values):
                self.overlap = True
            if len(self.values) < _MAX_VALUES:
                self.values.update(values)
        except TypeError:  # unhashable values: cannot tell, so not a batch
            self.overlap = True

    @property
    def batching(self) -> bool:
        """Pages, or IN lists that have not repeated a value (yet)."""
        return self.paged or (self.batch and not self.overlap)


def _digest(parameters: Any) -> int | None:
    try:
        values = tuple(parameters.values()) if isinstance(parameters, dict) else tuple(parameters)
        return hash(values)
    except Exception:  # unhashable values, or a value type whose __hash__ fails
        return None
