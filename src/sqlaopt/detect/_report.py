"""What a scope found: :class:`Detection` and :class:`Report`."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

__all__ = ["END_OF_SCOPE_KINDS", "MAX_DETECTIONS", "Detection", "Kind", "Report", "as_finding",
           "kind_label", "split_location"]

Kind = Literal["lazy_load", "column_load", "repeated_statement", "slow_statement",
               "unused_eager_load", "row_explosion", "row_by_row_write"]
_VERBS = {
    "lazy_load": "lazy-loaded {count} times",
    "column_load": "column-loaded {count} times",
    "repeated_statement": "queried {count} times",
    "slow_statement": "slow {count} times",
    "unused_eager_load": "eager-loaded for {count} instances and never read",
    "row_explosion": "joined-loaded into {count} rows",
    "row_by_row_write": "written row by row {count} times",
}
END_OF_SCOPE_KINDS: Final = frozenset({"unused_eager_load", "row_explosion",
                                       "row_by_row_write"})
"""The findings that are not N+1s (issue 13): ``raise`` mode raises them when the scope ends,
never in the middle of a load or a flush (where an exception would leave the Session
unusable), and under pytest they fail a test only with ``--sqlaopt-findings=fail``."""
MAX_DETECTIONS: Final = 1_000
"""A scope records at most this many distinct detections; ``Report.dropped`` counts the rest."""


@dataclass(eq=False)
class Detection:
    """One N+1: the same load repeated ``count`` times in a loop at one place in a scope.

    ``count`` keeps growing while the scope runs; it is final once the scope has ended.
    """

    kind: Kind
    """``"lazy_load"``, ``"column_load"``, ``"repeated_statement"`` (the N+1s),
    ``"slow_statement"`` (a statement slower than the scope's ``slow_ms``),
    ``"unused_eager_load"``, ``"row_explosion"`` or ``"row_by_row_write"`` (see
    docs/findings.md)."""
    model: str
    """Class name of the model whose attribute was loaded (or that the statement selects)."""
    relationship: str | None
    """The relationship's attribute name; the column's for column loads; None for statements."""
    count: int
    """How many times it happened in loops at this place in the scope (every call stack,
    thread and task that reached it in a loop, summed)."""
    location: str
    """``"path/to/file.py:LINE in function"`` of the innermost application frame."""
    suggestion: str
    """A paste-ready fix, e.g.
    ``selectinload(User.appointments).joinedload(Appointment.client)``."""
    statement: str
    """The SQL that was repeated."""
    context: str | None = None
    """What the scope was serving, e.g. ``"GET /appointments"`` under the middleware."""
    loop: str | None = None
    """Where the loop is, when that is not ``location`` itself: the line of the loop that calls
    the helper at ``location`` repeatedly (``"path/to/file.py:LINE in function"``)."""
    batched: bool = False
    """True when :func:`sqlaopt.batch` already loaded it for every peer in one statement per
    ``max_batch`` keys (``count`` is then the instances served): worth fixing for good, never
    an error by itself."""
    slowest_ms: float | None = None
    """For a slow statement: its slowest execution, in milliseconds."""
    in_test_code: bool = field(default=False, repr=False)
    """Whether the loop lives in a test module (set under the pytest plugin)."""

    @property
    def target(self) -> str:
        """``"Model.relationship"``, or ``"Model"`` for a repeated statement."""
        return f"{self.model}.{self.relationship}" if self.relationship else self.model

    def as_dict(self) -> dict[str, Any]:
        """The public fields as a plain dict of strings, integers and None (JSON-ready)."""
        return {
            "kind": self.kind,
            "model": self.model,
            "relationship": self.relationship,
            "count": self.count,
            "location": self.location,
            "loop": self.loop,
            "suggestion": self.suggestion,
            "statement": self.statement,
            "context": self.context,
            "batched": self.batched,
            "slowest_ms": self.slowest_ms,
        }

    def headline(self) -> str:
        """``"Model.attr lazy-loaded N times at file.py:LINE in function (loop at ...)"``."""
        loop = f" (loop at {self.loop})" if self.loop else ""
        if self.batched:
            what = f"batch-loaded for {self.count} instances"
        elif self.slowest_ms is not None:
            what = f"slow {self.count} times (slowest {self.slowest_ms:,.0f} ms)"
        else:
            what = _VERBS.get(self.kind, "seen {count} times").format(count=self.count)
        return f"{self.target} {what} at {self.location}{loop}"

    def __str__(self) -> str:
        where = f" [{self.context}]" if self.context else ""
        return (
            f"{kind_label(self.kind)}{self.kind}: {self.headline()}{where}; "
            f"fix: {self.suggestion}; "
            f"SQL: {one_line(self.statement)}"
        )


def kind_label(kind: str) -> str:
    """``"N+1 "`` before a headline of an N+1 kind (and of slow statements, as before issue
    13); nothing before the other kinds."""
    return "" if kind in END_OF_SCOPE_KINDS else "N+1 "


def split_location(location: str, root: str | os.PathLike[str] | None = None,
                   ) -> dict[str, Any]:
    """``{"file", "line", "function"}`` of a ``path/to/file.py:LINE in function`` location,
    the file as a POSIX path relative to ``root`` (default: the working directory), or
    absolute when it lies outside ``root``; ``line`` is None when the location has none."""
    place, _, function = location.rpartition(" in ")
    if not place:
        place, function = location, ""
    filename, _, line = place.rpartition(":")
    if not filename or not line.isdigit():
        filename, line = place, ""
    absolute = Path(os.path.abspath(filename))
    try:
        shown = absolute.relative_to(os.path.abspath(root or os.curdir)).as_posix()
    except ValueError:  # outside the root: the path as it is
        shown = absolute.as_posix()
    return {"file": shown, "line": int(line) if line else None, "function": function}


def as_finding(detection: Detection, root: str | os.PathLike[str] | None = None,
               ) -> dict[str, Any]:
    """One finding of :meth:`Report.to_dict`."""
    return {**detection.as_dict(), "target": detection.target,
            **split_location(detection.location, root)}


def one_line(sql: str) -> str:
    """``sql`` with its white space folded into single spaces."""
    return re.sub(r"\s+", " ", sql).strip()


@dataclass(eq=False)
class Report:
    """What one scope saw: its detections and how many SQL statements ran in it."""

    detections: list[Detection] = field(default_factory=list)
    """One entry per distinct N+1, in the order they reached the threshold."""
    statements: int = 0
    """SQL statements executed in the scope (nested scopes included once they end)."""
    dropped: int = 0
    """Distinct N+1s not recorded because the scope already held ``MAX_DETECTIONS``."""

    def to_dict(self, root: str | os.PathLike[str] | None = None) -> dict[str, Any]:
        """The report as plain JSON-ready data: ``statements``, ``dropped`` and ``findings``,
        one per detection: :meth:`Detection.as_dict` plus ``target`` and the location's
        ``file`` (relative to ``root``, default the working directory), ``line`` and
        ``function``. ``sqlaopt.report.write`` writes these same findings to a file."""
        return {
            "statements": self.statements,
            "dropped": self.dropped,
            "findings": [as_finding(d, root) for d in self.detections],
        }

    def __str__(self) -> str:
        dropped = f" and {self.dropped} more not recorded" if self.dropped else ""
        if not self.detections:
            return f"no N+1 ({self.statements} statements)"
        lines = "\n".join(f"  {d}" for d in self.detections)
        others = sum(d.kind in END_OF_SCOPE_KINDS for d in self.detections)
        what = "N+1" if not others else (
            f"finding(s), {len(self.detections) - others} of them N+1")
        return f"{len(self.detections)} {what}{dropped} ({self.statements} statements):\n{lines}"
