"""Plain-text tables and JSON-ready values for the results of :mod:`sqlaopt.watch`."""

from __future__ import annotations

import abc
import dataclasses
import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from ..indexes._apply import format_table

__all__ = [
    "Tabular",
    "duration",
    "format_table",
    "jsonable",
    "milliseconds",
    "rows_table",
    "shorten",
]


def jsonable(value: Any) -> Any:
    """``value`` with dataclasses, tuples, datetimes and decimals made JSON-serialisable."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, frozenset, set)):
        items = sorted(value) if isinstance(value, (set, frozenset)) else value
        return [jsonable(v) for v in items]
    if isinstance(value, (dt.datetime, dt.date, dt.timedelta)):
        return str(value) if isinstance(value, dt.timedelta) else value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def milliseconds(value: float) -> str:
    """``12.3 ms`` with three significant digits (``0.0412 ms``, ``1,234 ms``)."""
    if value >= 1000:
        return f"{value:,.0f} ms"
    return f"{value:.3g} ms"


class Tabular(abc.ABC):
    """A result that prints as a plain-text table and converts to a JSON-ready dict."""

    @abc.abstractmethod
    def table(self) -> str:
        """The result as a plain-text table (what ``str()`` and the CLI print)."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        result: dict[str, Any] = jsonable(self)
        return result

    def __str__(self) -> str:
        return self.table()


def duration(value: dt.timedelta) -> str:
    """``7 days``, ``3 h 5 min``, ``1 min 7 s``: the two largest units."""
    seconds = int(value.total_seconds())
    parts: list[str] = []
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count or (unit == "s" and not parts):
            parts.append(f"{count} {'day' if unit == 'days' and count == 1 else unit}")
    return " ".join(parts[:2])


def shorten(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters with an ellipsis."""
    return text if len(text) <= width else text[: width - 1] + "…"


def rows_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A left-aligned table with a header, or ``(none)``."""
    if not rows:
        return "  (none)"
    lines = format_table([tuple(header), *(tuple(r) for r in rows)])
    return "\n".join(f"  {line}" for line in lines.splitlines())
