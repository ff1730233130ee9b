"""The findings a report file holds, as JSON-ready records, and what every writer shares.

A record is :meth:`sqlaopt.Report.to_dict`'s finding plus ``test`` (the pytest node id, or
None) and ``outcome``: ``"failed"`` (it failed its test), ``"reported"`` (found, but the mode,
batching or code that called ``write`` made it no failure) or ``"accepted"`` (in the
baseline). Records are plain data so that pytest-xdist workers can send them to the controller.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from .._errors import ReportError
from ..detect._report import Detection, Report, as_finding, split_location

__all__ = ["OUTCOMES", "Collected", "Group", "collect", "fingerprint", "group", "record"]

OUTCOMES: Final = ("failed", "reported", "accepted")
"""From the most to the least severe."""
_REQUIRED: Final = {"kind": str, "target": str, "count": int, "location": str,
                    "suggestion": str, "statement": str}


def record(detection: Detection, *, test: str | None = None, outcome: str = "reported",
           root: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The report record of one detection."""
    return {"test": test, "outcome": outcome, **as_finding(detection, root)}


@dataclass
class Collected:
    """The records to write and what is known of the run they come from."""

    records: list[dict[str, Any]]
    dropped: int = 0
    statements: int | None = None


def collect(source: object, root: str | os.PathLike[str] | None = None) -> Collected:
    """The records of a :class:`~sqlaopt.Report`, or of an iterable of :class:`~sqlaopt.Detection`
    objects or records (as a JSON report holds them); :class:`ReportError` for anything else."""
    if isinstance(source, Report):
        return Collected([record(d, root=root) for d in source.detections], source.dropped,
                         source.statements)
    if isinstance(source, (str, bytes, Mapping)) or not isinstance(source, Iterable):
        raise ReportError(f"cannot write a report of {type(source).__name__}; accepted: a "
                          "sqlaopt.Report, or an iterable of sqlaopt.Detection objects or of "
                          "findings as a JSON report holds them")
    return Collected([_one(item, number, root) for number, item in enumerate(source, 1)])


def _one(item: object, number: int, root: str | os.PathLike[str] | None) -> dict[str, Any]:
    if isinstance(item, Detection):
        return record(item, root=root)
    if not isinstance(item, Mapping):
        raise ReportError(f"finding {number} is a {type(item).__name__}; accepted: "
                          "sqlaopt.Detection objects or finding dicts")
    wrong = [f"{name} ({kind.__name__})" for name, kind in _REQUIRED.items()
             if not isinstance(item.get(name), kind)]
    if wrong:
        raise ReportError(f"finding {number} lacks or mistypes {', '.join(wrong)}; a finding "
                          "is a dict as Report.to_dict() or a JSON report holds them")
    outcome = item.get("outcome", "reported")
    if outcome not in OUTCOMES:
        raise ReportError(f"finding {number} has outcome {outcome!r}; accepted: "
                          f"{', '.join(OUTCOMES)}")
    # A JSON report's finding is located already; a hand-made one from its location.
    located = ({} if all(k in item for k in ("file", "line", "function"))
               else split_location(item["location"], root))
    return {"test": None, **item, "outcome": outcome, **located}


def sort_key(item: Mapping[str, Any]) -> tuple[Any, ...]:
    """Records in file, line, kind, target and test order: the same run writes the same file
    whatever order pytest-xdist's workers finished in."""
    return (str(item.get("file", "")), item.get("line") or 0, item["kind"], item["target"],
            item.get("test") or "", item["location"])


def fingerprint(item: Mapping[str, Any]) -> str:
    """What identifies a finding across commits: kind, target, file, function and fix, not the
    line, which moves when code above it is edited."""
    parts = (item["kind"], item["target"], str(item.get("file", "")),
             str(item.get("function", "")), item["suggestion"])
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


@dataclass
class Group:
    """The records that share a key (one place found by many tests): their first record, the
    tests, the summed count and the most severe outcome."""

    first: dict[str, Any]
    records: list[dict[str, Any]] = field(default_factory=list)

    @property
    def tests(self) -> list[str]:
        return sorted({r["test"] for r in self.records if r.get("test")})

    @property
    def count(self) -> int:
        return sum(int(r["count"]) for r in self.records)

    @property
    def outcome(self) -> str:
        return str(min((r["outcome"] for r in self.records), key=OUTCOMES.index))


def group(records: Iterable[dict[str, Any]],
          key: Callable[[dict[str, Any]], Hashable]) -> list[Group]:
    """``records`` grouped by ``key``, in :func:`sort_key` order of each group's first."""
    groups: dict[Hashable, Group] = {}
    for item in sorted(records, key=sort_key):
        groups.setdefault(key(item), Group(item)).records.append(item)
    return list(groups.values())
