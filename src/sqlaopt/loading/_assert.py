"""``assert_loaded``: check, without touching the database, that loader paths were loaded."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.orm import InstanceState

from ._paths import Hop, parse_path
from ._resolve import relationship_of

__all__ = ["assert_loaded"]

# How an instance was reached: the root's state, then (relationship key, state) per hop.
# Kept as data and turned into text only on failure, because a model's own __repr__ may
# read attributes and so emit SQL.
_Trail = tuple[tuple[str, InstanceState[Any]], ...]
_Reached = dict[InstanceState[Any], _Trail]


def assert_loaded(instances: object, *paths: str) -> None:
    """Assert that every path is already loaded on every instance, without emitting SQL.

    ``instances`` is one mapped instance or an iterable of them; each path is a dotted
    relationship path as for :func:`sqlaopt.eager` (suffixes are accepted and ignored).
    Collections are walked, so ``"appointments.client"`` checks the client of every
    appointment. A scalar that is loaded as None ends its path.

    Only the instances' ``__dict__`` is read: an attribute that is expired, never loaded or
    guarded by ``raiseload`` counts as not loaded. Raises ``AssertionError`` naming the first
    instance and hop that is not loaded, and :class:`sqlaopt.PresetError` when a hop is not a
    relationship of its model. An empty ``instances`` passes.
    """
    roots = _states(instances)
    for path in paths:
        _check_path(roots, parse_path(path), path)


def _states(instances: object) -> _Reached:
    candidates: object = [instances] if _state(instances) is not None else instances
    if not isinstance(candidates, Iterable):
        raise TypeError(f"assert_loaded expects mapped instances, got {instances!r}")
    reached: _Reached = {}
    for instance in candidates:
        state = _state(instance)
        if state is None:
            raise TypeError(f"assert_loaded expects mapped instances, got {instance!r}")
        reached.setdefault(state, (("", state),))
    return reached


def _state(instance: object) -> InstanceState[Any] | None:
    state = inspect(instance, raiseerr=False)
    return state if isinstance(state, InstanceState) else None


def _check_path(roots: _Reached, hops: tuple[Hop, ...], path: str) -> None:
    level = roots
    for depth, hop in enumerate(hops):
        location = ".".join(h.key for h in hops[: depth + 1])
        level = _next_level(level, hop.key, location, path)


def _next_level(level: _Reached, key: str, location: str, path: str) -> _Reached:
    reached: _Reached = {}
    for state, trail in level.items():
        prop = relationship_of(state.mapper, key, location)
        if key not in state.dict:
            raise AssertionError(
                f"{_render(trail)}.{key} is not loaded (path {path!r});"
                " reading it would emit SQL or raise"
            )
        value = state.dict[key]
        related = value if prop.uselist else ([] if value is None else [value])
        for item in related:
            child = inspect(item)
            reached.setdefault(child, (*trail, (key, child)))
    return reached


def _render(trail: _Trail) -> str:
    """``User(id=3).appointments -> Appointment(id=7)``, read from identities only."""
    parts = [_label(trail[0][1])]
    parts += [f".{key} -> {_label(state)}" for key, state in trail[1:]]
    return "".join(parts)


def _label(state: InstanceState[Any]) -> str:
    model = state.mapper.class_.__name__
    if state.identity is None:
        return f"{model}(pending, id {id(state.obj()):#x})"
    names = [state.mapper.get_property_by_column(c).key for c in state.mapper.primary_key]
    values = ", ".join(f"{n}={v!r}" for n, v in zip(names, state.identity, strict=True))
    return f"{model}({values})"
