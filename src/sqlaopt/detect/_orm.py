"""What kind of load a statement is, read at the cursor level.

This is the only module that reads SQLAlchemy's internals. The detector listens at the
cursor (the dialect's ``do_execute`` events), because it sees every statement (ORM, Core,
flush) with its compiled SQL for free, where ``do_orm_execute`` costs 3-5 µs and misses Core
and flush statements (see docs/design.md). At that level the ORM's context is
in the execution options and the compile state:

- ``_sa_orm_load_options._lazy_loaded_from``: the parent ``InstanceState`` of a lazy load
  (also set for ``immediateload``, which is told apart by ``sa_top_level_orm_context``);
- ``compile_state.compile_options._current_path``: the loader path, ending with the
  relationship being loaded;
- ``compile_state.compile_options._for_refresh_state``: a column load (expired or deferred
  attribute, ``Session.refresh``);
- ``Session._flushing``: a flush is running, so whatever it reads is the write's own SQL;
- ``synchronize_session`` in the execution options: the SELECT an ORM-enabled UPDATE or
  DELETE runs first to find its rows (dialects without UPDATE ... RETURNING, e.g. MariaDB).

For issue 13's kinds it also reads: the compile state's ``("eager_row_processor", path)``
entries and ``multi_row_eager_loaders`` (joined eager loads), a query's ``post_load_paths``
(select-IN and immediate loads) and loader lookups (subquery loads), the execution context's
``cursor_fetch_strategy`` (replaced by a counting one for statements that may explode), the
compiled ``_result_columns`` (where the root's primary key is), and it swaps the class of a
relationship's ``InstrumentedAttribute`` while reads of it are watched.

Checked on SQLAlchemy 2.0.25 and 2.1.9 by the test suite. Should a later version move them,
:func:`classify` degrades to reporting plain statements instead of failing.
"""

from __future__ import annotations

import os
import sys
import weakref
from collections.abc import Callable, Container, Iterable
from contextvars import ContextVar
from types import FrameType
from typing import Any, Final

from sqlalchemy import Column, event
from sqlalchemy.engine import Dialect, ExecutionContext
from sqlalchemy.engine import cursor as _cursor
from sqlalchemy.orm import InstrumentedAttribute, Mapper, RelationshipProperty, Session
from sqlalchemy.orm.base import instance_state

from ..batching import BATCHED_OPTION
from ._sql import in_list_literals, is_read

__all__ = [
    "COLUMN",
    "IGNORE",
    "LAZY",
    "STATEMENT",
    "STATEMENT_LOAD",
    "EagerLoad",
    "Load",
    "WatchedAttribute",
    "attribute_being_loaded",
    "class_name_of_table",
    "classify",
    "count_rows",
    "deleting",
    "eager_plan",
    "flush_number",
    "has_value",
    "in_list_values",
    "joined_collections",
    "limit_and_offset",
    "other_dialect_listeners",
    "query_statement",
    "relationships_on",
    "root_key_columns",
    "state_of",
    "stop_watching_reads",
    "track_flushes",
    "track_loads",
    "watch_reads",
    "watched",
    "write_kind",
    "written_table",
]

IGNORE: Final = 0  # writes, DDL, a flush's own reads and eager-loader sub-queries
STATEMENT: Final = 1
LAZY: Final = 2
COLUMN: Final = 3


class Load:
    """A classified statement: its kind and, for ORM loads, what is being loaded."""

    __slots__ = ("kind", "path", "relationship", "served", "state")

    def __init__(self, kind: int, path: Any = None, state: Any = None, served: int = 0,
                 relationship: RelationshipProperty[Any] | None = None) -> None:
        self.kind = kind
        self.path = path
        self.relationship = relationship
        """The relationship a lazy load is loading (the last one on ``path``)."""
        self.state = state
        self.served = served
        """For a statement of ``sqlaopt.batch()``: how many loads it replaced (0: none)."""

    @property
    def parent_path(self) -> tuple[Any, ...]:
        """How the parent instance was reached: its load path, as (mapper, relationship, ...).

        The lazy statement's own path may be cut short (SQLAlchemy caches many-to-one loads
        relative to the parent), while the parent instance remembers how it was loaded.
        """
        return tuple(getattr(self.parent_load_path, "path", ()))

    @property
    def parent_load_path(self) -> Any:
        """The parent instance's load path as SQLAlchemy's path object (None: unknown)."""
        return getattr(self.state, "load_path", None)

    @property
    def mapper(self) -> Mapper[Any] | None:
        """The mapper owning what is loaded: the relationship's parent, or the refreshed row's."""
        last = self.relationship
        if last is not None:
            return last.parent
        state = self.state
        return state.mapper if state is not None else None


STATEMENT_LOAD: Final = Load(STATEMENT)
"""The one :class:`Load` of every plain statement (no ORM load to name)."""
_IGNORE = Load(IGNORE)

# The Session flushing in this context (weakly): set by a before_flush listener, and checked
# against the Session's own flag, so a flush that ended (or failed) never leaves it stale.
_flushing: ContextVar[weakref.ref[Session] | None] = ContextVar("sqlaopt_flushing", default=None)
_flush_number: ContextVar[int] = ContextVar("sqlaopt_flush_number", default=0)
_flushes = 0


def _on_before_flush(session: Session, flush_context: Any, instances: Any) -> None:
    global _flushes
    _flushing.set(weakref.ref(session))
    _flushes += 1  # a number per flush: a flush's many statements are one write (issue 13)
    _flush_number.set(_flushes)


def track_flushes(on: bool) -> None:
    """Start (or stop) noticing flushes, so their statements are never taken for loads."""
    if on:
        event.listen(Session, "before_flush", _on_before_flush)
    else:
        event.remove(Session, "before_flush", _on_before_flush)


def _in_flush() -> bool:
    ref = _flushing.get()
    session = ref() if ref is not None else None
    if session is not None and getattr(session, "_flushing", False):
        return True
    _flushing.set(None)  # that flush is over: later statements need not ask again
    return False


def classify(context: ExecutionContext) -> Load:
    """Classify the statement about to run in ``context``."""
    known = _known(context)
    if known.writes:
        return _IGNORE
    if _flushing.get() is not None and _in_flush():
        return _IGNORE
    options = context.execution_options
    if "synchronize_session" in options:
        return _IGNORE
    batched = options.get(BATCHED_OPTION)  # one statement of sqlaopt.batch() for many loads
    if batched is not None:
        return _batched(batched, known)
    load_options = options.get("_sa_orm_load_options")
    if load_options is None:
        return STATEMENT_LOAD if known.reads else _IGNORE
    eager_subquery = "sa_top_level_orm_context" in options
    parent = getattr(load_options, "_lazy_loaded_from", None)
    if parent is not None and not eager_subquery:
        return Load(LAZY, known.path, parent, relationship=known.relationship)
    if eager_subquery:
        return _IGNORE
    if known.refresh:
        return Load(COLUMN, None, getattr(load_options, "_refresh_state", None))
    return STATEMENT_LOAD


def _batched(batched: Any, known: _Compiled) -> Load:
    if batched.column:
        return Load(COLUMN, None, batched.state, batched.served)
    return Load(LAZY, known.path, batched.state, batched.served, known.relationship)


def relationships_on(path: Iterable[Any]) -> list[RelationshipProperty[Any]]:
    """The relationships of a loader path, in order."""
    return [p for p in path if isinstance(p, RelationshipProperty)]


class _Compiled:
    """What a compiled statement says about itself: the same at every execution of it, so
    read once per compiled statement (SQLAlchemy reuses one from its cache for every
    execution of a statement shape) instead of once per execution."""

    __slots__ = ("compiled", "joined", "path", "reads", "refresh", "relationship", "writes")

    def __init__(self, context: ExecutionContext) -> None:
        default: Any = context  # the flags live on DefaultExecutionContext
        compiled = context.compiled
        # Held weakly: a compiled statement holds its statement and bound values (the
        # application's data), and SQLAlchemy's cache decides how long it lives.
        self.compiled = _weak(compiled)
        self.writes = bool(default.isinsert or default.isupdate or default.isdelete
                           or default.isddl)
        compile_state = getattr(compiled, "compile_state", None)
        compile_options = getattr(compile_state, "compile_options", None)
        self.path = getattr(compile_options, "_current_path", None)
        relationships = relationships_on(getattr(self.path, "path", ()))
        self.relationship = relationships[-1] if relationships else None
        self.refresh = bool(getattr(compile_options, "_for_refresh_state", False))
        self.reads = _reads(context)
        self.joined = _joined_collections(compile_state)


def _weak(compiled: object) -> weakref.ref[object] | None:
    try:
        return weakref.ref(compiled) if compiled is not None else None
    except TypeError:  # a compiled form that takes no weak reference: read at every execution
        return None


_MAX_COMPILED: Final = 2_048
_compiled: dict[int, _Compiled] = {}


def _known(context: ExecutionContext) -> _Compiled:
    compiled = context.compiled
    known = _compiled.get(id(compiled))
    if known is not None and known.compiled is not None and known.compiled() is compiled:
        return known
    known = _Compiled(context)
    if known.compiled is not None:  # SQL sent as is (exec_driver_sql) has no compiled form
        if len(_compiled) >= _MAX_COMPILED:
            _compiled.clear()
        _compiled[id(compiled)] = known
    return known


def _reads(context: ExecutionContext) -> bool:
    """Whether a Core or text statement reads rows. Only reads can be an N+1: a loop of DDL,
    ``SET`` or maintenance statements is not one."""
    compiled_statement = getattr(context.compiled, "statement", None)
    if getattr(compiled_statement, "is_select", False):
        return True
    return is_read(getattr(context, "statement", "") or "")


def limit_and_offset(context: ExecutionContext) -> tuple[int | None, object]:
    """The LIMIT (as an int, when known) and OFFSET of a compiled SELECT; (None, None) for
    other statements."""
    statement = getattr(context.compiled, "statement", None)
    try:
        limit = getattr(statement, "_limit", None)
        offset = getattr(statement, "_offset_clause", None)
    except Exception:  # a limit that is not a plain integer
        return None, None
    return (limit if isinstance(limit, int) else None), offset


def in_list_values(context: ExecutionContext, statement: str) -> list[Any]:
    """The values of the statement's IN lists: its expanded ``IN`` parameters (bound values
    ``name_1``, ``name_2``, ... of an expanding parameter ``name``), or for SQL text the
    literals between ``IN (`` and ``)``."""
    compiled = context.compiled
    binds = getattr(compiled, "binds", None) or {}
    names = tuple(f"{name}_" for name, bind in binds.items() if getattr(bind, "expanding", False))
    if not names:
        return in_list_literals(statement)
    compiled_parameters = getattr(context, "compiled_parameters", None)
    parameters = compiled_parameters[0] if compiled_parameters else {}
    return [value for key, value in parameters.items() if key.startswith(names)]


def attribute_being_loaded(start: FrameType | None = None) -> str | None:
    """The attribute whose read is loading right now: the key of the innermost SQLAlchemy
    ``AttributeImpl.get`` on the stack (an expired instance reloads every column at once, so
    the statement alone cannot say which one the application read)."""
    frame: FrameType | None = start if start is not None else sys._getframe(1)
    while frame is not None:
        code = frame.f_code
        if code.co_name == "get" and code.co_filename.endswith(_ATTRIBUTES_MODULE):
            key = getattr(frame.f_locals.get("self"), "key", None)  # (_)AttributeImpl
            if isinstance(key, str):
                return key
        frame = frame.f_back
    return None


_ATTRIBUTES_MODULE: Final = os.path.join("orm", "attributes.py")


def deleting() -> bool:
    """Whether the statement running now comes from ``Session.delete()`` (its cascade loads
    the collections it deletes along)."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        code = frame.f_code
        if code.co_name in ("delete", "_delete_impl") and code.co_filename.endswith(_SESSION):
            return True
        frame = frame.f_back
    return False


_SESSION: Final = os.path.join("orm", "session.py")


def class_name_of_table(table: Any) -> str | None:
    """The class mapped to ``table`` (a Table, or a table name) in any registry, or None."""
    from sqlalchemy.orm import mapperlib

    for registry in list(getattr(mapperlib, "_mapper_registries", ())):
        for mapper in registry.mappers:
            if table in mapper.tables or any(t.name == table for t in mapper.tables):
                return str(mapper.class_.__name__)
    return None


# ---------------------------------------------------------------- eager loads (issue 13)

JOINED: Final = "joinedload"
_POST_LOADERS: Final = {"_SelectInLoader": "selectinload", "SelectInLoader": "selectinload",
                        "_ImmediateLoader": "immediateload", "ImmediateLoader": "immediateload"}
_SUBQUERY_LOADERS: Final = ("_SubqueryLoader", "SubqueryLoader")


class EagerLoad:
    """A relationship a query loads eagerly into the instances of one load path."""

    __slots__ = ("by_option", "loader", "needs_value", "path", "prop")

    def __init__(self, prop: RelationshipProperty[Any], loader: str, by_option: bool,
                 path: tuple[Any, ...], needs_value: bool) -> None:
        self.prop = prop
        self.loader = loader
        """``"joinedload"``, ``"selectinload"``, ``"subqueryload"`` or ``"immediateload"``."""
        self.by_option = by_option
        """Whether a loader option asked for it (else the mapping's ``lazy=``)."""
        self.path = path
        """The load path ending with the relationship: (mapper, relationship, ...)."""
        self.needs_value = needs_value
        """Joined and subquery loads fill the value during the row: loaded only if present."""


def eager_plan(context: Any, state: Any) -> tuple[EagerLoad, ...]:
    """The relationships the query of ``context`` (a QueryContext) loads eagerly into a new
    instance at ``state``'s load path. Joined loads are named by the compile state's
    ``("eager_row_processor", path)`` entries (paths relative to a sub-query's
    ``current_path``), select-IN and immediate loads by the post-load registry. The caller
    keeps the answer per query and load path (``_eager``)."""
    # The load path an instance keeps is the one it was first created through: another query
    # (a ``refresh`` event), or, in one query, a nested join that reached the root's own row first
    # (SQLAlchemy 2.0.25, ``joinedload(A.bs).joinedload(B.a)``). Then this query may have
    # loaded it as its root entity: the root path's plan.
    for load_path in (state.load_path, state.mapper._path_registry):
        plan = _eager_plan(context, state.mapper, tuple(load_path.path))
        if plan:
            return plan
    return ()


def _eager_plan(context: Any, mapper: Mapper[Any], full: tuple[Any, ...],
                ) -> tuple[EagerLoad, ...]:
    current = getattr(getattr(context.compile_state, "current_path", None), "path", ()) or ()
    relative = full[len(current):]
    attributes = context.attributes
    plan = []
    for prop in mapper.relationships:
        step = (*relative, prop)
        by_option = ("loader", step) in attributes
        if ("eager_row_processor", step) in attributes:
            plan.append(EagerLoad(prop, JOINED, by_option, (*full, prop), True))
            continue
        posted = context.post_load_paths.get(full)
        if posted is not None and prop in posted.loaders:
            loader_class = type(getattr(posted.loaders[prop][3], "__self__", None)).__name__
            loader = _POST_LOADERS.get(loader_class)
            if loader is not None:
                plan.append(EagerLoad(prop, loader, by_option, (*full, prop), False))
            continue
        if _loader_name(context, prop, relative) in _SUBQUERY_LOADERS:
            plan.append(EagerLoad(prop, "subqueryload", by_option, (*full, prop), True))
    return tuple(plan)


def state_of(instance: object) -> Any:
    """The InstanceState of a mapped instance."""
    return instance_state(instance)


def _loader_name(context: Any, prop: RelationshipProperty[Any], relative: tuple[Any, ...],
                 ) -> str | None:
    """The class name of the loader strategy in force for ``prop`` under ``relative``."""
    from sqlalchemy.orm.path_registry import PathRegistry

    if not relative or not isinstance(relative[0], Mapper):
        return None  # a path SQLAlchemy cut differently (a sub-query's own): not decidable
    registry: Any = PathRegistry.coerce(relative)
    option = prop._get_context_loader(context, registry)
    strategy_key = getattr(option, "strategy", None)
    strategy: Any = prop._get_strategy(strategy_key) if strategy_key else prop.strategy
    return type(strategy).__name__


def has_value(state: Any, key: str) -> bool:
    """Whether the instance holds a loaded value for ``key``."""
    return key in state.dict


class WatchedAttribute(InstrumentedAttribute[Any]):
    """An instrumented attribute whose reads are noticed: swapped in (``__class__``) for the
    relationships being watched, back out when nothing watches. A read marks every slot that
    ``watched[id(instance)][key]`` holds."""

    __slots__ = ()

    def __get__(self, instance: Any, owner: Any) -> Any:
        if instance is not None:
            slots = watched.get(id(instance))
            if slots is not None:
                for slot in slots.get(self.key, ()):
                    slot.read = True
        return InstrumentedAttribute.__get__(self, instance, owner)


watched: dict[int, dict[str, tuple[Any, ...]]] = {}
"""id(instance) -> {relationship key: the slots (``read`` flags) that loaded it} for the
instances watched. One instance can be loaded by several scopes' queries at once (a request
whose response is still open, the next request on the same Session): each slot is its own."""
_swapped: set[InstrumentedAttribute[Any]] = set()


def watch_reads(state: Any, key: str) -> None:
    """Notice reads of ``key`` on instances of ``state``'s class from now on."""
    attribute = state.manager.get(key)
    if attribute is not None and type(attribute) is InstrumentedAttribute:
        attribute.__class__ = WatchedAttribute
        _swapped.add(attribute)


def stop_watching_reads() -> None:
    """Put every swapped attribute back (nothing watches any more)."""
    while _swapped:
        try:
            attribute = _swapped.pop()
        except KeyError:
            return
        attribute.__class__ = InstrumentedAttribute


def other_dialect_listeners(names: Iterable[str], ours: Container[object]) -> bool:
    """Whether a class-level dialect listener for one of the events ``names`` is registered
    that is not one of ``ours`` (it would run before a listener registered now, and may end
    the dispatch). Read from SQLAlchemy's class-level listener registry; True when that cannot
    be read, as the safe answer."""
    try:
        return any(listener not in ours
                   for name in names
                   for listeners in getattr(Dialect.dispatch, name)._clslevel.values()
                   for listener in listeners)
    except (AttributeError, TypeError):  # a SQLAlchemy whose registry is shaped otherwise
        return True


def track_loads(on: bool, listener: Any) -> None:
    """Start (or stop) calling ``listener(instance, query_context, ...)`` for every instance a
    query loads: new ones (the ``load`` event of every mapper), and ones already in the
    Session that it populates further (``refresh``: e.g. the parents a sub-query's join
    loaded first)."""
    for name in ("load", "refresh"):
        if on:
            event.listen(Mapper, name, listener)
        else:
            event.remove(Mapper, name, listener)


def query_statement(context: Any) -> str:
    """The SQL of the query behind a QueryContext (best effort, for a report)."""
    try:
        top = getattr(context, "top_level_context", None) or context
        return str(top.compile_state.statement)
    except Exception:
        return ""


# ---------------------------------------------------------------- joined row explosions


def joined_collections(context: ExecutionContext) -> tuple[tuple[Any, ...], ...]:
    """The joined eager paths of a top-level ORM SELECT that multiply its rows: when two or
    more collections are joined on one parent, or a collection under a collection, every
    joined collection path (else ())."""
    return _known(context).joined


def _joined_collections(compile_state: Any) -> tuple[tuple[Any, ...], ...]:
    if not getattr(compile_state, "multi_row_eager_loaders", False):
        return ()
    paths = [key[1] for key in compile_state.attributes
             if isinstance(key, tuple) and len(key) == 2 and key[0] == "eager_row_processor"]
    collections = [tuple(p) for p in paths
                   if p and isinstance(p[-1], RelationshipProperty) and p[-1].uselist]
    parents = [p[:-2] for p in collections]
    nested = any(q != p and p[:len(q)] == q for p in collections for q in collections)
    if nested or len(parents) != len(set(parents)):
        return tuple(collections)
    return ()


def root_key_columns(context: ExecutionContext, root: Mapper[Any]) -> tuple[int, ...]:
    """Positions of the root entity's primary key in the statement's result rows."""
    keys = set(root.primary_key)
    result_columns = getattr(context.compiled, "_result_columns", ()) or ()
    return tuple(index for index, entry in enumerate(result_columns)
                 if any(obj in keys for obj in entry[2] if isinstance(obj, Column)))


def count_rows(context: ExecutionContext, positions: tuple[int, ...],
               done: Callable[[int, int], None]) -> None:
    """Count the rows the statement returns and the distinct keys at ``positions``;
    ``done(rows, keys)`` once the result is closed (read to its end, or closed early)."""
    default: Any = context
    if default.cursor_fetch_strategy is _cursor._DEFAULT_FETCH:
        default.cursor_fetch_strategy = _Counting(positions, done)


class _Counting(_cursor.CursorFetchStrategy):
    """The default fetch strategy, counting what it fetches (only for the statements whose
    joined collections may multiply rows). The default strategy closes the result inside a
    fetch that reaches the end, before the rows are returned: the count is final after it."""

    __slots__ = ("closed", "done", "keys", "positions", "rows")

    def __init__(self, positions: tuple[int, ...], done: Callable[[int, int], None]) -> None:
        self.positions = positions
        self.done: Callable[[int, int], None] | None = done
        self.rows = 0
        self.keys: set[Any] = set()
        self.closed = False

    def _seen(self, rows: Any) -> Any:
        positions = self.positions
        self.rows += len(rows)
        self.keys.update(tuple(row[i] for i in positions) for row in rows)
        if self.closed:
            self._report()
        return rows

    def _report(self) -> None:
        done, self.done = self.done, None
        if done is not None:
            rows, keys = self.rows, len(self.keys)
            self.keys = set()
            done(rows, keys)

    def fetchone(self, result: Any, dbapi_cursor: Any, hard_close: bool = False) -> Any:
        row = super().fetchone(result, dbapi_cursor, hard_close)
        self._seen([row] if row is not None else [])
        return row

    def fetchmany(self, result: Any, dbapi_cursor: Any, size: Any = None) -> Any:
        return self._seen(super().fetchmany(result, dbapi_cursor, size))

    def fetchall(self, result: Any, dbapi_cursor: Any) -> Any:
        return self._seen(super().fetchall(result, dbapi_cursor))

    def soft_close(self, result: Any, dbapi_cursor: Any) -> None:
        super().soft_close(result, dbapi_cursor)
        self.closed = True


# ---------------------------------------------------------------- writes

def write_kind(context: ExecutionContext) -> str | None:
    """``"insert"``, ``"update"`` or ``"delete"`` for a write statement, else None."""
    default: Any = context
    if default.isinsert:
        return "insert"
    if default.isupdate:
        return "update"
    if default.isdelete:
        return "delete"
    return None


def flush_number() -> int:
    """Which flush is running in this context (0: none): statements of one flush share it."""
    return _flush_number.get() if _flushing.get() is not None and _in_flush() else 0


def written_table(context: ExecutionContext) -> Any:
    """The table a write statement writes (None when unknown)."""
    return getattr(getattr(context.compiled, "statement", None), "table", None)
