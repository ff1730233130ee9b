"""The ``do_orm_execute`` listener: decide whether a statement is a load to batch, and run the
batch in its place.

Cost where nothing is batched: a ContextVar read and three attribute reads per ORM statement
while batching is in use (the listener is not registered otherwise), plus two dict lookups per
top-level select for the ``sqlaopt_batch`` opt-out. Nothing runs per loaded row.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from sqlalchemy.engine import Result
from sqlalchemy.orm import ORMExecuteState, UserDefinedOption

from .._errors import BatchError
from ._columns import plan_columns
from ._info import BATCHED_OPTION
from ._relationships import plan_relationship
from ._sa import (
    COLUMN_LOAD,
    allows_autoflush,
    drop_inherited_yield_per,
    is_eager_subquery,
    load_kind,
)
from ._settings import Settings, active, use_listener

__all__ = ["STATEMENT_OPTION", "on_orm_execute"]

STATEMENT_OPTION: Final = "sqlaopt_batch"
"""``select(...).execution_options(sqlaopt_batch=False)``: what it loads is never batched."""

logger = logging.getLogger("sqlaopt.batching")
_reported: set[str] = set()


class _NoBatch(UserDefinedOption):
    """Added to a statement run with ``sqlaopt_batch=False``; SQLAlchemy carries it to the
    lazy and column loads of every instance that statement loaded."""

    propagate_to_loaders = True


_NO_BATCH: Final = _NoBatch()


def on_orm_execute(execute_state: ORMExecuteState) -> Result[Any] | None:
    local_options = execute_state.local_execution_options
    if "yield_per" in local_options and is_eager_subquery(execute_state):
        drop_inherited_yield_per(execute_state)  # for any listener, on or off: see _sa
    settings = active()
    if settings is None or BATCHED_OPTION in local_options:
        return None
    kind = load_kind(execute_state)
    if kind is None:
        if execute_state.is_select:
            _carry_opt_out(execute_state)
        return None
    try:
        plan = _plan(execute_state, settings, kind)
    except Exception as error:  # a bug here must not cost the application its load
        _internal_error(error)
        return None
    return plan.run() if plan is not None else None


def _plan(execute_state: ORMExecuteState, settings: Settings, kind: str) -> Any:
    if not allows_autoflush(execute_state) or any(
        isinstance(option, _NoBatch) for option in execute_state.user_defined_options
    ):
        return None
    if kind == COLUMN_LOAD:
        return plan_columns(execute_state, settings.max_batch)
    if execute_state.lazy_loaded_from is None or is_eager_subquery(execute_state):
        return None
    return plan_relationship(execute_state, settings.max_batch, _refused)


def _carry_opt_out(execute_state: ORMExecuteState) -> None:
    value = execute_state.local_execution_options.get(STATEMENT_OPTION)
    if value is None:
        value = execute_state.statement.get_execution_options().get(STATEMENT_OPTION)
    if value is None or value is True:
        return
    if value is not False:
        raise BatchError(f"execution option {STATEMENT_OPTION} must be True or False; "
                         f"got {value!r}")
    if execute_state.is_orm_statement:
        execute_state.statement = execute_state.statement.options(_NO_BATCH)


def _refused(relationship: Any, reason: str) -> None:
    logger.debug("lazy load of %s not batched: %s", relationship, reason)


def _internal_error(error: Exception) -> None:
    """Log a batching failure once per kind; the load then runs unbatched."""
    signature = f"{type(error).__name__}: {str(error)[:200]}"
    if signature in _reported or len(_reported) > 100:
        return
    _reported.add(signature)
    logger.error("sqlaopt batching error (the load runs unbatched): %r", error, exc_info=error)


use_listener(on_orm_execute)
