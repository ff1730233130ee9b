"""Every read (and the few writes) of SQLAlchemy internals that batching needs, in one place.

Batching otherwise uses public API only: the ``do_orm_execute`` event and
:class:`~sqlalchemy.orm.ORMExecuteState` (``is_relationship_load``, ``lazy_loaded_from``,
``loader_strategy_path``, ``invoke_statement``), ``set_committed_value``, ``inspect()`` and
:class:`~sqlalchemy.engine.FrozenResult`. What the public API does not tell:

- which instances one statement loaded: ``InstanceState.runid`` (one number per execution,
  set on each instance that execution created) and the Session's identity map in insertion
  order (``IdentityMap._dict``);
- whether two instances would build the same lazy statement: ``InstanceState.load_path``,
  ``.load_options`` and ``.callables`` (per-instance loaders carrying ``rel.and_()`` criteria);
- the lazy statement's loader context, to carry it over to the batch: ``_with_options``,
  ``_compile_options`` (``_current_path``) and the compile-state functions
  (``_compile_state_funcs`` in 2.1, ``_with_context_options`` in 2.0);
- a column load's instance and attributes: ``load_options._refresh_state``,
  ``_compile_options._only_load_props``, ``load_options._is_user_refresh``;
- how a relationship joins: the ``local``/``remote`` annotations on its ``primaryjoin``;
- loads that must not autoflush (pending instances, loads made during a flush):
  ``load_options._autoflush``.

Checked by tests/batching/test_internals.py on SQLAlchemy 2.0.25 and 2.1 (CI runs the suite on
both). Every function here returns a neutral answer ("don't batch") when an attribute is
missing, so a SQLAlchemy release that moves one turns batching off instead of breaking loads.
"""

from __future__ import annotations

from collections.abc import Iterator
from operator import attrgetter
from typing import Any, Final

from sqlalchemy.orm import InstanceState, ORMExecuteState, Session
from sqlalchemy.sql import operators, visitors
from sqlalchemy.sql.elements import BinaryExpression, BooleanClauseList, ColumnClause
from sqlalchemy.util import immutabledict

__all__ = [
    "COLUMN_LOAD",
    "RELATIONSHIP_LOAD",
    "RUNID",
    "allows_autoflush",
    "carry_loader_context",
    "drop_inherited_yield_per",
    "equality_join",
    "identity_states_newest_first",
    "is_eager_subquery",
    "is_user_refresh",
    "lazy_callable",
    "load_kind",
    "load_signature",
    "refresh_request",
]

RUNID: Final = attrgetter("runid")
"""``InstanceState.runid``: the id of the execution that created (or last fully refreshed) it."""

_COMPILE_STATE_FUNCS: Final = ("_compile_state_funcs", "_with_context_options")  # 2.1, 2.0


def identity_states_newest_first(session: Session) -> Iterator[InstanceState[Any]]:
    """The states of the Session's identity map, most recently added first.

    The weak identity map removes entries when their objects are garbage collected, which can
    happen between two steps of the iteration; the caller restarts with
    :func:`identity_states_snapshot` on ``RuntimeError``.
    """
    states: dict[Any, InstanceState[Any]] = getattr(session.identity_map, "_dict", {})
    return iter(reversed(states.values()))


def identity_states_snapshot(session: Session) -> Iterator[InstanceState[Any]]:
    """Like :func:`identity_states_newest_first`, from a copy taken in one C-level step."""
    states: dict[Any, InstanceState[Any]] = getattr(session.identity_map, "_dict", {})
    newest_first: list[InstanceState[Any]] = list(states.values())
    newest_first.reverse()
    return iter(newest_first)


def load_signature(state: InstanceState[Any]) -> tuple[Any, Any]:
    """What, besides the key values, shapes the lazy statements of ``state``: the path it was
    loaded at (as a tuple of mappers and properties: each execution builds its own path
    object) and the loader options that travel with it."""
    path = getattr(state, "load_path", None)
    return getattr(path, "path", path), getattr(state, "load_options", None)


def lazy_callable(state: InstanceState[Any], key: str) -> Any:
    """The per-instance loader of ``key`` (set when the query's options carry criteria for it),
    or None for the class-level lazy loader."""
    callables = getattr(state, "callables", None)
    return callables.get(key) if callables else None


def carry_loader_context(batch: Any, lazy_statement: Any) -> Any:
    """Give ``batch`` the loader options, current path and compile-state functions of the lazy
    statement it replaces, as SQLAlchemy's own select-IN loader does for its sub-query."""
    batch._with_options = lazy_statement._with_options
    batch._compile_options = lazy_statement._compile_options
    for name in _COMPILE_STATE_FUNCS:
        if hasattr(lazy_statement, name):
            setattr(batch, name, getattr(lazy_statement, name))
    return batch


COLUMN_LOAD: Final = "column"
RELATIONSHIP_LOAD: Final = "relationship"


def load_kind(execute_state: ORMExecuteState) -> str | None:
    """:data:`RELATIONSHIP_LOAD`, :data:`COLUMN_LOAD` or None (a top-level statement): what
    ``is_relationship_load``/``is_column_load`` say, read straight from the statement's
    compile options (two property calls cost more than the rest of the listener)."""
    options = getattr(execute_state.statement, "_compile_options", None)
    if getattr(options, "_for_refresh_state", False):
        return COLUMN_LOAD
    path = getattr(options, "_current_path", None)
    return RELATIONSHIP_LOAD if path and not path.is_root else None


def is_eager_subquery(execute_state: ORMExecuteState) -> bool:
    """A selectin/subquery/immediate loader's statement (which also names a parent state)."""
    return "sa_top_level_orm_context" in execute_state.execution_options


def drop_inherited_yield_per(execute_state: ORMExecuteState) -> None:
    """Keep a ``yield_per`` inherited from the parent statement away from an eager loader's
    sub-query. With any ``do_orm_execute`` listener registered, SQLAlchemy before the fix of
    its issue #13301 (2.0.25 included) re-reads the merged options after the listeners and
    turns it into the sub-query's own ``yield_per``, which then fails in ``unique()``. The
    sub-query is read whole by its loader either way."""
    options = execute_state.local_execution_options
    if "yield_per" in options:
        execute_state.local_execution_options = immutabledict(
            {key: value for key, value in options.items() if key != "yield_per"}
        )


def _load_options(execute_state: ORMExecuteState) -> Any:
    """``execute_state.load_options`` without merging every execution option first: the ORM
    passes its loads' options with the execution."""
    options = execute_state.local_execution_options.get("_sa_orm_load_options")
    return options if options is not None else execute_state.load_options


def allows_autoflush(execute_state: ORMExecuteState) -> bool:
    """False for loads that SQLAlchemy runs without autoflush: on pending instances and while
    flushing (history and cascade loads). Those are never batched."""
    return bool(getattr(_load_options(execute_state), "_autoflush", False))


def is_user_refresh(execute_state: ORMExecuteState) -> bool:
    """``Session.refresh()``: an explicit overwrite of one instance, never batched."""
    return bool(getattr(_load_options(execute_state), "_is_user_refresh", True))


def refresh_request(
    execute_state: ORMExecuteState,
) -> tuple[InstanceState[Any], frozenset[str]] | None:
    """For an expired or deferred attribute load: the instance and the attribute keys that
    SQLAlchemy is about to load for it."""
    state = getattr(_load_options(execute_state), "_refresh_state", None)
    compile_options = getattr(execute_state.statement, "_compile_options", None)
    keys = getattr(compile_options, "_only_load_props", None)
    if state is None or not keys:
        return None
    return state, frozenset(keys)


def equality_join(
    primaryjoin: Any,
) -> tuple[list[tuple[Any, Any]], list[Any]] | None:
    """Split a relationship's ``primaryjoin`` into ``(local, remote)`` column equalities and
    criteria on the remote side only, using the ``local``/``remote`` annotations SQLAlchemy put
    on its columns; None when a clause compares parent columns any other way.

    Such a join is expressible per key: ``tuple(remote) IN (values of local)``, with the
    parent's own in-memory values, exactly as the lazy load binds them.
    """
    pairs: list[tuple[Any, Any]] = []
    filters: list[Any] = []
    for clause in _conjuncts(primaryjoin):
        pair = _local_remote(clause)
        if pair is not None:
            pairs.append(pair)
        elif any(_side(column) != "remote" for column in _columns_in(clause)):
            return None
        else:
            filters.append(clause)
    return (pairs, filters) if pairs else None


def _conjuncts(clause: Any) -> list[Any]:
    if isinstance(clause, BooleanClauseList) and clause.operator is operators.and_:
        return [part for inner in clause.clauses for part in _conjuncts(inner)]
    return [clause]


def _local_remote(clause: Any) -> tuple[Any, Any] | None:
    if not (isinstance(clause, BinaryExpression) and clause.operator is operators.eq):
        return None
    left, right = clause.left, clause.right
    if not (isinstance(left, ColumnClause) and isinstance(right, ColumnClause)):
        return None
    sides = (_side(left), _side(right))
    if sides == ("local", "remote"):
        return left._deannotate(), right._deannotate()
    if sides == ("remote", "local"):
        return right._deannotate(), left._deannotate()
    return None


def _side(column: Any) -> str | None:
    annotations = getattr(column, "_annotations", {})
    if annotations.get("local") and not annotations.get("remote"):
        return "local"
    if annotations.get("remote") and not annotations.get("local"):
        return "remote"
    return None


def _columns_in(clause: Any) -> Iterator[Any]:
    return (element for element in visitors.iterate(clause) if isinstance(element, ColumnClause))
