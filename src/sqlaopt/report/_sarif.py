"""The SARIF 2.1.0 report, as GitHub code scanning reads it.

One rule per finding kind (every kind :data:`sqlaopt.Detection.kind` can take, so a new kind
gets its rule without an edit here); one result per finding place, found by however many tests:
its level is ``error`` when it failed a test, ``warning`` when it was only reported, ``note``
when the baseline accepted it everywhere. ``partialFingerprints`` leave the line out, so GitHub
keeps tracking an alert when lines above it move.
"""

from __future__ import annotations

import json
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any, Final, get_args
from urllib.parse import quote

from ..detect._report import Kind
from ._findings import OUTCOMES, Collected, Group, fingerprint, group

__all__ = ["SCHEMA_URI", "render", "rule_description"]

SCHEMA_URI: Final = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVELS: Final = {"failed": "error", "reported": "warning", "accepted": "note"}
_MAX_TESTS: Final = 20
"""Test ids listed in one result's properties (the count says how many there were)."""
_FINGERPRINT: Final = "sqlaoptFinding/v1"
# GitHub code scanning rejects a run of more than 25,000 results and shows 100 locations of a
# result (docs.github.com, "SARIF results exceed limit").
_MAX_RESULTS: Final = 25_000
_MAX_RELATED: Final = 99
_DESCRIPTIONS: Final = {
    "lazy_load": ("A relationship lazy-loaded once per row in a loop (N+1)",
                  "A loop lazy-loads the same relationship with one statement per row. Load it "
                  "with the query that produced the rows (selectinload or joinedload, or a "
                  "sqlaopt preset); the result names the option to add."),
    "column_load": ("A deferred column loaded once per row in a loop (N+1)",
                    "A loop reads a deferred or expired column, one statement per row. Undefer "
                    "it in the query that produced the rows."),
    "repeated_statement": ("The same statement run once per iteration of a loop (N+1)",
                           "A loop runs one statement shape per iteration. Fetch every row in "
                           "one statement before the loop (an IN list or a join)."),
    "slow_statement": ("A statement slower than the slow_ms setting",
                       "A statement took longer than the configured slow_ms. Its plan, when "
                       "sampled, shows the scan to index."),
    "unused_eager_load": ("An eager load whose value nothing read",
                          "A loader option loaded a relationship that no code read before the "
                          "scope ended. Drop the option or the preset path."),
    "row_explosion": ("Joined eager loads that multiply the rows of one statement",
                      "Collections joined side by side or under each other return many times "
                      "the rows of the root entities. Load them with selectinload."),
    "row_by_row_write": ("The same write run once per row",
                         "A loop runs one INSERT, UPDATE or DELETE per row. Use the bulk form: "
                         "one execute() with a list of parameters."),
}


def rule_description(kind: str) -> tuple[str, str]:
    """A kind's (short, full) description; a kind this table does not know yet gets a
    generic one rather than no rule."""
    generic = (f"sqlaopt finding: {kind.replace('_', ' ')}",
               f"sqlaopt found a {kind.replace('_', ' ')}; each result names its fix.")
    return _DESCRIPTIONS.get(kind, generic)


def render(collected: Collected, version: str) -> str:
    kinds = list(get_args(Kind))
    kinds += sorted({str(r["kind"]) for r in collected.records} - set(kinds))
    index = {kind: number for number, kind in enumerate(kinds)}
    places = group(collected.records, fingerprint)
    kept = _most_severe(places, _MAX_RESULTS)
    log = {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "sqlaopt", "semanticVersion": version,
                                "version": version, "rules": [_rule(k) for k in kinds]}},
            "columnKind": "unicodeCodePoints",
            "results": [_result(place, index) for place in kept],
            "properties": {"omittedResults": len(places) - len(kept)},
        }],
    }
    return json.dumps(log, indent=2) + "\n"


def _most_severe(places: list[Group], limit: int) -> list[Group]:
    """The ``limit`` most severe places, in their own order."""
    if len(places) <= limit:
        return places
    ranked = sorted(range(len(places)), key=lambda i: OUTCOMES.index(places[i].outcome))
    chosen = set(ranked[:limit])
    return [place for i, place in enumerate(places) if i in chosen]


def _rule(kind: str) -> dict[str, Any]:
    short, full = rule_description(kind)
    return {
        "id": kind,
        "name": "".join(word.capitalize() for word in kind.split("_")),
        "shortDescription": {"text": short},
        "fullDescription": {"text": full},
        "help": {"text": full},
        "defaultConfiguration": {"level": "warning"},
        "properties": {"tags": ["performance", "sqlalchemy"]},
    }


def _result(place: Group, index: dict[str, int]) -> dict[str, Any]:
    first, tests = place.first, place.tests
    lines = sorted({(r["file"], r["line"]) for r in place.records} - {(first["file"],
                                                                       first["line"])},
                   key=lambda pair: (pair[0], pair[1] or 0))
    result: dict[str, Any] = {
        "ruleId": first["kind"],
        "ruleIndex": index[first["kind"]],
        "level": _LEVELS[place.outcome],
        "message": {"text": _message(place)},
        "locations": [_location(first["file"], first["line"])],
        "partialFingerprints": {_FINGERPRINT: fingerprint(first)},
        "properties": {"count": place.count, "statement": first["statement"],
                       "outcome": place.outcome, "testCount": len(tests),
                       "tests": tests[:_MAX_TESTS]},
    }
    if lines:
        result["relatedLocations"] = [{**_location(file, line), "id": number,
                                       "message": {"text": "also found here"}}
                                      for number, (file, line)
                                      in enumerate(lines[:_MAX_RELATED], 1)]
    return result


def _message(place: Group) -> str:
    first, tests = place.first, place.tests
    short = rule_description(first["kind"])[0]
    where = f" in {len(tests)} test(s)" if tests else ""
    loop = f", loop at {first['loop']}" if first.get("loop") else ""
    return (f"{short}: {first['target']}, {place.count} time(s){where}{loop}. "
            f"Fix: {first['suggestion']}")


def _location(file: str, line: int | None) -> dict[str, Any]:
    if PurePosixPath(file).is_absolute() or PureWindowsPath(file).is_absolute():
        artifact = {"uri": PurePosixPath(file).as_uri() if file.startswith("/")
                    else PureWindowsPath(file).as_uri()}
    else:  # relative to the repository root, which GitHub resolves
        artifact = {"uri": quote(file), "uriBaseId": "%SRCROOT%"}
    physical: dict[str, Any] = {"artifactLocation": artifact}
    if line:
        physical["region"] = {"startLine": line}
    return {"physicalLocation": physical}
