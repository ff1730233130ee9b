"""``eager()``: loader options from dotted paths, with the strategy chosen per relationship."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import (
    Mapper,
    RelationshipProperty,
    immediateload,
    joinedload,
    noload,
    raiseload,
    selectinload,
    subqueryload,
)
from sqlalchemy.orm.interfaces import LoaderOption

from ._paths import Branch, merge_paths, parse_path
from ._resolve import mapper_of, relationship_of

if TYPE_CHECKING:
    # What every loader function returns and ``Load.options()`` accepts. Private, so it is
    # only named for the type checker and never imported at run time.
    from sqlalchemy.orm.strategy_options import _AbstractLoad

__all__ = ["PlannedHop", "build_options", "eager", "per_row_hops", "plan", "statement_count"]

_LOADERS: dict[str, Callable[[Any], _AbstractLoad]] = {
    "joined": joinedload,
    "selectin": selectinload,
    "subquery": subqueryload,
    "immediate": immediateload,
    "raise": raiseload,
    "noload": noload,
}

# Strategies that load through one extra statement per hop (per 500 parents for select-IN).
_ONE_STATEMENT_PER_HOP = frozenset({"selectin", "subquery"})


def eager(root: Any, *paths: str) -> tuple[LoaderOption, ...]:
    """Loader options that load ``paths`` from ``root``, for ``select(...).options(*...)``.

    ``root`` is a mapped class (or an ``aliased()`` one); each path is a dotted relationship
    path such as ``"appointments.client"``. Each hop gets ``joinedload`` when the relationship
    is scalar (many-to-one, one-to-one) and ``selectinload`` when it is a collection
    (one-to-many, many-to-many); a suffix forces another strategy: ``"appointments:subquery"``
    (allowed: joined, selectin, subquery, immediate, raise, noload). Paths sharing a prefix
    are merged, so every relationship appears in one option only.

    Raises :class:`sqlaopt.PresetError` here, never at query time, when ``root`` is not
    mapped, a path is malformed (an empty hop, an unknown suffix, a hop after ``raise`` or
    ``noload``, two different suffixes for one hop) or a hop is not a relationship of its
    model that can be eager loaded (``lazy="dynamic"`` and ``"write_only"`` cannot). With no
    paths, returns ``()``.
    """
    mapper = mapper_of(root)
    return build_options(root, mapper, merge_paths(parse_path(p) for p in paths))


def build_options(
    entity: Any, mapper: Mapper[Any], branches: tuple[Branch, ...]
) -> tuple[LoaderOption, ...]:
    """One loader option per top-level branch, each carrying its sub-branches."""
    return tuple(_option(entity, mapper, branch) for branch in branches)


@dataclass(frozen=True)
class PlannedHop:
    """A resolved hop: where it is, the strategy it gets and whether it is a collection."""

    location: str
    strategy: str
    collection: bool


def plan(mapper: Mapper[Any], branches: tuple[Branch, ...]) -> tuple[PlannedHop, ...]:
    """Every hop of ``branches`` resolved on ``mapper``, depth first, in declaration order."""
    planned: list[PlannedHop] = []
    for branch in branches:
        prop = relationship_of(mapper, branch.key, branch.location)
        planned.append(PlannedHop(branch.location, _strategy(branch, prop), bool(prop.uselist)))
        planned.extend(plan(prop.mapper, branch.children))
    return tuple(planned)


def statement_count(hops: tuple[PlannedHop, ...]) -> int:
    """Statements a load runs with these hops: one, plus one per select-IN or subquery hop.

    Exact when every such hop has between 1 and 500 parent rows: select-IN sends at most 500
    keys per statement, and a hop with no parent rows emits nothing. ``immediate`` hops are
    not counted: they cost one statement per parent row (see :func:`per_row_hops`).
    """
    return 1 + sum(1 for hop in hops if hop.strategy in _ONE_STATEMENT_PER_HOP)


def per_row_hops(hops: tuple[PlannedHop, ...]) -> int:
    """How many hops load with one statement per parent row (``immediate``)."""
    return sum(1 for hop in hops if hop.strategy == "immediate")


def _option(entity: Any, mapper: Mapper[Any], branch: Branch) -> _AbstractLoad:
    prop = relationship_of(mapper, branch.key, branch.location)
    option = _LOADERS[_strategy(branch, prop)](getattr(entity, branch.key))
    if branch.children:
        target = prop.mapper
        option = option.options(*(_option(target.class_, target, b) for b in branch.children))
    return option


def _strategy(branch: Branch, prop: RelationshipProperty[Any]) -> str:
    """The forced strategy, else selectin for collections and joined for scalars.

    Joined loading of a collection repeats every parent column once per child row and needs
    ``Result.unique()``; select-IN costs one statement and returns each row once.
    """
    if branch.strategy is not None:
        return branch.strategy
    return "selectin" if prop.uselist else "joined"
