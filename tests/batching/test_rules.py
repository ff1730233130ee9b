"""The batching rule, its opt-outs and its fall-backs, each compared with batching off."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine, delete, inspect, select, update
from sqlalchemy.exc import SAWarning
from sqlalchemy.orm import (
    Session,
    defaultload,
    joinedload,
    lazyload,
    scoped_session,
    selectinload,
    sessionmaker,
    with_loader_criteria,
)
from sqlalchemy.orm.exc import DetachedInstanceError, ObjectDeletedError

import sqlaopt

from .conftest import rolled_back
from .models import Child, Node, Owner, Parent, parent_labels, parent_tags

pytestmark = pytest.mark.nplusone(mode="off")  # the unbatched runs are N+1s on purpose

Scenario = Callable[[Session], Any]


def run(engine: Engine, scenario: Scenario, *, batch: bool) -> tuple[int, Any]:
    """(statements, result) of ``scenario`` in a fresh session that is rolled back."""
    with rolled_back(engine) as session, sqlaopt.count_queries() as queries, \
            sqlaopt.batch(enabled=batch):
        result = scenario(session)
    return queries.count, result


def compare(engine: Engine, scenario: Scenario) -> int:
    """Run ``scenario`` with batching on and off; the results must be equal. Returns the
    statement count with batching on."""
    statements, result = run(engine, scenario, batch=True)
    assert result == run(engine, scenario, batch=False)[1]
    return statements


def parents(session: Session, n: int = 20, **options: Any) -> list[Parent]:
    statement = select(Parent).where(Parent.id <= n).order_by(Parent.id)
    return list(session.scalars(statement.execution_options(**options)).all())


def child_ids(parent: Parent) -> list[int]:
    return [child.id for child in parent.children]


# --- what a batch does to the peers -------------------------------------------------------


def test_peers_get_committed_values_without_history(kinds_session: Session) -> None:
    with sqlaopt.batch():
        loaded = parents(kinds_session)
        loaded[0].children  # noqa: B018  (the access that batches)
    for parent in loaded:
        state = inspect(parent)
        assert "children" in state.dict
        assert not state.modified
        assert not state.attrs.children.history.has_changes()
    assert not kinds_session.dirty


def test_pending_changes_and_loaded_attributes_are_left_alone(kinds_engine: Engine) -> None:
    def scenario(session: Session) -> Any:
        first, second, third = parents(session, 3)
        second.name = "renamed"
        third.children.append(Child(id=10_000, position=9, size=1, active=1))
        first.children  # noqa: B018
        history = inspect(second).attrs.name.history
        session.flush()
        flushed = session.execute(select(Child.id, Child.parent_id).where(Child.id == 10_000))
        return (history.added, child_ids(third), list(flushed), second.name,
                [child_ids(p) for p in (first, second)])

    compare(kinds_engine, scenario)


@pytest.mark.parametrize("autoflush", [True, False])
def test_unflushed_foreign_keys_are_read_as_the_lazy_load_reads_them(
    kinds_engine: Engine, autoflush: bool
) -> None:
    def scenario(session: Session) -> Any:
        session.autoflush = autoflush
        loaded = parents(session, 10)
        loaded[3].owner_id = 2
        loaded[4].owner_id = None
        return [p.owner.id if p.owner else None for p in loaded]

    compare(kinds_engine, scenario)


# --- opt-outs ------------------------------------------------------------------------------


def test_statement_opt_out_covers_what_it_loaded(kinds_engine: Engine) -> None:
    def scenario(session: Session) -> Any:
        loaded = parents(session, 10, sqlaopt_batch=False)
        return [[len(c.toys) for c in p.children] for p in loaded]

    on, off = run(kinds_engine, scenario, batch=True), run(kinds_engine, scenario, batch=False)
    assert on == off
    assert on[0] == 1 + 10 + 19  # the children, loaded lazily, were opted out too


def test_statement_opt_out_must_be_a_bool(kinds_session: Session) -> None:
    with sqlaopt.batch(), pytest.raises(sqlaopt.BatchError, match="sqlaopt_batch"):
        parents(kinds_session, 10, sqlaopt_batch="no")


def test_relationship_opt_out(kinds_engine: Engine) -> None:
    def scenario(session: Session) -> Any:
        return [[c.id for c in p.shadow_children] for p in parents(session, 10)]

    assert compare(kinds_engine, scenario) == 11


def test_block_opt_out(kinds_session: Session) -> None:
    with sqlaopt.batch(), sqlaopt.count_queries() as queries:
        loaded = parents(kinds_session, 10)
        with sqlaopt.batch(enabled=False):
            for parent in loaded:
                parent.children  # noqa: B018
        for parent in loaded:
            parent.tags  # noqa: B018
    assert queries.count == 1 + 10 + 1


# --- options and criteria ------------------------------------------------------------------


def test_loader_criteria_travel_with_the_batch(kinds_engine: Engine) -> None:
    def scenario(session: Session) -> Any:
        statement = select(Parent).where(Parent.id <= 20).options(
            with_loader_criteria(Child, Child.active == 1))
        return [child_ids(p) for p in session.scalars(statement)]

    assert compare(kinds_engine, scenario) == 2


def test_relationship_criteria_travel_with_the_batch(kinds_engine: Engine) -> None:
    def scenario(session: Session) -> Any:
        statement = select(Parent).where(Parent.id <= 20).options(
            lazyload(Parent.children.and_(Child.size > 1)))
        return [child_ids(p) for p in session.scalars(statement)]

    assert compare(kinds_engine, scenario) == 2


def test_chained_options_apply_to_the_batch(kinds_engine: Engine) -> None:
    def scenario(session: Session) -> Any:
        statement = select(Parent).where(Parent.id <= 20).options(
            defaultload(Parent.children).selectinload(Child.toys))
        return [[[t.id for t in c.toys] for c in p.children] for p in session.scalars(statement)]

    assert compare(kinds_engine, scenario) == 3  # parents, batched children, their toys


def test_instances_loaded_at_different_paths_are_not_peers(kinds_engine: Engine) -> None:
    """One statement loads nodes at the root and, joined, their parents: two groups."""

    def scenario(session: Session) -> Any:
        statement = select(Node).where(Node.id.between(600, 619)).options(
            joinedload(Node.parent))
        nodes = session.scalars(statement).all()
        return [([c.id for c in n.children], [c.id for c in n.parent.children])
                for n in nodes if n.parent is not None]

    assert compare(kinds_engine, scenario) == 3


def test_joins_not_expressible_per_key_batch_through_the_parent(kinds_engine: Engine) -> None:
    def scenario(session: Session) -> Any:
        owners = session.scalars(select(Owner).where(Owner.id <= 30)).all()
        owners[5].threshold = 0  # unflushed: the database still has the old threshold
        session.autoflush = False
        return [[c.id for c in o.big_children] for o in owners]

    assert compare(kinds_engine, scenario) == 1 + 1 + 1  # owners, the batch, owner 6 alone


def test_scalar_with_several_rows_warns_as_the_lazy_load_does(kinds_engine: Engine) -> None:
    def scenario(session: Session) -> Any:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            firsts = [p.first_child.id if p.first_child else None for p in parents(session, 6)]
        return firsts, {w.category for w in caught}

    statements, (firsts, categories) = run(kinds_engine, scenario, batch=True)
    assert (firsts, categories) == run(kinds_engine, scenario, batch=False)[1]
    assert categories == {SAWarning}
    assert statements == 2


# --- fall-backs ----------------------------------------------------------------------------


def test_dynamic_and_write_only_relationships_stay_lazy(kinds_engine: Engine) -> None:
    def scenario(session: Session) -> Any:
        loaded = parents(session, 10)
        dynamic = [[c.id for c in p.dynamic_children] for p in loaded]
        write_only = [list(session.scalars(p.write_only_children.select())) for p in loaded]
        return dynamic, [[c.id for c in children] for children in write_only]

    assert compare(kinds_engine, scenario) == 1 + 10 + 10


def test_instances_loaded_singly_are_not_batched(kinds_engine: Engine) -> None:
    def scenario(session: Session) -> Any:
        return [child_ids(session.get_one(Parent, i)) for i in range(1, 11)]

    assert compare(kinds_engine, scenario) == 20


def test_detached_instances_fail_as_before(kinds_session: Session) -> None:
    with sqlaopt.batch():
        loaded = parents(kinds_session, 5)
        kinds_session.expunge(loaded[0])
        with pytest.raises(DetachedInstanceError):
            loaded[0].children  # noqa: B018
        assert len(loaded[1].children) == 2


def test_expired_and_deleted_instances_fail_as_before(kinds_engine: Engine) -> None:
    def scenario(session: Session) -> Any:
        loaded = parents(session, 10)
        session.execute(update(Child).where(Child.parent_id == 4).values(parent_id=None))
        for links in (parent_tags, parent_labels):
            session.execute(delete(links).where(links.c.parent_id == 4))
        session.execute(delete(Parent).where(Parent.id == 4),
                        execution_options={"synchronize_session": False})
        session.expire_all()
        names = []
        for parent in loaded:
            try:
                names.append(parent.name)
            except ObjectDeletedError:
                names.append("deleted")
        return names

    assert compare(kinds_engine, scenario) == 1 + 4 + 1 + 1  # parent 4 fails alone


def test_instances_marked_for_deletion_are_left_out(kinds_engine: Engine) -> None:
    def scenario(session: Session) -> Any:
        loaded = parents(session, 10)
        session.delete(loaded[3])  # parent 4: no profile, whose parent_id is not nullable
        rest = loaded[:3] + loaded[4:]
        return [p.owner_id for p in rest], [child_ids(p) for p in rest]

    compare(kinds_engine, scenario)


def test_session_refresh_is_not_batched(kinds_session: Session) -> None:
    with sqlaopt.batch():
        loaded = parents(kinds_session, 5)
        kinds_session.expire_all()
        kinds_session.execute(update(Parent).where(Parent.id == 1).values(name="x"),
                              execution_options={"synchronize_session": False})
        with sqlaopt.count_queries() as queries:
            kinds_session.refresh(loaded[0])
        assert queries.count == 1
        assert loaded[0].name == "x"
        assert "name" in inspect(loaded[1]).expired_attributes


# --- ways of loading -----------------------------------------------------------------------


@pytest.mark.parametrize("eager", [False, True])
def test_yield_per_batches_each_partition(kinds_engine: Engine, eager: bool) -> None:
    def scenario(session: Session) -> Any:
        statement = select(Parent).where(Parent.id <= 300).order_by(Parent.id)
        if eager:
            statement = statement.options(selectinload(Parent.tags))
        result = session.scalars(statement.execution_options(yield_per=100))
        return [(child_ids(p), [t.id for t in p.tags]) for p in result]

    assert compare(kinds_engine, scenario) == 1 + 3 * 2  # per partition: children and tags


def test_populate_existing_regroups_the_instances(kinds_engine: Engine) -> None:
    def scenario(session: Session) -> Any:
        parents(session, 10)
        again = parents(session, 20, populate_existing=True)
        return [child_ids(p) for p in again]

    assert compare(kinds_engine, scenario) == 3


def test_legacy_query_and_scoped_session(kinds_engine: Engine) -> None:
    with kinds_engine.connect() as conn:
        registry = scoped_session(sessionmaker(bind=conn))
        try:
            with sqlaopt.batch(), sqlaopt.count_queries() as queries:
                loaded = registry.query(Parent).filter(Parent.id <= 30).all()
                owners = [p.owner.name if p.owner else None for p in loaded]
        finally:
            registry.remove()
    assert queries.count == 2
    assert owners.count(None) == 6


def test_a_loop_nested_in_a_loop_stays_one_statement_per_hop(kinds_engine: Engine) -> None:
    def scenario(session: Session) -> Any:
        return [[(c.parent.id, [t.id for t in c.toys]) for c in p.children]
                for p in parents(session, 50)]

    assert compare(kinds_engine, scenario) == 3  # parents, children, toys (c.parent: a hit)
