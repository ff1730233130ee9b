"""Turn a repeated load into a :class:`Detection` with a paste-ready fix.

Runs only when a count reaches the threshold, so it may take its time (compile, disassemble).
"""

from __future__ import annotations

import dis
import re
from collections.abc import Mapping
from functools import lru_cache
from types import CodeType
from typing import Any

from sqlalchemy import Column, inspect
from sqlalchemy.engine import ExecutionContext
from sqlalchemy.orm import Mapper, RelationshipProperty
from sqlalchemy.sql.elements import BinaryExpression, _anonymous_label
from sqlalchemy.sql.operators import eq

from ..loading import covering_preset
from ._callsite import Site
from ._orm import (
    COLUMN,
    LAZY,
    EagerLoad,
    Load,
    attribute_being_loaded,
    class_name_of_table,
    deleting,
    relationships_on,
)
from ._report import Detection

__all__ = [
    "build_detection",
    "recursion_fix",
    "row_by_row_detection",
    "row_explosion_detection",
    "unused_eager_detection",
]

Lineage = Mapping[Any, tuple[Any, ...]]  # mapper -> the load path its instances came through


def build_detection(
    load: Load, site: Site, context: ExecutionContext, statement: str, *,
    lineage: Lineage, same_parameters: bool,
) -> Detection:
    """The detection for ``load`` reaching the threshold at ``site`` (count starts at 0)."""
    location = str(site.location) if site.location is not None else "<unknown>"
    loop = str(site.loop) if site.loop is not None and site.loop_elsewhere else None
    if load.kind == LAZY:
        detection = _lazy(load, lineage, statement)
    elif load.kind == COLUMN:
        detection = _column(load, site, statement)
    else:
        detection = _repeated(context, statement, same_parameters)
    detection.location, detection.loop = location, loop
    detection.batched = load.served > 0
    return detection


def chain(load: Load, lineage: Lineage) -> list[RelationshipProperty[Any]]:
    """The relationships from the loop's query to the one being lazily loaded.

    The parent instance's load path goes back to the query that loaded it, or to a many-to-one
    lazy load (SQLAlchemy restarts the path there); ``lineage`` then tells how the instances
    at the start of that path were reached in this scope, and the chain goes on from there.
    """
    last = load.relationship
    if last is None:
        return []
    path = load.parent_path
    rels = [p for p in path if isinstance(p, RelationshipProperty)] + [last]
    root = path[0] if path else last.parent
    seen = {root}
    while root in lineage:
        earlier = lineage[root]
        prefix = [p for p in earlier if isinstance(p, RelationshipProperty)]
        if not prefix or earlier[0] in seen:
            break
        rels = prefix + rels
        root = earlier[0]
        seen.add(root)
    return rels


def _hops(rels: list[RelationshipProperty[Any]]) -> list[str]:
    """One loader call per relationship; ``of_type`` where the next hop starts at a subclass."""
    hops = []
    for index, prop in enumerate(rels):
        strategy = "selectinload" if prop.uselist else "joinedload"
        attribute = f"{prop.parent.class_.__name__}.{prop.key}"
        following = rels[index + 1].parent if index + 1 < len(rels) else None
        if following is not None and following is not prop.mapper and following.isa(prop.mapper):
            attribute += f".of_type({following.class_.__name__})"
        hops.append(f"{strategy}({attribute})")
    return hops


def recursion_fix(rels: list[RelationshipProperty[Any]], depth: int) -> str:
    """``selectinload(Node.children, recursion_depth=N)``, after the hops that lead to the
    recursion (a self-referential relationship walked ``depth`` levels deep)."""
    recursive = rels[-1]
    start = len(rels)
    while start > 0 and rels[start - 1] is recursive:
        start -= 1
    lead = _hops(rels[:start])
    lead.append(f"selectinload({recursive.parent.class_.__name__}.{recursive.key}, "
                f"recursion_depth={depth})")
    return ".".join(lead)


def is_self_referential(prop: RelationshipProperty[Any]) -> bool:
    return prop.mapper.isa(prop.parent) or prop.parent.isa(prop.mapper)


def _lazy(load: Load, lineage: Lineage, statement: str) -> Detection:
    rels = chain(load, lineage)
    last = rels[-1]
    fix = ".".join(_hops(rels))
    if deleting():  # the cascade of Session.delete(): the database can do that work
        fix = (f"relationship(..., passive_deletes=True) on {last.parent.class_.__name__}."
               f"{last.key} with ON DELETE CASCADE on its foreign key, or load it with the "
               f"query: {fix}")
    root = rels[0].parent.class_
    # Only presets that bind to the application's own models may be suggested.
    preset = covering_preset(root.__name__, tuple(p.key for p in rels), target=root)
    if preset:
        fix += f" or use {preset}"
    return Detection("lazy_load", last.parent.class_.__name__, last.key, 0, "", fix, statement)


def _column(load: Load, site: Site, statement: str) -> Detection:
    mapper = load.mapper
    model = mapper.class_.__name__ if mapper is not None else "?"
    name = _column_name(mapper, load.state, site)
    prop = mapper.attrs.get(name) if mapper is not None else None
    if getattr(prop, "deferred", False):
        fix = f"undefer({model}.{name})"
    elif _deferred_by_its_query(load.state, name):
        fix = f"remove defer({model}.{name}) from the query that loaded the rows"
    else:
        fix = (
            f"load the rows once: select({model}).where({model}.id.in_(ids))"
            ".execution_options(populate_existing=True), or Session(expire_on_commit=False)"
        )
    return Detection("column_load", model, name, 0, "", fix, statement)


def _deferred_by_its_query(state: Any, name: str) -> bool:
    """Whether the column is unloaded because the query that loaded the row deferred it. Not
    when it was expired (commit, ``expire()``), nor for an object that no query with loader
    options loaded (created in the Session, then expired by a commit): ``expired_attributes``
    alone cannot tell, as it can be empty again by the time the detection is built (seen in
    ihatemoney's demo project: rows created, committed, then read in a loop that autoflushes)."""
    if name in getattr(state, "expired_attributes", ()):
        return False
    return bool(getattr(state, "load_options", ()))


def _column_name(mapper: Mapper[Any] | None, state: Any, site: Site) -> str:
    """The attribute whose read caused the load: the one SQLAlchemy is loading, else the name
    the reading line uses, else the first unloaded column."""
    if mapper is None:
        return "?"
    columns = mapper.column_attrs.keys()
    for accessed in (attribute_being_loaded(),
                     _attribute_read_at(site.code, site.lasti) if site.code else None):
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


def _repeated(context: ExecutionContext, statement: str, same_parameters: bool) -> Detection:
    compiled_statement = getattr(context.compiled, "statement", None)
    entity = entity_name(compiled_statement)
    criterion = _single_equality(compiled_statement)
    if same_parameters:
        fix = ("the same statement with the same parameters runs on every iteration: run it "
               "once before the loop and reuse the result")
    elif criterion is not None and entity:
        fix = (
            f"query once for all values: select({entity}).where("
            f"{entity}.{criterion}.in_(values)), or load them with the parent"
        )
    else:
        fix = "query once for all items (an IN list or a join) instead of once per item"
    return Detection("repeated_statement", entity or "?", None, 0, "", fix, statement)


def entity_name(statement: Any) -> str | None:
    """The mapped class a statement selects (through aliases, subqueries and ``count()``
    wrappers), else its first table's name."""
    try:
        for description in statement.column_descriptions:
            entity = description.get("entity")
            if entity is not None:
                return str(inspect(entity).mapper.class_.__name__)
    except Exception:  # Core statements, text(): fall back to the FROM list
        pass
    froms: list[Any] = list(getattr(statement, "get_final_froms", list)())
    for source in froms:
        name = _source_name(source)
        if name:
            return name
    text = getattr(statement, "text", None)  # text(): the first table after FROM
    found = _FROM_TABLE.search(text) if isinstance(text, str) else None
    if found is None:
        return None
    table = found.group(1).strip('"`[]').rsplit(".", 1)[-1]
    return class_name_of_table(table) or table


_FROM_TABLE = re.compile(r"\bFROM\s+([\w.\"`\[\]]+)", re.IGNORECASE)


def _source_name(source: Any) -> str | None:
    element = getattr(source, "element", None)
    if element is not None and element is not source:  # alias, subquery, CTE
        selects = getattr(element, "selects", None)  # a UNION: its first SELECT
        if selects:
            element = selects[0]
        inner = entity_name(element) if hasattr(element, "get_final_froms") else None
        return inner or _source_name(element)
    left = getattr(source, "left", None)
    if left is not None:  # a join: name its leftmost table
        return _source_name(left)
    mapped = class_name_of_table(source)
    name = getattr(source, "name", None)
    # An anonymous subquery's name is a template such as "%(140036088630352 anon)s": it
    # changes every run, so a baseline would never match it (seen on mealie's pagination).
    if mapped or not isinstance(name, str) or not name or isinstance(name, _anonymous_label):
        return mapped
    return name


def _single_equality(statement: Any) -> str | None:
    """The column name when the WHERE clause is one ``column = :value`` comparison."""
    where = getattr(statement, "whereclause", None)
    if isinstance(where, BinaryExpression) and where.operator is eq:
        column = where.left
        if isinstance(column, Column):
            return str(column.key)
    return None


# ---------------------------------------------------------------- issue 13's kinds


def _name(prop: RelationshipProperty[Any]) -> str:
    return f"{prop.parent.class_.__name__}.{prop.key}"


def unused_eager_detection(load: EagerLoad, location: str, count: int,
                           statement: str) -> Detection:
    """An eager load nothing read: drop the option (or the preset's path), or, for a mapping's
    ``lazy="joined"``/``"selectin"``, turn it off in this query."""
    prop = load.prop
    rels = relationships_on(load.path)
    through = " → ".join(_name(p) for p in rels)
    if load.by_option:
        where = f" (on the path {through})" if len(rels) > 1 else ""
        fix = (f"drop {load.loader}({_name(prop)}){where} from the query's options, or that "
               "path from the preset that adds it")
    else:
        lead = "".join(f"defaultload({_name(p)})." for p in rels[:-1])
        fix = (f"{_name(prop)} is lazy=\"{_MAPPING_LAZY.get(load.loader, load.loader)}\" on "
               f"the mapping: add {lead}lazyload({_name(prop)}) to this query's options, or "
               "make the relationship lazy=\"select\" and load it where it is read")
    return Detection("unused_eager_load", prop.parent.class_.__name__, prop.key, count,
                     location, fix, statement)


_MAPPING_LAZY = {"joinedload": "joined", "selectinload": "selectin",
                 "subqueryload": "subquery", "immediateload": "immediate"}


def row_explosion_detection(collections: tuple[tuple[Any, ...], ...], location: str,
                            rows: int, roots: int, statement: str) -> Detection:
    """A joined load whose collections multiply the rows: load them with ``selectinload``."""
    leaves = [p for p in collections if not any(q != p and q[:len(p)] == p for q in collections)]
    chains = []
    for path in leaves:
        hops = []
        for prop in relationships_on(path):
            strategy = "selectinload" if prop.uselist else "joinedload"
            hops.append(f"{strategy}({_name(prop)})")
        chains.append(".".join(hops))
    root = collections[0][0].class_.__name__
    fix = (f"{rows:,} rows for {roots:,} {root} ({rows // max(roots, 1):,} per {root}): load "
           f"the collections with {', '.join(chains)} in place of their joinedload")
    return Detection("row_explosion", root, None, 0, location, fix, statement)


_BULK = {
    "insert": "one statement for all rows: session.execute(insert({model}), [{{...}}, ...]) "
              "or insert({model}).values([...])",
    "update": "one statement for all rows: session.execute(update({model}), "
              "[{{\"id\": ..., ...}}, ...]) (bulk UPDATE by primary key), or one UPDATE with "
              "a WHERE that selects them all",
    "delete": "one statement for all rows: session.execute(delete({model})"
              ".where({model}.id.in_(ids)))",
}


def row_by_row_detection(kind: str, table: Any, in_flush: bool, location: str,
                         loop: str | None, statement: str) -> Detection:
    """The same write run once per row: the bulk form, or one flush after the loop."""
    name = getattr(table, "name", None)
    model = (class_name_of_table(table) if table is not None else None) or name or "?"
    bulk = _BULK[kind].format(model=model)
    if in_flush:
        fix = (f"flush once, after the loop (session.add() each object, then one "
               f"session.flush() or commit()), or {bulk}")
    else:
        fix = bulk
    detection = Detection("row_by_row_write", model, None, 0, location, fix, statement)
    detection.loop = loop
    return detection
