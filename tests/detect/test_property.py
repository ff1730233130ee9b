"""Properties of the rule, for all inputs hypothesis can think of.

- Random loop programs: a relationship is flagged exactly when some call stack lazily loads it
  ``threshold`` or more times, and its one detection counts every such stack's loads. The
  oracle counts lazy loads independently, through SQLAlchemy's public ``do_orm_execute`` event
  (the detector reads the cursor-level context instead), keyed by the site function.
- Random thread and task sequences: lanes never add up, however ids are reused.
- Random recursion depths: one detection, and a fix with the depth reached.
- Random comments before a read, random literals in a statement's text.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, event, select
from sqlalchemy.orm import ORMExecuteState, Session, selectinload

import sqlaopt
from sqlaopt.booking.models import Appointment, Client, Service, User
from sqlaopt.detect import _sql

from ..conftest import sqlite_engine
from . import shapes
from .shapes import Category

RELATIONSHIPS: dict[str, tuple[type[Any], str]] = {
    "Appointment.client": (Appointment, "client"),
    "Appointment.service": (Appointment, "service"),
    "Appointment.payment": (Appointment, "payment"),
    "User.appointments": (User, "appointments"),
    "User.user_organizations": (User, "user_organizations"),
    "Client.appointments": (Client, "appointments"),
    "Service.barbers": (Service, "barbers"),
}
current_site: list[tuple[str, int]] = []  # (site, program step) of the load running now


def _touch(rows: list[Any], attribute: str) -> None:
    for row in rows:
        getattr(row, attribute)


# Three sites with the same body: the same relationship touched from two different sites is
# two different places in the code.
def site_a(rows: list[Any], attribute: str) -> None:
    _touch(rows, attribute)


def site_b(rows: list[Any], attribute: str) -> None:
    _touch(rows, attribute)


def site_c(rows: list[Any], attribute: str) -> None:
    _touch(rows, attribute)


SITES: dict[str, Callable[[list[Any], str], None]] = {
    "site_a": site_a, "site_b": site_b, "site_c": site_c,
}

loop = st.tuples(
    st.sampled_from(sorted(RELATIONSHIPS)),
    st.sampled_from(sorted(SITES)),
    st.lists(st.integers(1, 12), max_size=5, unique=True),
    st.booleans(),  # eager-load the relationship in the query
)


@pytest.fixture
def oracle(booking_engine: Engine) -> Iterator[list[tuple[str, str, int]]]:
    """Every lazy load of the example: (relationship, site, program step)."""
    loads: list[tuple[str, str, int]] = []

    def count_lazy_loads(state: ORMExecuteState) -> None:
        if state.is_relationship_load and state.lazy_loaded_from is not None \
                and "sa_top_level_orm_context" not in state.execution_options:
            prop = state.loader_strategy_path[-1]  # type: ignore[index]
            loads.append((f"{prop.parent.class_.__name__}.{prop.key}", *current_site[-1]))

    event.listen(Session, "do_orm_execute", count_lazy_loads)
    yield loads
    event.remove(Session, "do_orm_execute", count_lazy_loads)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(program=st.lists(loop, min_size=1, max_size=6), threshold=st.integers(1, 3))
def test_flagged_exactly_when_a_relationship_repeats_from_one_stack(
    booking_engine: Engine, oracle: list[tuple[str, str, int]],
    program: list[tuple[str, str, list[int], bool]], threshold: int,
) -> None:
    oracle.clear()
    with Session(booking_engine) as session, \
            sqlaopt.detect("record", threshold=threshold) as report:
        for step, (name, site, ids, eager) in enumerate(program):  # the test's loop
            model, attribute = RELATIONSHIPS[name]
            query = select(model).where(model.id.in_(ids))
            if eager:
                query = query.options(selectinload(getattr(model, attribute)))
            rows = list(session.scalars(query))
            current_site.append((site, step))
            SITES[site](rows, attribute)
            current_site.pop()
    steps: dict[tuple[str, str], list[int]] = {}
    for target, site, step in oracle:
        steps.setdefault((target, site), []).append(step)
    expected: Counter[tuple[str, str]] = Counter()
    for (target, _), seen in steps.items():
        if len(seen) >= threshold:  # a loop: this site's stack repeated the load
            # The loop is _touch's when the repeats that reached the threshold came from one
            # call of it; the test's own loop when they came from two program steps.
            one_call = seen[0] == seen[threshold - 1]
            expected[target, "_touch" if one_call else "the test"] += len(seen)
    lazy = [d for d in report.detections if d.kind == "lazy_load"]
    # Detection.loop is only set for a loop in another function than the location (_touch).
    found = Counter({(d.target, "the test" if d.loop else "_touch"): d.count for d in lazy})
    # One detection per place: the three sites share _touch and the test's loop, so they sum.
    assert found == expected
    assert len(found) == len(lazy)
    assert all("in _touch" in d.location for d in lazy)


# ---------------------------------------------------------------- lanes


def _load_n(engine: Engine, n: int) -> None:
    with Session(engine) as s:
        for i in range(1, n + 1):
            s.get(Client, i)  # a single-key fetch per iteration


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lanes=st.lists(st.tuples(st.sampled_from(["thread", "task"]), st.integers(1, 3)),
                      min_size=1, max_size=8),
       keep=st.booleans())
def test_sequential_lanes_never_add_up(
    booking_engine: Engine, lanes: list[tuple[str, int]], keep: bool
) -> None:
    kept: list[object] = []

    async def as_task(n: int) -> None:
        task = asyncio.create_task(asyncio.to_thread(_load_n, booking_engine, n))
        await task
        if keep:
            kept.append(task)

    with sqlaopt.detect("record") as report:
        for kind, n in lanes:
            if kind == "thread":
                thread = threading.Thread(target=_load_n, args=(booking_engine, n))
                thread.start()
                thread.join()
                if keep:
                    kept.append(thread)
            else:
                asyncio.run(as_task(n))
    looping = sum(n for _, n in lanes if n >= 2)
    assert [d.count for d in report.detections] == ([looping] if looping else [])


# ---------------------------------------------------------------- recursion


def _walk(node: Category) -> int:
    return 1 + sum(_walk(child) for child in node.children)


@settings(max_examples=15, deadline=None)
@given(depth=st.integers(2, 6), fanout=st.integers(1, 2))
def test_a_recursion_of_any_depth_is_one_loop_with_its_depth(depth: int, fanout: int) -> None:
    engine = sqlite_engine()
    shapes.Base.metadata.create_all(engine)
    with Session(engine) as s:
        root = Category(name="r")
        level = [root]
        for _ in range(depth - 1):
            level = [Category(name="c", parent=node) for node in level for _ in range(fanout)]
        s.add(root)
        s.commit()
        nodes = _walk(s.get(Category, root.id))  # type: ignore[arg-type]
    with Session(engine) as s:
        top = s.get(Category, 1)
        with sqlaopt.detect("record") as report:
            _walk(top)  # type: ignore[arg-type]
    [d] = report.detections
    assert d.count == nodes
    assert d.suggestion == f"selectinload(Category.children, recursion_depth={depth})"
    with Session(engine) as s, sqlaopt.count_queries() as queries:
        fixed = s.scalars(select(Category).where(Category.id == 1).options(
            eval(d.suggestion, {"selectinload": selectinload, "Category": Category}))).one()
        assert _walk(fixed) == nodes
    assert queries.count == 1 + depth  # the root, then one statement per level, no lazy load


# ---------------------------------------------------------------- SQL text

_comment = st.sampled_from(["-- c\n", "/* c */", "/* a\nb */", "\n", " ", "\t",
                            "/*traceparent='00-ab-cd-01'*/"])


@given(prefix=st.lists(_comment, max_size=5).map("".join),
       parens=st.integers(0, 3), body=st.sampled_from([
           ("SELECT 1", True), ("VALUES (1)", True), ("WITH a AS (SELECT 1) SELECT * FROM a", True),
           ("WITH a AS (SELECT 1) INSERT INTO t SELECT * FROM a", False),
           ("INSERT INTO t VALUES (1)", False), ("UPDATE t SET x = 1", False),
           ("CREATE TABLE t (x int)", False), ("SET search_path = x", False),
       ]))
def test_reads_are_recognised_whatever_precedes_them(
    prefix: str, parens: int, body: tuple[str, bool]
) -> None:
    sql, reads = body
    assert _sql.is_read(prefix + "(" * parens + sql + ")" * parens) is reads


_literal = st.one_of(st.integers(-10**6, 10**6).map(str),
                     st.text(st.characters(blacklist_characters="'\x00"), max_size=8)
                     .map(lambda t: "'" + t + "'"))


@given(a=st.lists(_literal, min_size=3, max_size=3), b=st.lists(_literal, min_size=3, max_size=3))
def test_literals_do_not_change_a_fingerprint(a: list[str], b: list[str]) -> None:
    template = "SELECT x FROM t WHERE id = {} AND name = {} AND v IN ({}, 7)"
    assert _sql.fingerprint(template.format(*a)) == _sql.fingerprint(template.format(*b))
    assert _sql.fingerprint(template.format(*a)) != _sql.fingerprint(
        template.format(*a).replace("WHERE id", "WHERE other"))
