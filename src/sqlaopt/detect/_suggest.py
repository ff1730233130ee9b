"""Turn a repeated load into a :class:`Detection` with a paste-ready fix.

Runs only when a count reaches the threshold, so it may take its time (compile, disassemble).
"""

from __future__ import annotations

import dis
from functools import lru_cache
from types import CodeType
from typing import Any

from sqlalchemy import Column
from sqlalchemy.engine import ExecutionContext
from sqlalchemy.orm import Mapper, RelationshipProperty
from sqlalchemy.sql.elements import BinaryExpression
from sqlalchemy.sql.operators import eq

from ..loading import covering_preset
from ._callsite import CallSite
from ._orm import COLUMN, LAZY, Load
from ._report import Detection

__all__ = ["build_detection"]


def build_detection(
    load: Load, site: CallSite, context: ExecutionContext, statement: str, count: int
) -> Detection:
    """The detection for ``load`` seen ``count`` times from ``site``."""
    if load.kind == LAZY:
        return _lazy(load, site, statement, count)
    if load.kind == COLUMN:
        return _column(load, site, statement, count)
    return _repeated(site, context, statement, count)


def _hop(prop: RelationshipProperty[Any]) -> str:
    strategy = "selectinload" if prop.uselist else "joinedload"
    return f"{strategy}({prop.parent.class_.__name__}.{prop.key})"


def _lazy(load: Load, site: CallSite, statement: str, count: int) -> Detection:
    rels = load.chain
    fix = ".".join(_hop(p) for p in rels)
    root = rels[0].parent.class_.__name__
    # Only presets that bind to the application's own models may be suggested.
    preset = covering_preset(root, tuple(p.key for p in rels), target=rels[0].parent.class_)
    if preset:
        fix += f" or use {preset}"
    last = rels[-1]
    return Detection("lazy_load", last.parent.class_.__name__, last.key, count,
                     site.location, fix, statement, batched=load.served > 0)


def _column(load: Load, site: CallSite, statement: str, count: int) -> Detection:
    mapper = load.mapper
    model = mapper.class_.__name__ if mapper is not None else "?"
    name = _column_name(mapper, load.state, site)
    expired = getattr(load.state, "expired_attributes", ())
    if name not in expired:  # unloaded without being expired: deferred by mapping or option
        fix = f"undefer({model}.{name})"
    else:
        fix = (
            f"load the rows once: select({model}).where({model}.id.in_(ids))"
            ".execution_options(populate_existing=True), or Session(expire_on_commit=False)"
        )
    return Detection("column_load", model, name, count, site.location, fix, statement,
                     batched=load.served > 0)


def _column_name(mapper: Mapper[Any] | None, state: Any, site: CallSite) -> str:
    """The attribute whose read caused the load: the name the reading line uses, if it is a
    column of the model; otherwise the first unloaded column."""
    if mapper is None:
        return "?"
    columns = mapper.column_attrs.keys()
    accessed = _attribute_read_at(site.code, site.lasti) if site.code is not None else None
    if accessed in columns:
        return accessed
    unloaded = getattr(state, "unloaded", ()) or ()
    return next((c for c in columns if c in unloaded), next(iter(columns), "?"))


@lru_cache(maxsize=256)
def _attribute_read_at(code: CodeType, lasti: int) -> str | None:
    """The attribute name loaded by the instruction at (or just before) ``lasti``."""
    name = None
    for instruction in dis.get_instructions(code):
        if instruction.offset > lasti:
            break
        if instruction.opname in ("LOAD_ATTR", "LOAD_METHOD"):
            name = instruction.argval
    return name if isinstance(name, str) else None


def _repeated(site: CallSite, context: ExecutionContext, statement: str, count: int) -> Detection:
    compiled_statement = getattr(context.compiled, "statement", None)
    entity = _entity_name(compiled_statement)
    criterion = _single_equality(compiled_statement)
    if criterion is not None and entity:
        fix = (
            f"query once for all values: select({entity}).where("
            f"{entity}.{criterion}.in_(values)), or load them with the parent"
        )
    else:
        fix = "query once for all items (an IN list or a join) instead of once per item"
    return Detection("repeated_statement", entity or "?", None, count, site.location, fix,
                     statement)


def _entity_name(statement: Any) -> str | None:
    try:
        for description in statement.column_descriptions:
            entity = description.get("entity")
            if entity is not None:
                return str(entity.__name__)
    except Exception:
        pass
    tables: list[Any] = getattr(statement, "get_final_froms", list)()
    return str(getattr(tables[0], "name", "")) or None if tables else None


def _single_equality(statement: Any) -> str | None:
    """The column name when the WHERE clause is one ``column = :value`` comparison."""
    where = getattr(statement, "whereclause", None)
    if isinstance(where, BinaryExpression) and where.operator is eq:
        column = where.left
        if isinstance(column, Column):
            return str(column.key)
    return None
