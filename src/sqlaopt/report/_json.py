"""The JSON report: every finding of the run, one record each (see docs/reports.md)."""

from __future__ import annotations

import json
from typing import Final

from ._findings import Collected, sort_key

__all__ = ["SCHEMA_VERSION", "render"]

SCHEMA_VERSION: Final = 1
"""Raised when a field changes meaning or disappears; new fields do not raise it."""


def render(collected: Collected, version: str) -> str:
    document = {
        "schema_version": SCHEMA_VERSION,
        "tool": "sqlaopt",
        "sqlaopt_version": version,
        "statements": collected.statements,
        "dropped": collected.dropped,
        "findings": sorted(collected.records, key=sort_key),
    }
    return json.dumps(document, indent=2) + "\n"
