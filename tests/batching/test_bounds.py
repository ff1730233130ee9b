"""Bounded: peer groups hold weak references only, no instance outlives its Session because of
batching, memory stays flat over 100,000 results, and a group too far back in a huge identity
map is given up on once instead of searched for again and again."""

from __future__ import annotations

import gc
import sys
import weakref
from typing import Any

import pytest
from sqlalchemy import Engine, ForeignKey, Integer, insert, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

import sqlaopt
from sqlaopt.batching import _peers

from ..conftest import sqlite_engine
from .models import Child, Parent

pytestmark = pytest.mark.nplusone(mode="off")


def test_no_instance_outlives_its_session(kinds_engine: Engine) -> None:
    with Session(kinds_engine) as session, sqlaopt.batch():
        parents = session.scalars(select(Parent).where(Parent.id <= 50)).all()
        children = [c for p in parents for c in p.children]
        [c.toys for c in children]
        refs = [weakref.ref(o) for o in (*parents, *children)]
        session_ref = weakref.ref(session)
    del parents, children, session
    gc.collect()
    assert session_ref() is None
    assert all(ref() is None for ref in refs)


def test_groups_do_not_keep_instances_alive_while_the_session_lives(kinds_engine: Engine) -> None:
    with Session(kinds_engine) as session, sqlaopt.batch():
        parents = session.scalars(select(Parent).where(Parent.id <= 50)).all()
        parents[0].children  # noqa: B018  (caches the group)
        refs = [weakref.ref(p) for p in parents]
        del parents
        gc.collect()
        assert all(ref() is None for ref in refs)
        assert len(session.identity_map) == sum(1 for o in session.identity_map.values()
                                                 if isinstance(o, Child))


class Small(DeclarativeBase):
    pass


class Group(Small):
    __tablename__ = "m_groups"
    id: Mapped[int] = mapped_column(primary_key=True)
    size: Mapped[int] = mapped_column(Integer)


class Item(Small):
    __tablename__ = "m_items"
    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("m_groups.id"))
    group: Mapped[Group] = relationship()


ITEMS, GROUPS, PARTITION = 100_000, 50, 2_000


@pytest.fixture(scope="module")
def items_engine() -> Any:
    engine = sqlite_engine()
    Small.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(Group), [{"id": i, "size": i % 7} for i in range(1, GROUPS + 1)])
        conn.execute(insert(Item), [{"id": i, "group_id": i % GROUPS + 1}
                                    for i in range(1, ITEMS + 1)])
    yield engine
    engine.dispose()


def test_memory_is_flat_over_100_000_results(items_engine: Engine) -> None:
    """Stream 100,000 items in partitions of 2,000; each partition's groups are loaded in one
    statement (the previous partition's items and groups are gone by then). A leak of one
    object per item would add 80,000 memory blocks between the 10th and the 50th partition."""
    with Session(items_engine) as session, sqlaopt.batch(), sqlaopt.count_queries() as queries:
        result = session.scalars(select(Item).execution_options(yield_per=PARTITION))
        total = 0
        for number, partition in enumerate(result.partitions(), 1):
            total += sum(item.group.size for item in partition)
            del partition
            if number == 10:
                gc.collect()
                settled = sys.getallocatedblocks()
        gc.collect()
        grown = sys.getallocatedblocks() - settled
    assert total == sum((i % GROUPS + 1) % 7 for i in range(1, ITEMS + 1))
    assert queries.count == 1 + ITEMS // PARTITION
    assert grown < 5_000, f"{grown:,} more memory blocks after the 50th partition than the 10th"


def test_a_group_beyond_the_scan_limit_is_given_up_on_once(
    kinds_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    scans = []
    monkeypatch.setattr(_peers, "MAX_SCAN", 600)
    walk = _peers._scan_from
    monkeypatch.setattr(_peers, "_scan_from", lambda *a: scans.append(1) or walk(*a))
    with Session(kinds_engine) as session, sqlaopt.batch(), \
            sqlaopt.count_queries() as queries:
        parents = session.scalars(select(Parent).where(Parent.id <= 10)).all()
        children = session.scalars(select(Child)).all()  # ~1,900 newer entries
        for parent in parents:
            parent.children  # noqa: B018
    assert len(children) > 1_000
    assert queries.count == 2 + 10  # each parent alone
    assert len(scans) == 1
