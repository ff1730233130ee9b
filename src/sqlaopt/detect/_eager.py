"""Eager loads that cost more than they give: loaded and never read, or joined into too many rows.

**Unused eager loads.** While a scope watches (``unused_eager``), the ``load`` event of every
mapper tells it each new instance a query loads; the query's eager plan for that instance's
load path (``_orm.eager_plan``: joined, select-IN, subquery and immediate loads, by option or by
the mapping's ``lazy=``) gives the relationships loaded into it. Each (load path, query
location) is a *slot* counting the instances it was loaded for; the instance is registered by
id with its slots, and the relationship's class attribute is swapped for one whose ``__get__``
marks the slot read (``_orm.WatchedAttribute``). When the scope ends, every slot never read is
an ``"unused_eager_load"``. Nothing holds an instance: the registry keys are ids, dropped when
the scope ends, and it is bounded (``MAX_WATCHED``; past it the scope reports none rather than
a false one).

**Row explosions.** A top-level SELECT whose joined eager loads multiply rows (two collections
joined on one parent, or a collection under a collection: ``_orm.joined_collections``) has its
rows and distinct root keys counted as they are fetched; when the result closes, at least
``explosion_factor`` rows per root and 1,000 rows make a ``"row_explosion"``.
"""

from __future__ import annotations

from typing import Any, Final

from sqlalchemy.engine import ExecutionContext

from ._callsite import describe
from ._emit import emit, internal_error
from ._orm import (
    EagerLoad,
    count_rows,
    eager_plan,
    has_value,
    joined_collections,
    query_statement,
    root_key_columns,
    watch_reads,
    watched,
)
from ._report import Detection
from ._scope import Scope, allowed_patterns, matches
from ._sql import fingerprint
from ._suggest import row_explosion_detection, unused_eager_detection

__all__ = ["MAX_WATCHED", "MIN_EXPLOSION_ROWS", "forget", "loaded", "report_unused",
           "watch_rows"]

MAX_WATCHED: Final = 200_000
"""Instances watched at once, process-wide (about 200 bytes each)."""
MIN_EXPLOSION_ROWS: Final = 1_000
_SITE: Final = "_sqlaopt_eager_site"
_LOADS_KEY: Final = "_sqlaopt_eager_loads"


class Slot:
    """One eager load path at one query location: instances loaded, and whether any was read."""

    __slots__ = ("allowed", "count", "load", "location", "manager", "read", "statement")

    def __init__(self, load: EagerLoad, location: str, statement: str) -> None:
        self.allowed = allowed_patterns.get()
        """The ``sqlaopt.allow()`` patterns around the query (the scope ends after them)."""
        self.load = load
        self.location = location
        self.statement = statement
        self.count = 0
        self.read = False
        self.manager: Any = None
        """The class manager whose attribute was last made to notice reads."""


class _Loads:
    """What one query execution loads eagerly into the instances of one load path and class in
    one scope: its slots, and the read registry entry all those instances share."""

    __slots__ = ("checked", "registry")

    def __init__(self, slots: dict[str, Slot], checked: tuple[str, ...]) -> None:
        self.checked = checked
        """Keys of joined and subquery loads: filled only where the row had them."""
        self.registry: dict[str, tuple[Slot, ...]] = {k: (slot,) for k, slot in slots.items()}
        """Shared by every instance loaded so (never mutated: an instance that another scope
        or query also loads gets a merged copy)."""


def loaded(scope: Scope, state: Any, context: Any) -> None:
    """A query (``context``, a QueryContext) loaded the instance of ``state`` (new, or
    populated further) in a scope that watches eager loads.

    Runs for every instance a query loads: what the query and load path decide is worked out
    for the first instance and shared by the rest, so an instance costs a count per slot and
    one registry entry (10,000 instances: 4 allocations each before, none now)."""
    if scope.eager_overflow:
        return
    loads = _loads(scope, state, context)
    if loads is None:
        return
    if len(watched) >= MAX_WATCHED:
        scope.eager_overflow = True  # a read could go unseen: report nothing, never falsely
        return
    registry = loads.registry
    if loads.checked and not all(has_value(state, key) for key in loads.checked):
        # A joined load that did not run here (a recursion SQLAlchemy cut short).
        registry = {k: v for k, v in registry.items()
                    if k not in loads.checked or has_value(state, k)}
        if not registry:
            return
    for slots in registry.values():
        slots[0].count += 1
    instance_id = id(state.obj())
    known = watched.get(instance_id)
    if known is None:
        watched[instance_id] = registry
    elif known is not registry:  # populated again (a refresh, another query or scope)
        merged = dict(known)
        for key, slots in registry.items():
            before = merged.get(key, ())
            merged[key] = (*before, *(slot for slot in slots if slot not in before))
        watched[instance_id] = merged
    scope.watching.add(instance_id)


def _loads(scope: Scope, state: Any, context: Any) -> _Loads | None:
    """The :class:`_Loads` of this instance's query, load path and class (None: nothing eager)."""
    attributes = context.attributes
    cache: dict[tuple[Any, ...], _Loads | None] | None = attributes.get(_LOADS_KEY)
    if cache is None:
        cache = attributes[_LOADS_KEY] = {}
    key = (scope, state.load_path, state.manager)
    if key in cache:
        return cache[key]
    plan = eager_plan(context, state)
    loads = None
    if plan:
        location = _location(scope, context)
        slots: dict[str, Slot] = {}
        for load in plan:
            place = (load.path, location)
            slot = scope.eager.get(place)
            if slot is None:
                slot = scope.eager[place] = Slot(load, location, query_statement(context))
            slots[load.prop.key] = slot
            if slot.manager is not state.manager:  # a new slot, or a subclass's own attribute
                slot.manager = state.manager
                watch_reads(state, load.prop.key)
        loads = _Loads(slots, tuple(load.prop.key for load in plan if load.needs_value))
    cache[key] = loads
    return loads


def _location(scope: Scope, context: Any) -> str:
    """The application line running the query (worked out once per query execution)."""
    attributes = context.attributes
    known = attributes.get(_SITE)
    if known is None:
        site = describe(scope.anchor, 4)
        known = attributes[_SITE] = str(site.location) if site.location else "<unknown>"
    return str(known)


def forget(scope: Scope) -> None:
    """Stop watching the scope's instances for the scope's own slots (another open scope may
    watch the same instance). Registry entries are shared: replaced, never changed."""
    mine = {id(slot) for slot in scope.eager.values()}
    # Per shared entry, worked out once (the entry is kept with it, so its id stays its own).
    remaining: dict[int, tuple[object, dict[str, tuple[Slot, ...]]]] = {}
    for instance_id in scope.watching:
        known = watched.get(instance_id)
        if known is None:
            continue
        done = remaining.get(id(known))
        if done is None or done[0] is not known:
            done = remaining[id(known)] = (known, {
                key: others for key, slots in known.items()
                if (others := tuple(slot for slot in slots if id(slot) not in mine))})
        kept = done[1]
        if kept:
            watched[instance_id] = kept
        else:
            del watched[instance_id]
    scope.watching = set()


def report_unused(scope: Scope) -> None:
    """The scope ends (its instances already forgotten): each eager load path nothing read is
    a detection (once)."""
    slots, scope.eager = scope.eager, {}
    if scope.eager_overflow:
        return
    # A scope that watches only because its owner does (a request inside a test) reports to it.
    target = scope if scope.settings.unused_eager or scope.authority is None else scope.authority
    for (path, location), slot in slots.items():
        if slot.read or not slot.count:
            continue

        def make(slot: Slot = slot) -> Detection | None:
            detection = unused_eager_detection(slot.load, slot.location, 0, slot.statement)
            return None if matches(detection, slot.allowed) else detection

        target.place(("unused_eager_load", path, location), ("unused_eager_load", path,
                     location, None, False), slot.count, make)


def watch_rows(scope: Scope, context: ExecutionContext, statement: str) -> None:
    """A top-level SELECT in ``scope``: count its rows if its joined collections multiply
    them."""
    collections = joined_collections(context)
    if not collections:
        return
    positions = root_key_columns(context, collections[0][0])
    if not positions:
        return
    site = describe(scope.anchor, 4)
    location = str(site.location) if site.location else "<unknown>"
    compiled = context.compiled
    shape = fingerprint(compiled.string if compiled is not None else statement)

    def done(rows: int, roots: int) -> None:
        try:
            if rows >= MIN_EXPLOSION_ROWS and rows >= scope.settings.explosion_factor * roots:
                _explosion(scope, collections, location, shape, rows, roots, statement)
        except Exception as error:  # the application's fetch must never fail for this
            internal_error(error)

    count_rows(context, positions, done)


def _explosion(scope: Scope, collections: tuple[tuple[Any, ...], ...], location: str,
               shape: str, rows: int, roots: int, statement: str) -> None:
    def make() -> Detection:
        return row_explosion_detection(collections, location, rows, roots, statement)

    place = ("row_explosion", shape, location, None, False)
    new = scope.place(place, place, rows, make)
    if new is not None and scope.emit_at_once and scope.settings.mode != "raise":
        emit(new, scope.settings.mode)
