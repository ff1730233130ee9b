"""Peer groups: the instances one statement execution loaded into a Session.

Nothing is tracked while rows load (a per-row ``load`` listener alone costs 13-16 % on a big
load). SQLAlchemy stamps every instance an execution creates with that execution's ``runid``,
and the identity map keeps insertion order, so the group is found only when a lazy load fires:
walk the identity map from its newest entry back to the block of the instance's run, at C speed
in growing slices, and stop at the first slice past it. A loop over a fresh result finds its
group in the last few slices; the group is then cached per Session (weak references only) for the
relationship and column loads that follow.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from collections.abc import Iterator
from itertools import islice
from typing import Any, Final

from sqlalchemy.orm import InstanceState, Session

from ._sa import RUNID, identity_states_newest_first, identity_states_snapshot

__all__ = ["MAX_SCAN", "join_runs", "peers_of"]

MAX_SCAN: Final = 100_000
"""Identity-map entries looked at to find one group (about 5 ms); beyond, no batching."""
_FIRST_SLICE: Final = 16  # slices grow to _SLICE: a lone instance costs a few dozen reads
_SLICE: Final = 256
_CACHED_RUNS: Final = 32
_CACHED_MEMBERS: Final = 200_000

class _Group:
    """Weak references to the instances of one or more runs (the IN lists of one batch)."""

    __slots__ = ("keys", "members", "runs")

    def __init__(self, runs: frozenset[int], members: list[InstanceState[Any]]) -> None:
        self.runs = runs
        self.members = [weakref.ref(member) for member in members]
        self.keys = 0  # how many run ids the cache files it under

    def live(self) -> list[InstanceState[Any]]:
        runs = self.runs
        members: list[InstanceState[Any]] = []
        for ref in self.members:
            member = ref()
            if member is not None and RUNID(member) in runs:
                members.append(member)
        return members


_NOT_FOUND: Final = frozenset[int]()
"""Cached for a run looked for beyond MAX_SCAN: don't walk that far again."""


class _SessionGroups:
    """The groups found in one Session by run id, most recently used last; bounded in run
    ids and in members (each group counted once, however many run ids it is filed under)."""

    __slots__ = ("__weakref__", "groups", "members")

    def __init__(self) -> None:
        self.groups: OrderedDict[int, _Group | frozenset[int]] = OrderedDict()
        self.members = 0

    def get(self, runid: int) -> _Group | frozenset[int] | None:
        group = self.groups.get(runid)
        if group is not None:
            self.groups.move_to_end(runid)
        return group

    def put(self, runid: int, group: _Group | frozenset[int]) -> None:
        self._drop(runid)
        self.groups[runid] = group
        if isinstance(group, _Group):
            group.keys += 1
            self.members += len(group.members) if group.keys == 1 else 0
        while len(self.groups) > _CACHED_RUNS or (
            self.members > _CACHED_MEMBERS and len(self.groups) > 1
        ):
            self._drop(next(iter(self.groups)))

    def _drop(self, runid: int) -> None:
        group = self.groups.pop(runid, None)
        if isinstance(group, _Group):
            group.keys -= 1
            self.members -= len(group.members) if group.keys == 0 else 0


_by_session: weakref.WeakKeyDictionary[Session, _SessionGroups] = weakref.WeakKeyDictionary()


def _groups(session: Session) -> _SessionGroups:
    groups = _by_session.get(session)
    if groups is None:
        groups = _by_session[session] = _SessionGroups()
    return groups


def peers_of(session: Session, state: InstanceState[Any]) -> list[InstanceState[Any]]:
    """The live instances loaded by the same execution as ``state`` (``state`` included), in
    load order; just ``[state]`` when it was not loaded by a query or is alone."""
    runid = RUNID(state)
    if runid is None:
        return [state]
    groups = _groups(session)
    cached = groups.get(runid)
    if cached is _NOT_FOUND:
        return [state]
    if isinstance(cached, _Group):
        members = cached.live()
        if any(member is state for member in members):
            return members
    found = _scan(session, runid, state)
    if not found:
        groups.put(runid, _NOT_FOUND)
    elif len(found) > 1:  # a lone instance is found again at once; it need not push groups out
        groups.put(runid, _Group(frozenset([runid]), found))
    return found or [state]


def join_runs(session: Session, loaded: list[list[InstanceState[Any]]]) -> None:
    """Make the instances that the IN lists of one batch created one group: each list is one
    execution's targets, of which the ones with its (newest) run id were created by it."""
    runs: set[int] = set()
    members: list[InstanceState[Any]] = []
    for states in loaded:
        runid = max((r for r in map(RUNID, states) if r is not None), default=None)
        if runid is not None:
            runs.add(runid)
            members.extend(state for state in states if RUNID(state) == runid)
    if len(runs) > 1:
        group, groups = _Group(frozenset(runs), members), _groups(session)
        for runid in runs:
            groups.put(runid, group)


def _scan(session: Session, runid: int, state: InstanceState[Any]) -> list[InstanceState[Any]]:
    try:
        return _scan_from(identity_states_newest_first(session), runid, state)
    except RuntimeError:  # an entry was garbage-collected mid-walk: walk a copy instead
        return _scan_from(identity_states_snapshot(session), runid, state)


def _scan_from(
    newest_first: Iterator[InstanceState[Any]], runid: int, state: InstanceState[Any]
) -> list[InstanceState[Any]]:
    found: list[InstanceState[Any]] = []
    seen = False
    scanned, size = 0, _FIRST_SLICE
    while scanned < MAX_SCAN:
        chunk = list(islice(newest_first, size))
        if not chunk:
            break
        scanned += len(chunk)
        size = min(2 * size, _SLICE)
        runids = list(map(RUNID, chunk))
        if runid not in runids:
            if seen:
                break  # past the run's block
            continue
        hits = [member for member, run in zip(chunk, runids, strict=True) if run == runid]
        found.extend(hits)
        seen = seen or any(member is state for member in hits)
    if not seen:
        return []
    found.reverse()
    return found
