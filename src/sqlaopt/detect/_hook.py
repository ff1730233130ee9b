"""The one cursor listener (SQLAlchemy's dialect events) and the per-statement path from event
to scope.

Hot path budget: every statement of the application passes through :func:`_on_execute`. With
no scope and no counter open it returns after two ContextVar reads; in a scope it classifies
the statement, walks the user frames once and updates one dict entry. Only a count reaching
the threshold reads the frames for a report and builds a Detection.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from types import CodeType
from typing import Any, Final

from sqlalchemy import Engine, event
from sqlalchemy.engine import Connection, ExecutionContext
from sqlalchemy.orm import Session, SessionTransaction

from .._errors import NPlusOneError
from .._lanes import lane
from .._while_used import WhileUsed
from . import _eager, _slow, _writes
from ._callsite import activations, capture, depth_of, describe, is_test_code
from ._emit import emit, internal_error
from ._orm import (
    COLUMN,
    IGNORE,
    LAZY,
    STATEMENT,
    STATEMENT_LOAD,
    Load,
    classify,
    other_dialect_listeners,
    state_of,
    stop_watching_reads,
    track_flushes,
    track_loads,
)
from ._repeats import Repeats
from ._report import Detection
from ._scope import Scope, Settings, active_scope
from ._sql import fingerprint
from ._suggest import build_detection, chain, is_self_referential, recursion_fix

__all__ = [
    "MAX_STATEMENTS",
    "QueryCount",
    "close_counter",
    "enter",
    "install_defaults",
    "leave",
    "open_counter",
    "running_test_scope",
    "set_test_scope",
    "test_running",
    "unobserved",
]

_SCOPE_KEY = "_sqlaopt_scope"
MAX_STATEMENTS: Final = 10_000
"""A ``count_queries()`` block keeps the SQL of its first statements only (it counts all)."""


class QueryCount:
    """The SQL statements run inside a ``count_queries()`` block."""

    __slots__ = ("count", "statements")

    def __init__(self) -> None:
        self.count = 0
        """How many statements ran."""
        self.statements: list[str] = []
        """Their SQL, in order (the first ``MAX_STATEMENTS`` of them)."""

    def add(self, statement: str) -> None:
        self.count += 1
        if self.count <= MAX_STATEMENTS:
            self.statements.append(statement)

    def __repr__(self) -> str:
        return f"<QueryCount {self.count}>"


_counters: ContextVar[tuple[QueryCount, ...]] = ContextVar("sqlaopt_counters", default=())
_installed: Settings | None = None
_test_scope: Scope | None = None
"""The running test's scope (pytest plugin): statements from threads and executor tasks that
carry no scope of their own belong to it."""
_lock = threading.Lock()


def _on_execute(cursor: Any, statement: str, parameters: Any, context: ExecutionContext) -> None:
    # A dialect event (do_execute, do_executemany): it returns None, so SQLAlchemy goes on to
    # run the statement itself. Why not a Connection event: see _switch_cursor_hook.
    try:
        for counter in _counters.get():
            counter.add(statement)
        scope = active_scope.get()
        if scope is None and _test_scope is None:  # production: install() alone, no calls
            scope = context.root_connection.__dict__.get(_SCOPE_KEY) \
                if _installed is not None else None
            if scope is None:
                return
        elif scope is None or scope.closed:
            scope = _reroute(scope, context.root_connection)
            if scope is None:
                return
        scope.report.statements += 1
        settings = scope.settings
        if settings.mode != "off":
            if settings.slow_ms is not None:
                _slow.start(context, scope)
            if not context.executemany:
                _observe(scope, context, statement, parameters)
    except NPlusOneError:
        raise
    except Exception as error:  # the detector must never break the application
        internal_error(error)


def _on_execute_no_params(cursor: Any, statement: str, context: ExecutionContext) -> None:
    _on_execute(cursor, statement, None, context)  # one frame more: the walk passes over it


def _reroute(scope: Scope | None, conn: Connection | None,
             session: Session | None = None) -> Scope | None:
    """Where a statement outside any open scope goes: the nearest open enclosing scope of a
    closed one (work a request started and left running), else the running test, else the
    Session's own scope under ``install()``, else the closed scope itself (acting at once)."""
    if scope is not None:
        ancestor = scope.open_ancestor()
        if ancestor is not None:
            return ancestor
    test = running_test_scope()
    if test is not None:
        return test
    if _installed is not None:
        session_scope: Scope | None = (
            conn.__dict__.get(_SCOPE_KEY) if conn is not None
            else _session_scope(session) if session is not None
            else None)
        if session_scope is not None:
            return session_scope
    return scope


def _observe(scope: Scope, context: ExecutionContext, statement: str, parameters: Any) -> None:
    load = classify(context)
    kind = load.kind
    if kind == IGNORE:
        _writes.observe(scope, context, statement)  # a write, never an N+1 (issue 13)
        return
    target: object
    relationship = load.relationship if kind == LAZY else None
    if relationship is not None:
        target = relationship
        _remember_lineage(scope, load)
    elif kind == COLUMN:
        target = load.mapper
    else:
        _eager.watch_rows(scope, context, statement)
        kind, load = STATEMENT, STATEMENT_LOAD
        compiled = context.compiled
        target = fingerprint(compiled.string if compiled is not None else statement)
    site = capture(scope.anchor, 3)
    if site is None:
        return
    served = load.served  # a statement of sqlaopt.batch(): that many loads, reported once
    key = (kind, target, lane(), site) if not served else (kind, target, lane(), site, True)
    found = scope.found.get(key)
    if found is not None:  # a loop already reported: more repeats
        for detection in found:
            detection.count += served or 1
        if kind == LAZY and scope.recursive and key in scope.recursive:
            _deepen(scope, key)
        return
    count = scope.count(key, served or 1)
    if count == 1 and scope.tracks_calls:
        scope.first_calls[key] = activations(scope.anchor, 3)
    if kind == STATEMENT and _batching(scope, key, context, statement, parameters, count):
        return
    if count >= (1 if served else scope.settings.threshold):
        _new_loop(scope, key, load, context, statement, count)


def _batching(scope: Scope, key: tuple[Any, ...], context: ExecutionContext, statement: str,
              parameters: Any, count: int) -> bool:
    """Whether a repeated statement's executions so far are a batch (rule 6): then it is not
    (yet) a loop; pages never will be."""
    repeats = scope.repeats.get(key)
    if repeats is None:
        repeats = scope.repeats[key] = Repeats()
    repeats.add(context, statement, parameters, first=count == 1)
    if count < scope.settings.threshold or not repeats.batching:
        return False
    if repeats.paged:
        scope.found[key] = ()
        scope.repeats.pop(key, None)
    return True



def _remember_lineage(scope: Scope, load: Load) -> None:
    """How this lazy load's parent was reached, for the fix's chain (see ``chain``)."""
    load_path = load.parent_load_path
    if load_path is scope.last_lineage:
        return
    scope.last_lineage = load_path
    path = load.parent_path
    if len(path) > 1:
        scope.lineage.setdefault(path[-1], path)


def _new_loop(scope: Scope, key: tuple[Any, ...], load: Load, context: ExecutionContext,
              statement: str, count: int) -> None:
    """``key`` just reached the threshold: find its place in the code and record it there."""
    site = describe(scope.anchor, 4, scope.first_calls.pop(key, None))
    in_test = is_test_code(site.repeating_file)
    if site.retry or (site.across_calls and not scope.settings.test_loops):
        # The repeats so far are a retry, or the test's (each from another call of the
        # application). Count afresh from this call: a loop inside one call is still found.
        scope.counts[key] = 1
        scope.first_calls[key] = activations(scope.anchor, 4)
        return
    repeats = scope.repeats.pop(key, None)
    same_parameters = repeats is not None and repeats.same and repeats.digest is not None

    def make() -> Detection | None:
        if in_test and not scope.settings.test_loops:
            return None
        detection = build_detection(load, site, context, statement, lineage=scope.lineage,
                                    same_parameters=same_parameters)
        detection.in_test_code = in_test
        return detection

    target = key[1]
    place = (load.kind, target, site.location, site.loop, load.served > 0)
    new = scope.place(key, place, count, make)
    if new is None:
        return
    if load.kind == LAZY and site.recursive is not None:
        _track_recursion(scope, key, load, new, site.recursive, site.depth)
    mode = scope.settings.mode
    if (scope.emit_at_once and mode != "raise") or (mode == "raise" and not new.batched):
        emit(new, mode)  # a batched load never raises: it is already fixed for this run


def _track_recursion(scope: Scope, key: tuple[Any, ...], load: Load, detection: Detection,
                     function: CodeType, depth: int) -> None:
    """A self-referential relationship lazily loaded by a recursive function: its fix is
    ``recursion_depth=N`` with the deepest level the recursion reaches in the scope."""
    relationship = load.relationship
    if relationship is not None and is_self_referential(relationship):
        scope.depths[detection] = (chain(load, scope.lineage), depth, function)
        scope.recursive.add(key)
        detection.suggestion = recursion_fix(scope.depths[detection][0], depth)


def _deepen(scope: Scope, key: tuple[Any, ...]) -> None:
    for detection in scope.found.get(key, ()):
        entry = scope.depths.get(detection)
        if entry is not None:
            rels, depth, function = entry
            scope.depths[detection] = (rels, max(depth, depth_of(function)), function)


def finalize(scope: Scope) -> None:
    """Bring suggestions up to date with what the whole scope saw (the deepest recursion),
    and report the eager loads nothing read in it."""
    for detection, (rels, depth, _) in list(scope.depths.items()):
        detection.suggestion = recursion_fix(rels, depth)
    _eager.report_unused(scope)


# ---------------------------------------------------------------- eager loads


def _on_load(target: Any, context: Any, *attributes: Any) -> None:
    """A query loaded (or populated further) an instance: the scope watching eager loads
    here records it."""
    try:
        scope = active_scope.get()
        if scope is None or scope.closed:
            scope = _reroute(scope, None, context.session)
        if scope is not None and scope.watch_eager and not scope.closed:
            _eager.loaded(scope, state_of(target), context)
    except Exception as error:  # the detector must never break the application
        internal_error(error)


def _on_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    """Under ``install(unused_eager=True)`` a Session's scope has no end: its eager loads are
    judged when its outermost transaction ends."""
    if transaction.parent is not None:
        return
    try:
        scope = _session_scope(session)
        if scope is not None and scope.watch_eager:
            known = len(scope.report.detections)
            _eager.forget(scope)
            _eager.report_unused(scope)
            for detection in scope.report.detections[known:]:
                emit(detection, scope.settings.mode if scope.settings.mode != "raise" else "log")
    except Exception as error:
        internal_error(error)


def _session_scope(session: Session) -> Scope | None:
    """The scope ``install()`` opened for ``session`` (None: none yet)."""
    scope: Scope | None = session.info.get(_SCOPE_KEY, (None, None))[1]
    return scope


def _switch_eager_watch(on: bool) -> None:
    """The load listener and the swapped attributes exist only while a scope watches."""
    track_loads(on, _on_load)
    if not on:
        stop_watching_reads()


_eager_watch = WhileUsed(_switch_eager_watch)  # scopes watching eager loads


# ---------------------------------------------------------------- listener lifetime


def _on_begin(session: Session, transaction: SessionTransaction, connection: Connection) -> None:
    settings = _installed
    if settings is None:
        return
    try:
        made_for, scope = session.info.get(_SCOPE_KEY, (None, None))
        if scope is None or made_for is not settings:  # new Session, or install() again
            scope = Scope(settings.sampled(), owns=False, emit_at_once=True)
            session.info[_SCOPE_KEY] = (settings, scope)
        connection.__dict__[_SCOPE_KEY] = scope
    except Exception as error:
        internal_error(error)


def _on_cursor_execute(conn: Connection, cursor: Any, statement: str, parameters: Any,
                       context: ExecutionContext, executemany: bool) -> tuple[str, Any]:
    _on_execute(cursor, statement, parameters, context)
    return statement, parameters


# Dialect events, not Connection ones: the first Connection listener ever registered makes
# every Connection dispatch its events (Engine._has_events, never reset, even once the
# listener is removed), which costs a lazy load about 10 µs; a dialect listener costs only its
# own call. But a dialect listener registered before ours that runs the statement itself
# (returning True) ends the dispatch before ours, so then the Connection event it is.
_DIALECT_EVENTS: Final = (("do_execute", _on_execute, False),
                          ("do_executemany", _on_execute, False),
                          ("do_execute_no_params", _on_execute_no_params, False))
_CONNECTION_EVENTS: Final = (("before_cursor_execute", _on_cursor_execute, True),)
_registered: tuple[tuple[str, Any, bool], ...] = ()  # (event, listener, retval)


def _switch_cursor_hook(on: bool) -> None:
    global _registered
    if on:
        _registered = _DIALECT_EVENTS
        if other_dialect_listeners([name for name, _, _ in _DIALECT_EVENTS],
                                   {listener for _, listener, _ in _DIALECT_EVENTS}):
            _registered = _CONNECTION_EVENTS
        for name, listener, retval in _registered:
            event.listen(Engine, name, listener, retval=retval)
    else:
        for name, listener, _ in _registered:
            event.remove(Engine, name, listener)
        _registered = ()
    track_flushes(on)


_cursor_hook = WhileUsed(_switch_cursor_hook)  # open scopes and counters, plus install()
_acquire = _cursor_hook.use
_release = _cursor_hook.done


def install_defaults(settings: Settings | None) -> None:
    """Set (or, with None, clear) the process-wide settings for code outside explicit scopes."""
    global _installed
    with _lock:
        previous, _installed = _installed, settings
    if previous is None and settings is not None:
        event.listen(Session, "after_begin", _on_begin)
        _acquire()
    elif previous is not None and settings is None:
        event.remove(Session, "after_begin", _on_begin)
        _release()
    if settings is not None and settings.unused_eager:
        event.listen(Session, "after_transaction_end", _on_transaction_end)
        _eager_watch.use()
    if previous is not None and previous.unused_eager:
        event.remove(Session, "after_transaction_end", _on_transaction_end)
        _eager_watch.done()
    if settings is not None and settings.slow_ms is not None:
        _slow.acquire()
    if previous is not None and previous.slow_ms is not None:
        _slow.release()


def set_test_scope(scope: Scope | None) -> Scope | None:
    """Make ``scope`` the running test's scope; returns the one it replaces (an outer test's,
    under pytester) for the plugin to restore."""
    global _test_scope
    previous, _test_scope = _test_scope, scope
    return previous


def running_test_scope() -> Scope | None:
    """The scope of the test running in this process (under the pytest plugin), if any."""
    test = _test_scope
    return test if test is not None and not test.closed else None


def test_running() -> bool:
    """Whether a test is running in this process (under the pytest plugin)."""
    return running_test_scope() is not None


def enter(settings: Settings, *, opener: object = None, **scope_args: Any) -> Scope:
    """Open a scope in the current context, nested in the one active here (or, in a thread a
    test started, in the test's)."""
    _acquire()
    try:
        parent = active_scope.get()
        if parent is not None and parent.closed:
            parent = parent.open_ancestor()
        if parent is None:
            parent = running_test_scope()
        scope = Scope(settings, parent=parent, **scope_args)
        scope.opener = opener
        scope.token = active_scope.set(scope)
    except BaseException:
        _release()
        raise
    if settings.slow_ms is not None:
        _slow.acquire()
    if scope.watch_eager:
        _eager_watch.use()
    return scope


def leave(scope: Scope) -> None:
    """Close a scope: hand its statement count to the parent, then warn or log what it found
    (never raising: see ``emit``)."""
    if scope.closed:
        return
    scope.closed = True
    scope.emit_at_once = True  # statements that still reach it (threads it started) act at once
    token, scope.token, scope.anchor = scope.token, None, None
    try:
        if token is not None:
            active_scope.reset(token)
    except (ValueError, RuntimeError):  # closed from another context (a WSGI body's close())
        if active_scope.get() is scope:
            active_scope.set(scope.parent)
    _release()
    if scope.settings.slow_ms is not None:
        _slow.release()
    if scope.watch_eager:
        _eager.forget(scope)  # judged below (finalize); nothing reads into it any more
        _eager_watch.done()
    if scope.parent is not None:
        scope.parent.report.statements += scope.report.statements
    mode = scope.settings.mode
    try:
        finalize(scope)
        if mode in ("warn", "log"):
            for detection in scope.actionable():
                emit(detection, mode)
    except Exception as error:
        internal_error(error)


@contextmanager
def unobserved() -> Iterator[None]:
    """Run sqlaopt's own database work (monitoring queries) unseen by every scope and
    statement counter: a scope in mode ``off`` is active inside the block, and no counter."""
    token = active_scope.set(Scope(_OFF))
    counters = _counters.set(())
    try:
        yield
    finally:
        _counters.reset(counters)
        active_scope.reset(token)


_OFF = Settings(mode="off")


def open_counter() -> tuple[QueryCount, Token[tuple[QueryCount, ...]]]:
    _acquire()
    counter = QueryCount()
    return counter, _counters.set((*_counters.get(), counter))


def close_counter(token: Token[tuple[QueryCount, ...]]) -> None:
    _counters.reset(token)
    _release()
