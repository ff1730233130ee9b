"""Scopes: where counts live, how they nest, and when a count becomes a detection.

A scope is held in a ContextVar, so each thread and asyncio task sees its own; the innermost
one counts what runs inside it. Some scopes **own** their detections: the pytest plugin's test
scope, and ``detect()`` blocks (except one opened by application code while a test runs).
Every other scope (middlewares, ``install()`` Session scopes, request units, application
``detect()`` blocks under a test) acts in its own mode and also hands each detection to the
nearest enclosing scope that owns detections, so a test's verdict does not depend on what the
application stacked between the test and the loop.
"""

from __future__ import annotations

import fnmatch
import random
import re
import threading
from collections.abc import Callable, Iterable
from contextvars import ContextVar, Token
from dataclasses import dataclass, replace
from types import CodeType, FrameType
from typing import Any, Final

from .._names import did_you_mean
from ._repeats import Repeats
from ._report import MAX_DETECTIONS, Detection, Report

__all__ = [
    "MAX_COUNT_KEYS",
    "MODES",
    "Scope",
    "Settings",
    "active_scope",
    "allowed_patterns",
    "check_patterns",
    "matches",
]

MODES: Final = ("raise", "warn", "log", "record", "off")
MAX_COUNT_KEYS: Final = 20_000
"""Distinct (statement shape, call stack) entries a scope counts before it forgets the ones
seen only once: a long-lived Session scope never grows without bound."""
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


def matches(detection: Detection, patterns: Iterable[str]) -> bool:
    """Whether an allow pattern matches the detection's ``Model.attribute``."""
    target = f"{detection.model}.{detection.relationship or ''}"
    return any(fnmatch.fnmatchcase(target, p) for p in patterns)


@dataclass(frozen=True)
class Settings:
    """How a scope reacts to N+1s."""

    mode: str = "raise"
    threshold: int = 2
    allow: tuple[str, ...] = ()
    sample_rate: float = 1.0
    """The fraction of scopes observed (per request or Session); the rest cost a context
    check per statement."""
    test_loops: bool = True
    """Whether a loop living in test code counts (the pytest plugin's test scope: no)."""
    slow_ms: float | None = None
    """Report statements slower than this (milliseconds); None: measure nothing."""
    plans: Any = None
    """For slow statements: something with ``plan(sql, parameters) -> str | None``
    (``sqlaopt.watch.PlanSampler``)."""
    unused_eager: bool = False
    """Report eager loads whose value nothing read (``"unused_eager_load"``): watches every
    instance a query loads, so it is a test-time setting (see docs/findings.md)."""
    explosion_factor: float = 10.0
    """A statement whose joined collections return this many times more rows than root
    entities (and at least 1,000 rows) is a ``"row_explosion"``."""

    @classmethod
    def checked(
        cls, mode: str, threshold: int, allow: Iterable[str], *, modes: Iterable[str] = MODES,
        sample_rate: float = 1.0, test_loops: bool = True, slow_ms: float | None = None,
        plans: Any = None, unused_eager: bool | None = None, explosion_factor: float = 10.0,
    ) -> Settings:
        """Settings from user input, with a clear error for each bad value. ``unused_eager``
        None means: on in the modes of explicit scopes and tests (raise, warn, record)."""
        modes = tuple(modes)
        if mode not in modes:
            raise ValueError(
                f"unknown mode {mode!r}{did_you_mean(str(mode), modes)}; "
                f"accepted: {', '.join(modes)}"
            )
        if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 1:
            raise ValueError(
                f"threshold must be a positive integer (the number of repeats that makes an "
                f"N+1, default 2); got {threshold!r}"
            )
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, float)) \
                or not 0 < sample_rate <= 1:
            raise ValueError(
                f"sample_rate must be a number in (0, 1], the fraction of requests or "
                f"Sessions observed (default 1); got {sample_rate!r}"
            )
        if slow_ms is not None and (isinstance(slow_ms, bool)
                                    or not isinstance(slow_ms, (int, float)) or slow_ms < 0):
            raise ValueError(
                f"slow_ms must be a number of milliseconds >= 0 (statements slower than it are "
                f"reported), or None; got {slow_ms!r}"
            )
        if plans is not None and not callable(getattr(plans, "plan", None)):
            raise TypeError(
                "plans must have a plan(sql, parameters) method, e.g. "
                f"sqlaopt.watch.PlanSampler(engine); got {plans!r}"
            )
        if unused_eager is not None and not isinstance(unused_eager, bool):
            raise TypeError(f"unused_eager must be True, False or None (on in raise, warn and "
                            f"record modes); got {unused_eager!r}")
        if isinstance(explosion_factor, bool) \
                or not isinstance(explosion_factor, (int, float)) or explosion_factor < 1:
            raise ValueError(
                f"explosion_factor must be a number >= 1 (rows per root entity that make a "
                f"joined load a row explosion, default 10); got {explosion_factor!r}"
            )
        if isinstance(allow, str):
            allow = (allow,)
        watch = mode in ("raise", "warn", "record") if unused_eager is None else unused_eager
        return cls(mode, threshold, check_patterns(allow), float(sample_rate), test_loops,
                   None if slow_ms is None else float(slow_ms), plans, watch,
                   float(explosion_factor))

    def allows(self, detection: Detection) -> bool:
        return matches(detection, self.allow + allowed_patterns.get())

    def sampled(self) -> Settings:
        """These settings, or mode ``"off"`` for a scope the sample leaves out."""
        if self.sample_rate >= 1 or random.random() < self.sample_rate:
            return self
        return replace(self, mode="off")


class Scope:
    """The counts and detections of one scope.

    ``counts`` maps (kind, target, lane, call-site key) to how often it happened, so the common
    path is one dict update. When an entry reaches the threshold it is a loop: its detection
    is the one for (kind, target, location, loop) in ``places``, created on first need, and
    ``found`` maps the entry to the detections its further repeats add to.
    """

    __slots__ = (
        "__weakref__",
        "anchor",
        "authority",
        "closed",
        "counts",
        "depths",
        "eager",
        "eager_overflow",
        "emit_at_once",
        "first_calls",
        "flushes",
        "found",
        "label",
        "last_lineage",
        "lineage",
        "lock",
        "opener",
        "owns",
        "parent",
        "places",
        "recursive",
        "repeats",
        "report",
        "settings",
        "token",
        "tolerated",
        "tracks_calls",
        "watch_eager",
        "watching",
    )

    def __init__(
        self,
        settings: Settings,
        *,
        parent: Scope | None = None,
        anchor: FrameType | CodeType | None = None,
        label: str | None = None,
        owns: bool = True,
        emit_at_once: bool = False,
    ) -> None:
        self.settings = settings
        self.parent = parent
        self.anchor = anchor
        self.label = label
        self.owns = owns
        self.emit_at_once = emit_at_once
        """Act on each detection when it is made (a Session has no dependable end)."""
        self.authority: Scope | None = None
        """For a scope that does not own its detections: the nearest enclosing one that does,
        which each of its detections reaches too."""
        if not owns and parent is not None:
            self.authority = parent if parent.owns else parent.authority
        self.report = Report()
        self.counts: dict[tuple[object, ...], int] = {}
        self.found: dict[tuple[object, ...], tuple[Detection, ...]] = {}
        self.places: dict[tuple[object, ...], Detection] = {}
        self.repeats: dict[tuple[object, ...], Repeats] = {}
        """repeated statements not yet reported: what their executions have in common."""
        self.first_calls: dict[tuple[object, ...], tuple[int, ...]] = {}
        """count key -> the frames of its first statement and the items their loops were at
        (``_callsite.activations``), to tell at the threshold which loops went round. Not kept
        in log mode (production) unless the scope reports to a test: there the loop's line is
        only shown, never a verdict."""
        self.tracks_calls = settings.threshold > 1 and (
            settings.mode != "log" or self.authority is not None)
        self.lineage: dict[Any, tuple[Any, ...]] = {}
        """mapper -> the load path of an instance of it that was a lazy-load parent here."""
        self.last_lineage: object = None
        """The load path (SQLAlchemy's path object) of the last lazy-load parent: the parents
        of one loop share it, so the loop's loads after the first need not look again."""
        self.depths: dict[Detection, tuple[list[Any], int, CodeType]] = {}
        """recursive lazy loads: detection -> (relationship chain, deepest level seen, the
        recursive function)."""
        self.recursive: set[tuple[object, ...]] = set()
        """the count keys of recursive lazy loads (their repeats may go deeper)."""
        self.lock = threading.Lock()
        self.closed = False
        self.token: Token[Scope | None] | None = None
        self.opener: object = None
        self.tolerated: Callable[[Detection], bool] | None = None
        """Detections it accepts (e.g. a pytest baseline): recorded, never acted on."""
        self.watch_eager = settings.unused_eager and settings.mode != "off"
        """Whether instances loaded here are watched for unused eager loads: its own setting,
        or the owning scope's (a request inside a test)."""
        if not self.watch_eager and self.authority is not None and settings.mode != "off":
            self.watch_eager = self.authority.watch_eager
        self.eager: dict[tuple[object, ...], Any] = {}
        """(eager load path, query location) -> its slot (instances loaded, read or not)."""
        self.watching: set[int] = set()
        """ids of the instances this scope watches (dropped from the registry at its end)."""
        self.eager_overflow = False
        """Too many instances to watch: unused eager loads are not reported (no false one)."""
        self.flushes: dict[tuple[object, ...], int] = {}
        """write count key -> the flush that last counted it (a flush's statements count
        once)."""

    @property
    def observing(self) -> bool:
        return self.settings.mode != "off"

    def count(self, key: tuple[object, ...], weight: int = 1) -> int:
        """Add ``weight`` to ``key``'s count and return it; bounded by ``MAX_COUNT_KEYS``."""
        counts = self.counts
        previous = counts.get(key, 0)
        count = previous + weight
        if not previous and len(counts) >= MAX_COUNT_KEYS:
            self._forget_singletons()
        counts[key] = count
        return count

    def _forget_singletons(self) -> None:
        threshold = self.settings.threshold
        kept = {k: n for k, n in self.counts.items() if n >= threshold}
        if len(kept) >= MAX_COUNT_KEYS // 2:  # mostly loops already: start afresh
            kept = {}
            self.found.clear()
        self.counts = kept
        self.repeats.clear()
        self.first_calls.clear()
        self.flushes.clear()

    def place(
        self, key: tuple[object, ...], place: tuple[object, ...], count: int,
        make: Callable[[], Detection | None],
    ) -> Detection | None:
        """A loop ``key`` reached the threshold (``count``) at ``place``: add it to that place's
        detection, made by ``make`` if it is the first loop there. Returns the detection when it
        is new and to be acted on (raised, or emitted at once)."""
        with self.lock:
            detection = self.places.get(place)
            new = detection is None
            if new:
                detection = make()
                if detection is None or not self._accepts(detection):
                    self.found[key] = ()
                    return None
                self.places[place] = detection
                detection.context = self.label
            assert detection is not None
            detection.count += count
            targets = [detection]
            if self.authority is not None:
                forwarded = self.authority.forwarded(place, detection, count)
                if forwarded is not None:
                    targets.append(forwarded)
            self.found[key] = tuple(targets)
        actionable = self.tolerated is None or not self.tolerated(detection)
        return detection if new and actionable else None

    def slow(self, place: tuple[object, ...], make: Callable[[], Detection],
             elapsed_ms: float) -> Detection | None:
        """A slow statement at ``place``: one more for its detection (never forwarded: timing is
        not a test verdict). Returns the detection when it is new and to be acted on."""
        with self.lock:
            detection = self.places.get(place)
            new = detection is None
            if detection is None:
                detection = make()
                if not self._accepts(detection):
                    return None
                self.places[place] = detection
                detection.context = self.label
            detection.count += 1
            detection.slowest_ms = max(detection.slowest_ms or 0.0, elapsed_ms)
        actionable = self.tolerated is None or not self.tolerated(detection)
        return detection if new and actionable else None

    def _accepts(self, detection: Detection) -> bool:
        if self.settings.allows(detection):
            return False
        if len(self.report.detections) >= MAX_DETECTIONS:
            self.report.dropped += 1
            return False
        self.report.detections.append(detection)
        return True

    def forwarded(self, place: tuple[object, ...], detection: Detection, count: int,
                  ) -> Detection | None:
        """A nested scope's detection reaching this one: merged into this scope's detection for
        the same place, unless this scope's allow patterns or test-loop rule exclude it."""
        if detection.in_test_code and not self.settings.test_loops:
            return None
        with self.lock:
            mine = self.places.get(place)
            if mine is None:
                mine = replace(detection, count=0)
                if not self._accepts(mine):
                    return None
                self.places[place] = mine
            mine.count += count
        return mine

    def actionable(self) -> list[Detection]:
        """The detections to raise, warn or log: all but the tolerated ones."""
        tolerated = self.tolerated
        return [d for d in self.report.detections if tolerated is None or not tolerated(d)]

    def open_ancestor(self) -> Scope | None:
        """This scope if still open, else the nearest enclosing one that is."""
        scope: Scope | None = self
        while scope is not None and scope.closed:
            scope = scope.parent
        return scope
