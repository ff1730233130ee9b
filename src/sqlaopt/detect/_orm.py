"""What kind of load a statement is, read at the cursor level.

This is the only module that reads SQLAlchemy's internals. The detector listens to one Core
event, ``before_cursor_execute``, because it sees every statement (ORM, Core, flush) with its
compiled SQL for free and costs about 2 µs a statement, where ``do_orm_execute`` costs 3-5 µs
and misses Core and flush statements (see docs/design.md). At that level the ORM's context is
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

Checked on SQLAlchemy 2.0.25 and 2.1.9 by the test suite. Should a later version move them,
:func:`classify` degrades to reporting plain statements instead of failing.
"""

from __future__ import annotations

import os
import sys
import weakref
from contextvars import ContextVar
from types import FrameType
from typing import Any, Final

from sqlalchemy import event
from sqlalchemy.engine import ExecutionContext
from sqlalchemy.orm import Mapper, RelationshipProperty, Session

from ..batching import BATCHED_OPTION
from ._sql import in_list_literals, is_read

__all__ = [
    "COLUMN",
    "IGNORE",
    "LAZY",
    "STATEMENT",
    "Load",
    "attribute_being_loaded",
    "class_name_of_table",
    "classify",
    "deleting",
    "in_list_values",
    "limit_and_offset",
    "track_flushes",
]

IGNORE: Final = 0  # writes, DDL, a flush's own reads and eager-loader sub-queries
STATEMENT: Final = 1
LAZY: Final = 2
COLUMN: Final = 3


class Load:
    """A classified statement: its kind and, for ORM loads, what is being loaded."""

    __slots__ = ("kind", "path", "served", "state")

    def __init__(self, kind: int, path: Any = None, state: Any = None, served: int = 0) -> None:
        self.kind = kind
        self.path = path
        self.state = state
        self.served = served
        """For a statement of ``sqlaopt.batch()``: how many loads it replaced (0: none)."""

    @property
    def relationship(self) -> RelationshipProperty[Any] | None:
        """The relationship a lazy load is loading."""
        if self.path is None:
            return None
        steps = self.path.path
        if steps and isinstance(steps[-1], RelationshipProperty):
            return steps[-1]
        props = [p for p in steps if isinstance(p, RelationshipProperty)]
        return props[-1] if props else None

    @property
    def parent_path(self) -> tuple[Any, ...]:
        """How the parent instance was reached: its load path, as (mapper, relationship, ...).

        The lazy statement's own path may be cut short (SQLAlchemy caches many-to-one loads
        relative to the parent), while the parent instance remembers how it was loaded.
        """
        load_path = getattr(self.state, "load_path", None)
        return tuple(getattr(load_path, "path", ()))

    @property
    def mapper(self) -> Mapper[Any] | None:
        """The mapper owning what is loaded: the relationship's parent, or the refreshed row's."""
        last = self.relationship
        if last is not None:
            return last.parent
        state = self.state
        return state.mapper if state is not None else None


_STATEMENT = Load(STATEMENT)
_IGNORE = Load(IGNORE)

# The Session flushing in this context (weakly): set by a before_flush listener, and checked
# against the Session's own flag, so a flush that ended (or failed) never leaves it stale.
_flushing: ContextVar[weakref.ref[Session] | None] = ContextVar("sqlaopt_flushing", default=None)


def _on_before_flush(session: Session, flush_context: Any, instances: Any) -> None:
    _flushing.set(weakref.ref(session))


def track_flushes(on: bool) -> None:
    """Start (or stop) noticing flushes, so their statements are never taken for loads."""
    if on:
        event.listen(Session, "before_flush", _on_before_flush)
    else:
        event.remove(Session, "before_flush", _on_before_flush)


def _in_flush() -> bool:
    ref = _flushing.get()
    session = ref() if ref is not None else None
    return session is not None and bool(getattr(session, "_flushing", False))


def classify(context: ExecutionContext) -> Load:
    """Classify the statement about to run in ``context``."""
    default: Any = context  # the flags below live on DefaultExecutionContext
    if default.isinsert or default.isupdate or default.isdelete or default.isddl:
        return _IGNORE
    if _flushing.get() is not None and _in_flush():
        return _IGNORE
    options = context.execution_options
    if "synchronize_session" in options:
        return _IGNORE
    batched = options.get(BATCHED_OPTION)  # one statement of sqlaopt.batch() for many loads
    if batched is not None:
        return _batched(batched, context)
    load_options = options.get("_sa_orm_load_options")
    if load_options is None:
        return _STATEMENT if _reads(context) else _IGNORE
    compile_options = getattr(
        getattr(context.compiled, "compile_state", None), "compile_options", None
    )
    eager_subquery = "sa_top_level_orm_context" in options
    parent = getattr(load_options, "_lazy_loaded_from", None)
    if parent is not None and not eager_subquery:
        return Load(LAZY, getattr(compile_options, "_current_path", None), parent)
    if eager_subquery:
        return _IGNORE
    if getattr(compile_options, "_for_refresh_state", False):
        return Load(COLUMN, None, getattr(load_options, "_refresh_state", None))
    return _STATEMENT


def _batched(batched: Any, context: ExecutionContext) -> Load:
    if batched.column:
        return Load(COLUMN, None, batched.state, batched.served)
    compile_state = getattr(context.compiled, "compile_state", None)
    path = getattr(getattr(compile_state, "compile_options", None), "_current_path", None)
    return Load(LAZY, path, batched.state, batched.served)


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
