"""Hypothesis: for any set of relationship paths of the reference graph (depth up to 3), eager()
loads everything the paths reach, in 1 + (collection hops) statements, with the same results as
lazy loading."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select
from sqlalchemy.orm import Mapper, Session

import sqlaopt
from sqlaopt import assert_loaded, eager
from sqlaopt.booking.models import Base

from .conftest import identity

MAPPERS: dict[str, Mapper[Any]] = {m.class_.__name__: m for m in Base.registry.mappers}
MAX_DEPTH = 3

# A trie of relationship keys: {"appointments": {"client": {}}, "payments": {}}
Trie = dict[str, "Trie"]


def all_paths(mapper: Mapper[Any], depth: int = MAX_DEPTH) -> list[str]:
    """Every dotted relationship path from ``mapper`` of at most ``depth`` hops."""
    paths = []
    for key, prop in sorted(mapper.relationships.items()):
        paths.append(key)
        if depth > 1:
            paths += [f"{key}.{rest}" for rest in all_paths(prop.mapper, depth - 1)]
    return paths


PATHS = {name: all_paths(mapper) for name, mapper in MAPPERS.items()}


@st.composite
def path_sets(draw: st.DrawFn) -> tuple[str, list[str]]:
    root = draw(st.sampled_from(sorted(PATHS)))
    paths = draw(st.lists(st.sampled_from(PATHS[root]), min_size=1, max_size=5, unique=True))
    return root, paths


def trie_of(paths: list[str]) -> Trie:
    trie: Trie = {}
    for path in paths:
        node = trie
        for key in path.split("."):
            node = node.setdefault(key, {})
    return trie


def snapshot(instance: Any, trie: Trie) -> tuple[Any, ...]:
    """The identities reached from ``instance`` along ``trie``, read through the attributes
    (lazy loads happen where nothing was loaded), collections in a fixed order."""
    below: list[tuple[str, Any]] = []
    for key, sub in sorted(trie.items()):
        value = getattr(instance, key)
        if isinstance(value, list):
            below.append((key, tuple(sorted((snapshot(v, sub) for v in value), key=repr))))
        else:
            below.append((key, None if value is None else snapshot(value, sub)))
    return (identity(instance), tuple(below))


def expected_statements(mapper: Mapper[Any], parents: list[Any], trie: Trie) -> int:
    """Select-IN statements the trie needs below ``parents``: one per collection hop that has
    at least one parent row (SQLAlchemy emits nothing for a hop with no parents)."""
    count = 0
    for key, sub in trie.items():
        prop = mapper.relationships[key]
        if prop.uselist and parents:
            count += 1
        children = _distinct(
            child for parent in parents for child in _as_list(getattr(parent, key))
        )
        count += expected_statements(prop.mapper, children, sub)
    return count


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else ([] if value is None else [value])


def _distinct(instances: Any) -> list[Any]:
    return list({id(i): i for i in instances}.values())


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=path_sets())
def test_eager_loads_the_paths_in_the_promised_statements(
    booking_engine: Engine, case: tuple[str, list[str]]
) -> None:
    root_name, paths = case
    mapper = MAPPERS[root_name]
    trie = trie_of(paths)
    stmt = select(mapper.class_).order_by(*mapper.primary_key)

    # The ground truth is lazy loading, N+1 and all: the detector is switched off for it.
    with Session(booking_engine) as lazy, sqlaopt.detect(mode="off"):
        roots = lazy.scalars(stmt).all()
        lazy_result = [snapshot(root, trie) for root in roots]
        promised = 1 + expected_statements(mapper, list(roots), trie)

    # Each example gets its own detector scope: one shared by all examples would count the
    # same root query, run once per example, as a repeated statement.
    with Session(booking_engine) as session, sqlaopt.detect(mode="raise"):
        with sqlaopt.count_queries() as loading:
            roots = session.scalars(stmt.options(*eager(mapper.class_, *paths))).all()
        with sqlaopt.count_queries() as reading:
            assert_loaded(roots, *paths)
            eager_result = [snapshot(root, trie) for root in roots]

    assert reading.count == 0, reading.statements
    assert loading.count == promised, loading.statements
    assert eager_result == lazy_result
