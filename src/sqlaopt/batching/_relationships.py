"""Batching a relationship's lazy load over the instance's peers.

The batch is the lazy statement SQLAlchemy built for the one instance, widened to all peers:
same target entity, same loader options and current path, same ``order_by``, same execution
options, run through ``ORMExecuteState.invoke_statement`` so that later event handlers see it
in place of the lazy statement. Two shapes, as SQLAlchemy's select-IN loader has:

- **per key** (the join is ``local = remote`` equalities plus criteria on the target side):
  ``SELECT target, remote... FROM target [JOIN secondary] WHERE (remote...) IN (:values)``,
  the values read from each peer in memory, exactly as its own lazy load would bind them;
- **through the parent** (any other join condition): ``SELECT target, parent.pk... FROM
  parent_alias JOIN target ON <the relationship> WHERE parent.pk IN (:keys)``; peers whose
  join columns have unflushed changes are left to their own lazy load, since the database
  holds the old values.

Rows are grouped per peer and set with ``set_committed_value`` (no history, no events, as an
eager loader does) on peers that still lack the attribute; the triggering instance gets its
rows back as the lazy statement's result.
"""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import bindparam, select, tuple_
from sqlalchemy.engine import FrozenResult, Result, Row
from sqlalchemy.exc import SAWarning
from sqlalchemy.orm import InstanceState, ORMExecuteState, RelationshipProperty, aliased
from sqlalchemy.orm.attributes import instance_dict, instance_state, set_committed_value
from sqlalchemy.orm.exc import UnmappedColumnError
from sqlalchemy.sql.elements import ColumnElement

from ._info import BATCHED_OPTION, KEYS_PARAMETER, Batched
from ._peers import join_runs, peers_of
from ._sa import carry_loader_context, equality_join, lazy_callable, load_signature

__all__ = ["OPT_OUT_KEY", "RelationshipBatch", "plan_relationship"]

OPT_OUT_KEY: Final = "sqlaopt_batch"
"""``relationship(..., info={"sqlaopt_batch": False})`` keeps that relationship lazy."""


GroupKey = tuple[Any, ...]
"""The values a peer's rows are grouped under: its join values, or its primary key."""


@dataclass(frozen=True)
class _Shape:
    """How one relationship is batched (computed once per relationship)."""

    per_key: bool
    local_keys: tuple[str, ...]
    """Parent attributes the join reads: the values bound per key, or the columns whose
    unflushed changes exclude a peer from a batch through the parent."""
    remote: tuple[ColumnElement[Any], ...]
    """Per key: the target-side columns compared with the local values."""
    filters: tuple[ColumnElement[Any], ...]
    """Per key: the join's criteria on the target side alone."""
    parent_keys: tuple[str, ...]
    """The parent's primary-key attributes (grouping for a batch through the parent)."""


_shapes: weakref.WeakKeyDictionary[RelationshipProperty[Any], _Shape | None] = (
    weakref.WeakKeyDictionary()
)


def _shape(rel: RelationshipProperty[Any]) -> _Shape | None:
    if rel not in _shapes:
        _shapes[rel] = _analyse(rel)
    return _shapes[rel]


def _analyse(rel: RelationshipProperty[Any]) -> _Shape | None:
    parent = rel.parent
    try:
        parent_keys = tuple(parent.get_property_by_column(c).key for c in parent.primary_key)
        joined = equality_join(rel.primaryjoin)
        if joined is not None:
            pairs, filters = joined
            local_keys = tuple(parent.get_property_by_column(local).key for local, _ in pairs)
            return _Shape(True, local_keys, tuple(r for _, r in pairs), tuple(filters),
                          parent_keys)
        local_keys = tuple(parent.get_property_by_column(c).key for c in rel.local_columns)
    except UnmappedColumnError:  # the join reads a parent column no attribute maps
        return None
    return _Shape(False, local_keys, (), (), parent_keys)


@dataclass
class RelationshipBatch:
    """A planned batch: the peers grouped by the key their rows come under, the triggering
    state's key first."""

    execute_state: ORMExecuteState
    rel: RelationshipProperty[Any]
    shape: _Shape
    state: InstanceState[Any]
    peers: dict[GroupKey, list[InstanceState[Any]]]
    max_batch: int

    def run(self) -> Result[Any]:
        keys = list(self.peers)
        statement = _statement(self.rel, self.shape, self.execute_state.statement, len(keys[0]))
        several = len(keys) > self.max_batch
        own: Result[Any] | None = None
        loaded: list[list[InstanceState[Any]]] = []
        for start in range(0, len(keys), self.max_batch):
            chunk = keys[start:start + self.max_batch]
            targets, own_rows, shape = self._execute(statement, chunk,
                                                     keys[0] if own is None else None)
            if own is None:  # the triggering state's rows, as the lazy statement's result
                own = shape.with_new_rows(own_rows)()
            for key in chunk:
                found = targets.get(key, ())
                for member in self.peers[key]:
                    if member is not self.state:
                        _populate(member, self.rel, found)
            if several:
                loaded.append([instance_state(t) for found in targets.values() for t in found])
        if several:  # what the IN lists loaded are peers of each other, as one result's rows
            join_runs(self.execute_state.session, loaded)
        assert own is not None
        return own

    def _execute(
        self, statement: Any, keys: list[GroupKey], own_key: GroupKey | None
    ) -> tuple[dict[GroupKey, list[Any]], list[Row[Any]], FrozenResult[Any]]:
        """Run one IN list: the targets per key (each once, in row order), the rows of
        ``own_key``, and the result's shape (no rows)."""
        served = sum(len(self.peers[key]) for key in keys)
        result = self.execute_state.invoke_statement(
            statement=statement,
            params={KEYS_PARAMETER: keys if len(keys[0]) > 1 else [key[0] for key in keys]},
            execution_options={BATCHED_OPTION: Batched(self.state, served, column=False)},
        )
        by_key: dict[GroupKey, dict[int, Any]] = {}  # by id: a secondary may repeat a row
        own_rows: list[Row[Any]] = []
        for row in result:
            key = tuple(row[1:])
            by_key.setdefault(key, {})[id(row[0])] = row[0]
            if key == own_key:
                own_rows.append(row)
        targets = {key: list(found.values()) for key, found in by_key.items()}
        return targets, own_rows, result.freeze()


def plan_relationship(
    execute_state: ORMExecuteState, max_batch: int,
    refuse: Callable[[RelationshipProperty[Any], str], None],
) -> RelationshipBatch | None:
    """Plan the batch for a lazy load, or None (after telling ``refuse`` why) to let it run
    as it is."""
    state = execute_state.lazy_loaded_from
    path = execute_state.loader_strategy_path
    rel = path[-1] if path is not None else None
    if state is None or not isinstance(rel, RelationshipProperty):
        return None
    if rel.info.get(OPT_OUT_KEY, True) is False:
        refuse(rel, f"info={{'{OPT_OUT_KEY}': False}}")
        return None
    shape = _shape(rel)
    if shape is None:
        refuse(rel, "it joins on a column its parent does not map")
        return None
    own_key = _group_key(shape)(state, state.dict)
    if own_key is None:
        refuse(rel, "the instance's join columns are unloaded, None or changed")
        return None
    session = execute_state.session
    deleted = {id(obj) for obj in session.deleted}  # marked for deletion: the flush may go first
    if id(state.obj()) in deleted:
        refuse(rel, "the instance is marked for deletion")
        return None
    peers = {own_key: [state]}
    wants = _wanting(state, rel, shape)
    found = 0
    for member in peers_of(session, state):
        obj = member.obj()
        if obj is None or obj is state.obj() or id(obj) in deleted:
            continue
        key = wants(member, instance_dict(obj))
        if key is not None:
            peers.setdefault(key, []).append(member)
            found += 1
    if not found:
        refuse(rel, "no peer of the instance needs it")
        return None
    return RelationshipBatch(execute_state, rel, shape, state, peers, max_batch)


def _wanting(
    state: InstanceState[Any], rel: RelationshipProperty[Any], shape: _Shape
) -> Callable[[InstanceState[Any], dict[str, Any]], GroupKey | None]:
    """A test of peers: the key a peer's rows come under if it still lacks ``rel`` and would
    build the same lazy statement as ``state``, else None."""
    key, parent, mapper, session_id = rel.key, rel.parent, state.mapper, state.session_id
    signature, loader = load_signature(state), lazy_callable(state, key)
    group_key = _group_key(shape)

    def wants(member: InstanceState[Any], values: dict[str, Any]) -> GroupKey | None:
        if key in values or member.key is None or member.session_id != session_id:
            return None
        if member.mapper is not mapper and not member.mapper.isa(parent):
            return None
        if load_signature(member) != signature or lazy_callable(member, key) is not loader:
            return None
        return group_key(member, values)

    return wants


def _group_key(shape: _Shape) -> Callable[[InstanceState[Any], dict[str, Any]], GroupKey | None]:
    if shape.per_key:
        local_keys = shape.local_keys

        def local_values(member: InstanceState[Any], values: dict[str, Any]) -> GroupKey | None:
            try:
                key = tuple([values[k] for k in local_keys])
            except KeyError:
                return None  # expired: its own load refreshes it first
            return None if None in key else key

        return local_values

    def primary_key(member: InstanceState[Any], values: dict[str, Any]) -> GroupKey | None:
        if any(key in member.committed_state for key in shape.local_keys):
            return None  # unflushed change: the database still has the old value
        identity = member.key
        return tuple(identity[1]) if identity is not None else None

    return primary_key


def _statement(
    rel: RelationshipProperty[Any], shape: _Shape, lazy_statement: Any, width: int
) -> Any:
    target = rel.entity.entity
    keys: Any = bindparam(KEYS_PARAMETER, expanding=True)
    if shape.per_key:
        statement = select(target, *shape.remote)
        if rel.secondary is not None:
            statement = statement.join(rel.secondary, rel.secondaryjoin)
        compared: Any = shape.remote[0] if width == 1 else tuple_(*shape.remote)
        statement = statement.where(compared.in_(keys), *shape.filters)
    else:
        parent = aliased(rel.parent, flat=True)
        pk = [getattr(parent, key) for key in shape.parent_keys]
        compared = pk[0] if width == 1 else tuple_(*pk)
        statement = (
            select(target, *pk)
            .select_from(parent)
            .join(getattr(parent, rel.key).of_type(target))
            .where(compared.in_(keys))
        )
    if rel.order_by:
        statement = statement.order_by(*rel.order_by)
    statement = statement.execution_options(**lazy_statement.get_execution_options())
    return carry_loader_context(statement, lazy_statement)


def _populate(member: InstanceState[Any], rel: RelationshipProperty[Any],
              targets: Sequence[Any]) -> None:
    """Set the loaded value on a peer unless it got one meanwhile (or is gone)."""
    instance = member.obj()
    if instance is None or rel.key in member.dict:
        return
    if rel.uselist:
        set_committed_value(instance, rel.key, targets)
        return
    if len(targets) > 1:
        warnings.warn(f"Multiple rows returned with uselist=False for batch-loaded attribute "
                      f"'{rel}'", SAWarning, stacklevel=2)
    set_committed_value(instance, rel.key, targets[0] if targets else None)
