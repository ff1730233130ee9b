"""What a test session keeps of its detections: baselines, the failure text, the summary.

Used by the pytest plugin; kept here so the plugin stays an adapter. Everything a session keeps
is plain JSON data, so pytest-xdist workers can hand it to the controller.
"""

from __future__ import annotations

import json
import linecache
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Final

from .._errors import SqlaoptError
from ._report import END_OF_SCOPE_KINDS, Detection, kind_label

__all__ = ["BaselineError", "SessionState", "entry", "failure_text", "read", "write"]

_FIELDS: Final = ("test", "kind", "target", "where")
_TOP: Final = 5


class BaselineError(SqlaoptError):
    """A baseline file that cannot be read, with what is wrong in one line."""


def entry(nodeid: str, detection: Detection) -> tuple[str, ...]:
    """A detection's baseline entry: (test id, kind, ``Model.attr`` or the SQL, file and
    function). Line numbers move when code is edited; file and function identify the loop."""
    location = detection.location
    where = location.split(":", 1)[0] + " " + location.rsplit(" in ", 1)[-1]
    target = detection.target if detection.relationship else detection.statement
    return (nodeid, detection.kind, target, where)


def read(path: Path) -> set[tuple[str, ...]]:
    """The entries of a baseline file; :class:`BaselineError` for anything malformed."""
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise BaselineError(f"cannot read it ({type(error).__name__}: {error})") from None
    if not isinstance(data, dict) or not isinstance(data.get("detections"), list):
        raise BaselineError('a baseline is {"detections": [...]} as written by '
                            "--sqlaopt-write-baseline")
    entries = set()
    for number, item in enumerate(data["detections"], 1):
        if not isinstance(item, dict) or not all(isinstance(item.get(f), str) for f in _FIELDS):
            raise BaselineError(f"entry {number} is not an object with string fields "
                                f"{', '.join(_FIELDS)}: {json.dumps(item)[:120]}")
        entries.add(tuple(item[f] for f in _FIELDS))
    return entries


def write(path: Path, state: SessionState) -> None:
    """Write the session's entries (sorted, unique), creating missing directories."""
    unique = sorted({tuple(e[f] for f in _FIELDS) for e in state.seen})
    path.parent.mkdir(parents=True, exist_ok=True)
    detections = [dict(zip(_FIELDS, e, strict=True)) for e in unique]
    path.write_text(json.dumps({"detections": detections}, indent=2) + "\n")


class SessionState:
    """The detections of a whole test session, as JSON-ready entries."""

    def __init__(self) -> None:
        self.accepted: set[tuple[str, ...]] = set()
        """The baseline read with ``--sqlaopt-baseline``."""
        self.seen: list[dict[str, Any]] = []

    def remember(self, nodeid: str, detections: Iterable[Detection],
                 failing: Iterable[Detection] = ()) -> None:
        """Keep a test's detections, and which of them failed it."""
        failed = {id(d) for d in failing}
        for detection in detections:
            fields = dict(zip(_FIELDS, entry(nodeid, detection), strict=True))
            self.seen.append({**fields, "location": detection.location,
                              "count": detection.count, "name": detection.target,
                              "failed": id(detection) in failed})

    def export(self) -> list[dict[str, Any]]:
        return self.seen

    def merge(self, seen: Sequence[dict[str, Any]]) -> None:
        self.seen.extend(seen)

    def summary(self, *, failed: bool | None = None) -> list[str]:
        """How many detections in how many tests, and the places seen in the most tests; only
        those that failed their test (``failed=True``) or did not (``False``), or all."""
        seen = [e for e in self.seen if failed is None or e.get("failed", False) == failed]
        if not seen:
            return []
        tests = {e["test"] for e in seen}
        places = Counter(f"{_what(e)} at {e['location']}" for e in seen)
        status = {None: "", True: " that failed their test", False: " that failed no test"}
        lines = [f"{len(seen)} detection(s){status[failed]} in {len(tests)} test(s); "
                 f"{len(places)} distinct place(s). Most frequent:"]
        lines += [f"  {n:>4} x {place}" for place, n in places.most_common(_TOP)]
        return lines


def _what(entry: dict[str, Any]) -> str:
    """A summary entry's subject: ``Model.attr`` (with the kind when it is not an N+1), or the
    kind of a statement."""
    if entry["kind"] == "repeated_statement":
        return "repeated_statement"
    name = str(entry.get("name", entry["target"]))
    return name + (f" ({entry['kind']})" if entry["kind"] in END_OF_SCOPE_KINDS else "")


def failure_text(nodeid: str, detections: Sequence[Detection]) -> str:
    """The test failure: one line per detection (what, how often, where, the fix), each
    followed by the source line of its loop; then how to accept or opt out."""
    lines = []
    for detection in detections:
        lines.append(f"sqlaopt: {kind_label(detection.kind)}{detection.headline()}; "
                     f"fix: {detection.suggestion}")
        source = _source_line(detection.loop or detection.location)
        if source:
            lines.append(f"    {source}")
    accept = f"allow=[{detections[0].target!r}]" if detections[0].relationship else "threshold=N"
    what = "N+1" if all(d.kind not in END_OF_SCOPE_KINDS for d in detections) else "finding(s)"
    lines.append(f"({len(detections)} {what} in {nodeid}; to accept one: "
                 f"@pytest.mark.nplusone({accept}), or sqlaopt.allow(...); to opt the test "
                 "out: @pytest.mark.nplusone(mode='off'))")
    return "\n".join(lines)


def _source_line(location: str) -> str:
    """``file:LINE | source`` for a ``file:LINE in function`` location."""
    place = location.rsplit(" in ", 1)[0]
    filename, _, line = place.rpartition(":")
    if not line.isdigit():
        return ""
    # Locations are relative to the working directory: linecache must not mix up two files of
    # one relative name (two generated suites in one pytest-xdist worker, each its helpers.py).
    text = linecache.getline(os.path.abspath(filename), int(line)).strip()
    return f"{place} | {text}" if text else ""
