"""Same answers: a hypothesis state machine drives two identical databases, one Session with
batching on and one with it off, through random loads, reads, changes and session operations.
Every value read (or error raised) must be the same, and so must the database after each
flush, commit and rollback."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, joinedload, selectinload, with_loader_criteria

import sqlaopt

from ..conftest import sqlite_engine
from .models import Base, Child, Node, Owner, Parent, Toy, build

pytestmark = pytest.mark.nplusone(mode="off")  # the unbatched world is all N+1s

ROWS = 12
READABLE: dict[type[Any], tuple[str, ...]] = {
    Parent: ("name", "bio", "owner", "children", "active_children", "profile", "tags", "labels"),
    Child: ("size", "parent", "toys"),
    Owner: ("name", "parents", "big_children"),
    Node: ("name", "parent", "children"),
    Toy: ("name", "child"),
}
LOADS: dict[str, Callable[[int, int], Any]] = {
    "parents": lambda lo, hi: select(Parent).where(Parent.id.between(lo, hi)).order_by(Parent.id),
    "children": lambda lo, hi: select(Child).where(Child.id.between(lo, hi)).order_by(Child.id),
    "owners": lambda lo, hi: select(Owner).order_by(Owner.id),
    "nodes": lambda lo, hi: select(Node).where(Node.id.between(lo, hi)).order_by(Node.id),
    "toys": lambda lo, hi: select(Toy).where(Toy.id.between(lo, hi)).order_by(Toy.id),
    "parents with children joined": lambda lo, hi: select(Parent).where(
        Parent.id.between(lo, hi)).options(joinedload(Parent.children)).order_by(Parent.id),
    "parents with tags selectin": lambda lo, hi: select(Parent).where(
        Parent.id.between(lo, hi)).options(selectinload(Parent.tags)).order_by(Parent.id),
    "parents, active children only": lambda lo, hi: select(Parent).where(
        Parent.id.between(lo, hi)).options(
        with_loader_criteria(Child, Child.active == 1)).order_by(Parent.id),
    "parents, populate existing": lambda lo, hi: select(Parent).where(
        Parent.id.between(lo, hi)).execution_options(populate_existing=True).order_by(Parent.id),
}


def plain(value: Any) -> Any:
    """A comparable picture of what was read: ids for instances, lists of ids for collections."""
    if isinstance(value, Base):
        return (type(value).__name__, value.id)
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def _flushed(world: World) -> Session:
    """The world's Session after a flush. Expiring discards unflushed changes, and whether
    there are any depends on autoflush, which runs with each query: batching answers lazy
    loads from memory, so it runs less often (as with eager loading; docs/batching.md). An
    application that expires objects flushes first, or gets what autoflush left."""
    world.session.flush()
    return world.session


class World:
    """One database and one Session; batching on or off."""

    def __init__(self, engine: Engine, batching: bool) -> None:
        self.engine = engine
        self.batching = batching
        self.session = Session(engine)
        self.held: list[Any] = []  # strong references: what the "application" holds
        self.statements = 0

    @contextmanager
    def acting(self) -> Iterator[None]:
        with sqlaopt.batch(enabled=self.batching):
            yield

    def attempt(self, action: Callable[[], Any]) -> Any:
        """The action's result, or the class of the error it raised (after a rollback, as an
        application would)."""
        try:
            with self.acting(), sqlaopt.count_queries() as queries:
                try:
                    return action()
                finally:
                    self.statements += queries.count
        except Exception as error:
            self.session.rollback()
            return ("error", type(error).__name__)

    def dump(self) -> list[Any]:
        """Every row, as the Session's transaction sees them."""
        return [sorted(map(tuple, self.session.execute(text(f"SELECT * FROM {table.name}"))))
                for table in Base.metadata.sorted_tables]


class BatchingAgainstLazy(RuleBasedStateMachine):
    statements: ClassVar[dict[bool, int]] = {True: 0, False: 0}  # batching must save some

    def __init__(self) -> None:
        super().__init__()
        self.worlds: list[World] = []
        self.new_ids = itertools.count(100_000)

    @initialize()
    def databases(self) -> None:
        for batching in (True, False):
            engine = sqlite_engine()
            Base.metadata.create_all(engine)
            with engine.begin() as conn:
                build(conn, ROWS)
            self.worlds.append(World(engine, batching))

    def both(self, action: Callable[[World], Any]) -> None:
        on, off = (world.attempt(lambda w=world: action(w)) for world in self.worlds)
        assert on == off

    def teardown(self) -> None:
        for world in self.worlds:
            BatchingAgainstLazy.statements[world.batching] += world.statements
            world.session.close()
            world.engine.dispose()

    # --- loading and reading ---------------------------------------------------------------

    @rule(kind=st.sampled_from(sorted(LOADS)), low=st.integers(1, ROWS),
          size=st.integers(0, ROWS))
    def load(self, kind: str, low: int, size: int) -> None:
        def action(world: World) -> Any:
            loaded = world.session.scalars(LOADS[kind](low, low + size)).unique().all()
            world.held.extend(loaded)
            return plain(list(loaded))

        self.both(action)

    @precondition(lambda self: self.worlds and self.worlds[0].held)
    @rule(data=st.data())
    def read_one(self, data: st.DataObject) -> None:
        index = data.draw(st.integers(0, len(self.worlds[0].held) - 1))
        attribute = data.draw(st.sampled_from(READABLE[type(self.worlds[0].held[index])]))
        self.both(lambda world: plain(getattr(world.held[index], attribute)))

    @precondition(lambda self: self.worlds and self.worlds[0].held)
    @rule(data=st.data())
    def read_in_a_loop(self, data: st.DataObject) -> None:
        """The N+1 shape: one attribute of every held instance of one class, in order."""
        model = data.draw(st.sampled_from(sorted({type(o) for o in self.worlds[0].held},
                                                 key=lambda m: m.__name__)))
        attribute = data.draw(st.sampled_from(READABLE[model]))
        self.both(lambda world: [plain(getattr(o, attribute)) for o in world.held
                                 if type(o) is model])

    # --- changes ---------------------------------------------------------------------------

    def _held(self, data: st.DataObject, model: type[Any]) -> int | None:
        indexes = [i for i, o in enumerate(self.worlds[0].held) if isinstance(o, model)]
        return data.draw(st.sampled_from(indexes)) if indexes else None

    @precondition(lambda self: self.worlds)
    @rule(data=st.data(), name=st.sampled_from(["a", "b", "c"]))
    def rename(self, data: st.DataObject, name: str) -> None:
        index = self._held(data, Parent)
        if index is not None:
            self.both(lambda world: setattr(world.held[index], "name", name))

    @precondition(lambda self: self.worlds)
    @rule(data=st.data())
    def reassign_owner(self, data: st.DataObject) -> None:
        index = self._held(data, Parent)
        owner = data.draw(st.one_of(st.none(), st.integers(1, max(1, ROWS // 4))))
        if index is not None:
            self.both(lambda world: setattr(world.held[index], "owner_id", owner))

    @precondition(lambda self: self.worlds)
    @rule(data=st.data())
    def add_child(self, data: st.DataObject) -> None:
        index = self._held(data, Parent)
        if index is None:
            return
        new_id = next(self.new_ids)

        def action(world: World) -> Any:
            child = Child(id=new_id, position=new_id, size=2, active=1)
            world.held[index].children.append(child)
            world.held.append(child)

        self.both(action)

    @precondition(lambda self: self.worlds)
    @rule(data=st.data())
    def remove_child(self, data: st.DataObject) -> None:
        index = self._held(data, Parent)
        if index is not None:
            self.both(lambda world: plain(
                world.held[index].children.pop() if world.held[index].children else None))

    @precondition(lambda self: self.worlds)
    @rule(data=st.data())
    def delete_toy(self, data: st.DataObject) -> None:
        index = self._held(data, Toy)
        if index is not None:
            self.both(lambda world: world.session.delete(world.held[index]))

    # --- session operations ----------------------------------------------------------------

    @precondition(lambda self: self.worlds)
    @rule(data=st.data())
    def expire_one(self, data: st.DataObject) -> None:
        index = self._held(data, Base)
        if index is not None:
            self.both(lambda world: _flushed(world).expire(world.held[index]))

    @precondition(lambda self: self.worlds)
    @rule(data=st.data())
    def refresh_one(self, data: st.DataObject) -> None:
        index = self._held(data, Base)
        if index is not None:
            self.both(lambda world: _flushed(world).refresh(world.held[index]))

    @precondition(lambda self: self.worlds)
    @rule()
    def expire_all(self) -> None:
        self.both(lambda world: _flushed(world).expire_all())

    @precondition(lambda self: self.worlds)
    @rule(operation=st.sampled_from(["flush", "commit", "rollback"]))
    def write_out(self, operation: str) -> None:
        """After a flush, commit or rollback both databases hold the same rows. (Between them
        they may not: batching runs fewer statements, so autoflush runs less often.)"""
        self.both(lambda world: getattr(world.session, operation)())
        on, off = (world.dump() for world in self.worlds)
        assert on == off

    @precondition(lambda self: self.worlds)
    @rule()
    def drop_references(self) -> None:
        for world in self.worlds:
            world.held.clear()


@pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")
def test_batching_reads_and_writes_what_lazy_loading_does() -> None:
    run = settings(max_examples=int(os.environ.get("SQLAOPT_STATE_EXAMPLES", 60)),
                   stateful_step_count=30, deadline=None,
                   suppress_health_check=[HealthCheck.too_slow])(BatchingAgainstLazy)
    run.TestCase().runTest()
    assert 0 < BatchingAgainstLazy.statements[True] < BatchingAgainstLazy.statements[False]
