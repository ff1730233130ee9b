"""The exception and warning classes; every error sqlaopt raises derives from SqlaoptError."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .detect._report import Detection

__all__ = [
    "BatchError",
    "NPlusOneError",
    "NPlusOneWarning",
    "PresetError",
    "QueryBudgetError",
    "ReportError",
    "SqlaoptError",
]


class SqlaoptError(Exception):
    """Base class of every error raised by sqlaopt."""


class NPlusOneError(SqlaoptError):
    """Raised in ``"raise"`` mode at the access that reaches the threshold."""

    def __init__(self, detections: Sequence[Detection]) -> None:
        self.detections: list[Detection] = list(detections)
        lines = "\n".join(f"  {d}" for d in self.detections)
        super().__init__(f"N+1 detected ({len(self.detections)}):\n{lines}")


class QueryBudgetError(SqlaoptError):
    """Raised when a block runs more SQL statements than its budget allows."""

    def __init__(self, budget: int, statements: Sequence[str]) -> None:
        self.budget = budget
        self.statements: list[str] = list(statements)
        listing = "\n".join(f"  {i}. {s}" for i, s in enumerate(self.statements, 1))
        super().__init__(
            f"{len(self.statements)} SQL statements ran, the budget is {budget}:\n{listing}"
        )


class PresetError(SqlaoptError):
    """A loader path or preset names something that does not exist in the target models."""


class BatchError(SqlaoptError, ValueError):
    """``sqlaopt.batch()``, ``install(batch=...)`` or a middleware got a setting it cannot use."""


class ReportError(SqlaoptError, ValueError):
    """``sqlaopt.report.write()`` got a path whose suffix names no format, or findings it cannot
    read."""


class NPlusOneWarning(Warning):
    """Issued in ``"warn"`` mode, once per N+1 per scope, pointing at the loop's line."""


# Shown as ``sqlaopt.NPlusOneError`` in tracebacks, where users import them from.
for _public in (SqlaoptError, NPlusOneError, QueryBudgetError, PresetError, NPlusOneWarning,
                BatchError, ReportError):
    _public.__module__ = "sqlaopt"
