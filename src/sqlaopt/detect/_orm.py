"""What kind of load a statement is, read at the cursor level.

This is the only module that reads SQLAlchemy's execution internals. The detector listens to
one Core event, ``before_cursor_execute``, because it sees every statement (ORM, Core, flush)
with its compiled SQL for free and costs about 2 µs a statement, where ``do_orm_execute``
costs 3-5 µs and misses Core and flush statements (see docs/design.md). At that level the ORM's
context is in the execution options and the compile state:

- ``_sa_orm_load_options._lazy_loaded_from``: the parent ``InstanceState`` of a lazy load
  (also set for ``immediateload``, which is told apart by ``sa_top_level_orm_context``);
- ``compile_state.compile_options._current_path``: the loader path, ending with the
  relationship being loaded;
- ``compile_state.compile_options._for_refresh_state``: a column load (expired or deferred
  attribute, ``Session.refresh``).

Checked on SQLAlchemy 2.0.25 and 2.1.9 by the test suite. Should a later version move them,
:func:`classify` degrades to reporting plain statements instead of failing.
"""

from __future__ import annotations

from typing import Any, Final

from sqlalchemy.engine import ExecutionContext
from sqlalchemy.orm import Mapper, RelationshipProperty

from ..batching import BATCHED_OPTION

__all__ = ["COLUMN", "IGNORE", "LAZY", "STATEMENT", "Load", "classify"]

IGNORE: Final = 0  # writes, DDL and eager-loader sub-queries
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
        self.served = served  # sqlaopt.batching: loads one batch statement replaced (0: none)

    @property
    def relationship(self) -> RelationshipProperty[Any] | None:
        """The relationship a lazy load is loading."""
        if self.path is None:
            return None
        props = [p for p in self.path.path if isinstance(p, RelationshipProperty)]
        return props[-1] if props else None

    @property
    def chain(self) -> list[RelationshipProperty[Any]]:
        """The relationships from the query's root to the one being lazily loaded.

        The lazy statement's own path may be cut short (SQLAlchemy caches many-to-one loads
        relative to the parent), while the parent instance remembers how it was reached.
        """
        last = self.relationship
        if last is None:
            return []
        load_path = getattr(self.state, "load_path", None)
        steps = getattr(load_path, "path", ())
        return [p for p in steps if isinstance(p, RelationshipProperty)] + [last]

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
_READ_KEYWORDS = ("SELECT", "WITH", "VALUES", "TABLE")


def _reads(context: ExecutionContext) -> bool:
    """Whether a Core or text statement reads rows. Only reads can be an N+1: a loop of DDL,
    ``SET`` or maintenance statements is not one."""
    compiled_statement = getattr(context.compiled, "statement", None)
    if getattr(compiled_statement, "is_select", False):
        return True
    sql = getattr(context, "statement", "") or ""
    return sql.lstrip(" \t\r\n(").upper().startswith(_READ_KEYWORDS)


def _batched(batched: Any, context: ExecutionContext) -> Load:
    if batched.column:
        return Load(COLUMN, None, batched.state, batched.served)
    compile_state = getattr(context.compiled, "compile_state", None)
    path = getattr(getattr(compile_state, "compile_options", None), "_current_path", None)
    return Load(LAZY, path, batched.state, batched.served)


def classify(context: ExecutionContext) -> Load:
    """Classify the statement about to run in ``context``."""
    default: Any = context  # the flags below live on DefaultExecutionContext
    if default.isinsert or default.isupdate or default.isdelete or default.isddl:
        return _IGNORE
    options = context.execution_options
    batched = options.get(BATCHED_OPTION)  # sqlaopt.batching: one statement for many loads
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
