"""Every SQLAlchemy internal that ``sqlaopt.batching._sa`` reads still means what batching
assumes, on the SQLAlchemy this suite runs with (CI: 2.0.25 and the locked 2.1)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, inspect, select
from sqlalchemy.orm import (
    ORMExecuteState,
    Session,
    joinedload,
    lazyload,
    selectinload,
)

from sqlaopt.batching import _sa

from .models import Child, Node, Owner, Parent, Truck

pytestmark = pytest.mark.nplusone(mode="off")


@pytest.fixture
def seen(kinds_session: Session) -> Iterator[list[ORMExecuteState]]:
    """Every ORMExecuteState the Session produces while the test runs."""
    states: list[ORMExecuteState] = []
    record = states.append
    event.listen(kinds_session, "do_orm_execute", record)
    yield states
    event.remove(kinds_session, "do_orm_execute", record)


def last_column_load(seen: list[ORMExecuteState]) -> ORMExecuteState:
    return next(state for state in reversed(seen) if state.is_column_load)


def test_runid_marks_what_one_execution_created(kinds_session: Session) -> None:
    first = kinds_session.scalars(select(Parent).where(Parent.id <= 3)).all()
    second = kinds_session.scalars(select(Parent).where(Parent.id.between(2, 6))).all()
    runs = [_sa.RUNID(inspect(p)) for p in second]
    assert len({_sa.RUNID(inspect(p)) for p in first}) == 1
    assert runs[0] == runs[1] == _sa.RUNID(inspect(first[1]))  # already there: untouched
    assert len(set(runs[2:])) == 1 and runs[2] != runs[0]


def test_identity_states_come_newest_first(kinds_session: Session) -> None:
    loaded = kinds_session.scalars(select(Parent).where(Parent.id <= 5).order_by(Parent.id)).all()
    states = [inspect(p) for p in loaded]
    assert list(_sa.identity_states_newest_first(kinds_session)) == states[::-1]
    assert list(_sa.identity_states_snapshot(kinds_session)) == states[::-1]


def test_load_signature_and_per_instance_loaders(kinds_session: Session) -> None:
    nodes = kinds_session.scalars(select(Node).where(Node.id.between(600, 603)).options(
        joinedload(Node.parent), lazyload(Node.children.and_(Node.id > 0)))).all()
    roots = [inspect(n) for n in nodes]
    joined = inspect(nodes[0].parent)
    assert _sa.load_signature(roots[0]) == _sa.load_signature(roots[1])
    assert _sa.load_signature(joined)[0] != _sa.load_signature(roots[0])[0]
    assert _sa.lazy_callable(roots[0], "children") is not None
    assert _sa.lazy_callable(roots[0], "children") is _sa.lazy_callable(roots[1], "children")
    plain = inspect(kinds_session.scalars(select(Parent).limit(1)).one())
    assert _sa.lazy_callable(plain, "children") is None


def test_execute_state_readings(kinds_session: Session, seen: list[ORMExecuteState]) -> None:
    parents = kinds_session.scalars(select(Parent).where(Parent.id <= 3).options(
        selectinload(Parent.tags))).all()
    top, selectin = seen[0], seen[1]
    assert not _sa.is_eager_subquery(top) and _sa.is_eager_subquery(selectin)
    assert _sa.allows_autoflush(top)
    parents[0].children  # noqa: B018
    lazy = seen[-1]
    assert lazy.lazy_loaded_from is inspect(parents[0])
    assert not _sa.is_eager_subquery(lazy)
    kinds_session.expire(parents[1])
    parents[1].name  # noqa: B018
    state, keys = _sa.refresh_request(last_column_load(seen)) or (None, frozenset())
    assert state is inspect(parents[1]) and {"name", "owner_id"} <= keys
    assert not _sa.is_user_refresh(last_column_load(seen))
    parents[2].bio  # noqa: B018  (deferred)
    assert _sa.refresh_request(last_column_load(seen)) == (inspect(parents[2]),
                                                           frozenset({"bio"}))
    kinds_session.refresh(parents[0])
    assert _sa.is_user_refresh(last_column_load(seen))


def test_loads_without_autoflush_are_recognised(
    kinds_session: Session, seen: list[ORMExecuteState]
) -> None:
    """SQLAlchemy's own no-autoflush loads (pending instances, loads during a flush) set the
    same load option as this public execution option."""
    kinds_session.scalars(select(Parent).limit(1).execution_options(autoflush=False)).all()
    kinds_session.scalars(select(Parent).limit(1)).all()
    assert [_sa.allows_autoflush(state) for state in seen] == [False, True]


def test_carry_loader_context(kinds_session: Session, seen: list[ORMExecuteState]) -> None:
    parent = kinds_session.scalars(select(Parent).limit(1).options(
        lazyload(Parent.children).selectinload(Child.toys))).one()
    parent.children  # noqa: B018
    lazy = next(s for s in seen if s.lazy_loaded_from is not None).statement
    batch = _sa.carry_loader_context(select(Child), lazy)
    assert batch._with_options == lazy._with_options
    assert batch._compile_options._current_path == lazy._compile_options._current_path


def _shape(relationship: Any) -> tuple[list[tuple[str, str]], int] | None:
    split = _sa.equality_join(relationship.property.primaryjoin)
    if split is None:
        return None
    pairs, filters = split
    return [(str(local), str(remote)) for local, remote in pairs], len(filters)


@pytest.mark.parametrize(("relationship", "expected"), [
    (Parent.owner, ([("b_parents.owner_id", "b_owners.id")], 0)),
    (Parent.children, ([("b_parents.id", "b_children.parent_id")], 0)),
    (Parent.active_children, ([("b_parents.id", "b_children.parent_id")], 1)),
    (Parent.tags, ([("b_parents.id", "b_parent_tags.parent_id")], 0)),
    (Node.parent, ([("b_nodes.parent_id", "b_nodes.id")], 0)),
    (Node.children, ([("b_nodes.id", "b_nodes.parent_id")], 0)),
    (Truck.loads, ([("b_vehicles.id", "b_cargo.vehicle_id")], 0)),
    (Owner.big_children, None),
])
def test_equality_join(relationship: Any, expected: Any) -> None:
    assert _shape(relationship) == expected
