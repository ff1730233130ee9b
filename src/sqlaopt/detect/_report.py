"""What a scope found: :class:`Detection` and :class:`Report`."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Detection", "Kind", "Report"]

Kind = Literal["lazy_load", "column_load", "repeated_statement"]
_VERBS = {
    "lazy_load": "lazy-loaded",
    "column_load": "column-loaded",
    "repeated_statement": "queried",
}


@dataclass(eq=False)
class Detection:
    """One N+1: the same load repeated ``count`` times from one place in a scope.

    ``count`` keeps growing while the scope runs; it is final once the scope has ended.
    """

    kind: Kind
    """``"lazy_load"``, ``"column_load"`` or ``"repeated_statement"``."""
    model: str
    """Class name of the model whose attribute was loaded (or that the statement selects)."""
    relationship: str | None
    """The relationship's attribute name; the column's for column loads; None for statements."""
    count: int
    """How many times it happened in the scope."""
    location: str
    """``"path/to/file.py:LINE in function"`` of the innermost application frame."""
    suggestion: str
    """A paste-ready fix, e.g.
    ``selectinload(User.appointments).joinedload(Appointment.client)``."""
    statement: str
    """The SQL that was repeated."""
    context: str | None = None
    """What the scope was serving, e.g. ``"GET /appointments"`` under the middleware."""
    batched: bool = False
    """True when :func:`sqlaopt.batch` already loaded it for all peers in one statement per
    ``max_batch`` keys (``count`` is then the instances served): worth fixing for good, never
    an error by itself."""

    @property
    def target(self) -> str:
        """``"Model.relationship"``, or ``"Model"`` for a repeated statement."""
        return f"{self.model}.{self.relationship}" if self.relationship else self.model

    def as_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (what log records carry as ``extra``)."""
        return {
            "kind": self.kind,
            "model": self.model,
            "relationship": self.relationship,
            "count": self.count,
            "location": self.location,
            "suggestion": self.suggestion,
            "statement": self.statement,
            "context": self.context,
            "batched": self.batched,
        }

    def __str__(self) -> str:
        where = f" [{self.context}]" if self.context else ""
        sql = re.sub(r"\s+", " ", self.statement).strip()
        what = (f"batch-loaded for {self.count} instances" if self.batched  # sqlaopt.batching
                else f"{_VERBS[self.kind]} {self.count} times")
        return (
            f"N+1 {self.kind}: {self.target} {what} at "
            f"{self.location}{where}; fix: {self.suggestion}; SQL: {sql}"
        )


@dataclass(eq=False)
class Report:
    """What one scope saw: its detections and how many SQL statements ran in it."""

    detections: list[Detection] = field(default_factory=list)
    """One entry per distinct N+1, in the order they reached the threshold."""
    statements: int = 0
    """SQL statements executed in the scope (nested scopes included once they end)."""

    def __str__(self) -> str:
        if not self.detections:
            return f"no N+1 ({self.statements} statements)"
        lines = "\n".join(f"  {d}" for d in self.detections)
        return f"{len(self.detections)} N+1 ({self.statements} statements):\n{lines}"
