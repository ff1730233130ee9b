"""Batching expired and deferred column loads over the instance's peers.

When one instance reloads expired attributes (after a commit) or loads a deferred column,
its peers of the same class that lack the same attributes get them from one
``SELECT ... WHERE pk IN (...)``, with the deferred ones undeferred. The peers are instances
already in the identity map, so SQLAlchemy fills only their unloaded attributes (changes and
loaded values stay as they are) and fires its usual ``refresh`` event; the triggering
instance is filled the same way and handed back as the refresh statement's result.
``Session.refresh()`` is an explicit overwrite of one instance and is never batched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select, tuple_
from sqlalchemy.engine import Result
from sqlalchemy.orm import ColumnProperty, InstanceState, Mapper, ORMExecuteState, undefer

from ._info import BATCHED_OPTION, KEYS_PARAMETER, Batched
from ._peers import peers_of
from ._sa import is_user_refresh, refresh_request

__all__ = ["ColumnBatch", "plan_columns"]



@dataclass
class ColumnBatch:
    """A planned batch of column loads: the peers in order, the triggering state first."""

    execute_state: ORMExecuteState
    peers: list[InstanceState[Any]]
    keys: frozenset[str]
    max_batch: int

    def run(self) -> Result[Any]:
        state = self.peers[0]
        mapper = state.mapper
        statement = _statement(mapper, self.keys)
        first = None
        for start in range(0, len(self.peers), self.max_batch):
            chunk = self.peers[start:start + self.max_batch]
            identities = [tuple(member.key[1]) for member in chunk if member.key is not None]
            values = identities if len(mapper.primary_key) > 1 else [k[0] for k in identities]
            result = self.execute_state.session.execute(
                statement,
                {KEYS_PARAMETER: values},
                execution_options={BATCHED_OPTION: Batched(state, len(chunk), column=True)},
            )
            frozen = result.freeze()
            first = first or frozen
        assert first is not None
        instance = state.obj()
        return first.with_new_rows([row for row in first() if row[0] is instance])()


def plan_columns(
    execute_state: ORMExecuteState, max_batch: int
) -> ColumnBatch | None:
    """Plan the batch for an expired or deferred attribute load, or None."""
    request = refresh_request(execute_state)
    if request is None or is_user_refresh(execute_state):
        return None
    state, keys = request
    if state.key is None or state.obj() is None:
        return None
    session = execute_state.session
    deleted = {id(obj) for obj in session.deleted}
    if id(state.obj()) in deleted:
        return None
    peers = [state]
    for member in peers_of(session, state):
        if member is not state and _lacks(member, state, keys) \
                and id(member.obj()) not in deleted:
            peers.append(member)
    return ColumnBatch(execute_state, peers, keys, max_batch) if len(peers) > 1 else None


def _lacks(member: InstanceState[Any], state: InstanceState[Any], keys: frozenset[str]) -> bool:
    """Whether ``member`` is a persistent instance of the same class in the same Session that
    has one of ``keys`` unloaded and unchanged."""
    if member.key is None or member.mapper is not state.mapper \
            or member.session_id != state.session_id:
        return False
    loaded, changed = member.dict, member.committed_state
    return any(key not in loaded and key not in changed for key in keys)


def _statement(mapper: Mapper[Any], keys: frozenset[str]) -> Any:
    entity = mapper.entity
    pk = [getattr(entity, mapper.get_property_by_column(c).key) for c in mapper.primary_key]
    compared: Any = pk[0] if len(pk) == 1 else tuple_(*pk)
    deferred = [
        undefer(getattr(entity, key))
        for key in sorted(keys)
        if isinstance(mapper.attrs.get(key), ColumnProperty) and mapper.attrs[key].deferred
    ]
    keys_in = compared.in_(bindparam(KEYS_PARAMETER, expanding=True))
    return select(entity).where(keys_in).options(*deferred)
