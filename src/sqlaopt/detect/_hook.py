"""The one SQLAlchemy listener and the per-statement path from event to scope.

Hot path budget: every statement of the application passes through :func:`_on_execute`. With
no scope and no counter open it returns after two ContextVar reads; in a scope it classifies
the statement, walks the user frames once and updates one dict entry. Only a count reaching
the threshold builds a Detection.
"""

from __future__ import annotations

import threading
from asyncio import current_task
from asyncio.events import _get_running_loop
from contextvars import ContextVar, Token
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.engine import Connection, ExecutionContext
from sqlalchemy.orm import Session, SessionTransaction

from .._errors import NPlusOneError
from ._callsite import CallSite, LastSite, capture
from ._emit import emit, internal_error
from ._orm import COLUMN, IGNORE, LAZY, STATEMENT, Load, classify
from ._scope import Scope, Settings, active_scope
from ._suggest import build_detection

__all__ = ["QueryCount", "close_counter", "enter", "install_defaults", "leave", "open_counter"]

_SCOPE_KEY = "_sqlaopt_scope"
_MAX_KEYS = 50_000  # a long-lived session's counts are forgotten past this, never grown forever


class QueryCount:
    """The SQL statements run inside a ``count_queries()`` block."""

    __slots__ = ("count", "statements")

    def __init__(self) -> None:
        self.count = 0
        """How many statements ran."""
        self.statements: list[str] = []
        """Their SQL, in order."""

    def __repr__(self) -> str:
        return f"<QueryCount {self.count}>"


_counters: ContextVar[tuple[QueryCount, ...]] = ContextVar("sqlaopt_counters", default=())
_installed: Settings | None = None
_lock = threading.Lock()
_users = 0  # open scopes and counters, plus one while installed


def _on_execute(
    conn: Connection,
    cursor: Any,
    statement: str,
    parameters: Any,
    context: ExecutionContext,
    executemany: bool,
) -> tuple[str, Any]:
    # Registered with retval=True: SQLAlchemy then calls us directly instead of through an
    # adapter that returns (statement, parameters) for us, one Python call less a statement.
    for counter in _counters.get():
        counter.count += 1
        counter.statements.append(statement)
    scope = active_scope.get()
    if scope is None:
        if _installed is None:
            return statement, parameters
        scope = conn.__dict__.get(_SCOPE_KEY)
        if scope is None:
            return statement, parameters
    scope.report.statements += 1
    if scope.settings.mode != "off" and not executemany:
        try:
            _observe(scope, context, statement)
        except NPlusOneError:
            raise
        except Exception as error:  # the detector must never break the application
            internal_error(error)
    return statement, parameters


def _observe(scope: Scope, context: ExecutionContext, statement: str) -> None:
    load, target = _target(classify(context), context, statement)
    if load.kind == IGNORE:
        return
    site = capture(scope.anchor, 3, scope.last_site)
    if site is None:
        return
    key = (load.kind, target, _lane(), site[0], load.served > 0)
    counts = scope.counts
    previous = counts.get(key, 0)
    count = previous + (load.served or 1)
    if len(counts) >= _MAX_KEYS:
        counts.clear()
    counts[key] = count
    threshold = 1 if load.served else scope.settings.threshold  # batched: once per location
    if count < threshold:
        return
    if previous >= threshold:
        scope.bump(key, count)
        return
    detection = build_detection(load, CallSite(*site), context, statement, count)
    mode = scope.settings.mode
    if scope.add(detection, key) and (mode == "raise" or not scope.explicit) \
            and not (load.served and mode == "raise"):  # a batched load never raises
        emit(detection, mode)


def _target(load: Load, context: ExecutionContext, statement: str) -> tuple[Load, object]:
    """What a count is about: the relationship, the refreshed model, or the statement shape."""
    if load.kind == LAZY:
        relationship = load.relationship
        if relationship is not None:
            return load, relationship
    elif load.kind == COLUMN:
        return load, load.mapper
    elif load.kind == IGNORE:
        return load, None
    compiled = context.compiled
    return _STATEMENT, compiled.string if compiled is not None else statement


_STATEMENT = Load(STATEMENT)


def _lane() -> int:
    """Thread or asyncio task: two of them never add to each other's counts."""
    loop = _get_running_loop()
    task = current_task(loop) if loop is not None else None
    return id(task) if task is not None else threading.get_ident()


def _on_begin(session: Session, transaction: SessionTransaction, connection: Connection) -> None:
    settings = _installed
    if settings is None:
        return
    scope = session.info.get(_SCOPE_KEY)
    if scope is None or scope.settings is not settings:
        scope = session.info[_SCOPE_KEY] = Scope(settings, explicit=False)
    connection.__dict__[_SCOPE_KEY] = scope


def _acquire() -> None:
    global _users
    with _lock:
        if _users == 0:
            event.listen(Engine, "before_cursor_execute", _on_execute, retval=True)
        _users += 1


def _release() -> None:
    global _users
    with _lock:
        _users -= 1
        if _users == 0:
            event.remove(Engine, "before_cursor_execute", _on_execute)


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


def enter(settings: Settings, **scope_args: Any) -> tuple[Scope, Token[Scope | None]]:
    """Open an explicit scope in the current context."""
    _acquire()
    scope = Scope(settings, **scope_args)
    scope.parent = active_scope.get()
    return scope, active_scope.set(scope)


def leave(scope: Scope, token: Token[Scope | None]) -> None:
    """Close an explicit scope: hand its count to the parent, then warn or log what it found."""
    try:
        active_scope.reset(token)
    except ValueError:  # closed from another context (e.g. a WSGI iterable's close())
        active_scope.set(scope.parent)
    _release()
    scope.last_site = LastSite()  # drop the frame it holds
    if scope.parent is not None:
        scope.parent.report.statements += scope.report.statements
    if scope.settings.mode in ("warn", "log"):
        for detection in scope.actionable():
            emit(detection, scope.settings.mode)


def open_counter() -> tuple[QueryCount, Token[tuple[QueryCount, ...]]]:
    _acquire()
    counter = QueryCount()
    return counter, _counters.set((*_counters.get(), counter))


def close_counter(token: Token[tuple[QueryCount, ...]]) -> None:
    _counters.reset(token)
    _release()
