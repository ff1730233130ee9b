"""Scopes: where counts live, how they nest, and when a count becomes a detection.

An explicit scope (``detect()``, the pytest plugin, the middlewares) is held in a ContextVar,
so each thread and asyncio task sees its own; the innermost one owns what is detected inside
it. Outside explicit scopes, after ``install()``, each Session is its own scope.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from types import CodeType, FrameType
from typing import Final

from .._names import did_you_mean
from ._callsite import LastSite
from ._report import Detection, Report

__all__ = [
    "MODES",
    "Scope",
    "Settings",
    "active_scope",
    "allowed_patterns",
    "check_patterns",
]

MODES: Final = ("raise", "warn", "log", "record", "off")
_PATTERN = re.compile(r"^[A-Za-z0-9_*?\[\]!]+\.[A-Za-z0-9_*?\[\]!]+$")

active_scope: ContextVar[Scope | None] = ContextVar("sqlaopt_scope", default=None)
allowed_patterns: ContextVar[tuple[str, ...]] = ContextVar("sqlaopt_allow", default=())


def check_patterns(patterns: Iterable[str]) -> tuple[str, ...]:
    """Validate allow patterns (``"Model.relationship"`` with fnmatch wildcards)."""
    checked = tuple(patterns)
    for pattern in checked:
        if not isinstance(pattern, str) or not _PATTERN.match(pattern):
            raise ValueError(
                f"malformed allow pattern {pattern!r}: expected 'Model.attribute', where either "
                "part may use fnmatch wildcards, e.g. 'Appointment.client', 'Appointment.*', "
                "'*.client'"
            )
    return checked


@dataclass(frozen=True)
class Settings:
    """How a scope reacts to N+1s: its mode, threshold and allow patterns."""

    mode: str = "raise"
    threshold: int = 2
    allow: tuple[str, ...] = ()

    @classmethod
    def checked(cls, mode: str, threshold: int, allow: Iterable[str]) -> Settings:
        """Settings from user input, with a clear error for each bad value."""
        if mode not in MODES:
            raise ValueError(
                f"unknown mode {mode!r}{did_you_mean(str(mode), MODES)}; "
                f"accepted: {', '.join(MODES)}"
            )
        if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 1:
            raise ValueError(
                f"threshold must be a positive integer (the number of repeats that makes an "
                f"N+1, default 2); got {threshold!r}"
            )
        if isinstance(allow, str):
            allow = (allow,)
        return cls(mode, threshold, check_patterns(allow))

    def allows(self, detection: Detection) -> bool:
        target = f"{detection.model}.{detection.relationship or ''}"
        patterns = self.allow + allowed_patterns.get()
        return any(fnmatch.fnmatchcase(target, p) for p in patterns)


class Scope:
    """The counts and detections of one scope.

    ``counts`` maps (kind, target, lane, call site) to how often it happened; only when a count
    reaches the threshold is a Detection built, so the common path is one dict update.
    """

    __slots__ = (
        "anchor", "counts", "explicit", "found", "label", "last_site", "parent", "report",
        "settings", "tolerated",
    )

    def __init__(
        self,
        settings: Settings,
        *,
        anchor: FrameType | CodeType | None = None,
        label: str | None = None,
        explicit: bool = True,
    ) -> None:
        self.settings = settings
        self.anchor = anchor
        self.label = label
        self.explicit = explicit
        self.report = Report()
        self.counts: dict[tuple[object, ...], int] = {}
        self.found: dict[tuple[object, ...], Detection | None] = {}
        self.parent: Scope | None = None
        self.last_site = LastSite()
        self.tolerated: Callable[[Detection], bool] | None = None
        """Detections it accepts (e.g. a pytest baseline): recorded, never acted on."""

    def add(self, detection: Detection, key: tuple[object, ...]) -> bool:
        """Record a new detection unless an allow pattern covers it; True if it is to be
        acted on (raised, warned, logged)."""
        if self.settings.allows(detection):
            self.found[key] = None
            return False
        detection.context = self.label
        self.found[key] = detection
        self.report.detections.append(detection)
        return self.tolerated is None or not self.tolerated(detection)

    def actionable(self) -> list[Detection]:
        """The detections to raise, warn or log: all but the tolerated ones."""
        tolerated = self.tolerated
        return [d for d in self.report.detections if tolerated is None or not tolerated(d)]

    def bump(self, key: tuple[object, ...], count: int) -> None:
        """Keep a detection's count current after the threshold."""
        detection = self.found.get(key)
        if detection is not None:
            detection.count = count
