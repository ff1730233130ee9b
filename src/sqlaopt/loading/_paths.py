"""Loader paths as text: parsing ``"appointments:selectin.client"`` and merging shared prefixes.

Nothing here knows about SQLAlchemy; it only checks the syntax, so a preset with a typo in a
suffix fails when it is declared, before any model is involved.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise

from .._errors import PresetError
from .._names import did_you_mean

__all__ = ["STRATEGIES", "Branch", "Hop", "merge_paths", "parse_path"]

#: The suffixes a hop may force, in the order the error messages list them.
STRATEGIES: tuple[str, ...] = ("joined", "selectin", "subquery", "immediate", "raise", "noload")

# After these nothing is loaded, so a hop following one could never take effect.
_TERMINAL = frozenset({"raise", "noload"})


@dataclass(frozen=True)
class Hop:
    """One relationship step of a path: its key and the strategy forced by a suffix, if any."""

    key: str
    strategy: str | None


@dataclass(frozen=True)
class Branch:
    """A node of the merged path tree: one relationship loaded once, with what hangs below it.

    ``strategy`` is None when no path forced one; the relationship's kind decides later.
    ``location`` is the dotted path from the root, used in error messages.
    """

    key: str
    strategy: str | None
    location: str
    children: tuple[Branch, ...]


def parse_path(path: object) -> tuple[Hop, ...]:
    """Split a dotted path such as ``"appointments:selectin.client"`` into hops.

    Raises PresetError for anything that is not a non-empty dotted string, for an empty hop,
    for an unknown suffix, and for a hop that follows ``raise`` or ``noload``.
    """
    text = _require_text(path)
    hops = tuple(_parse_hop(part, text) for part in text.split("."))
    _reject_hops_after_terminal(hops, text)
    return hops


def merge_paths(paths: Iterable[tuple[Hop, ...]]) -> tuple[Branch, ...]:
    """Merge parsed paths into a tree so that a shared prefix is loaded once.

    A hop named with a suffix in one path and without in another takes the suffix; two
    different suffixes for the same hop raise PresetError. Order of first mention is kept.
    """
    root = _MutableNode(strategy=None)
    for hops in paths:
        node = root
        for depth, hop in enumerate(hops):
            location = ".".join(h.key for h in hops[: depth + 1])
            node = node.child(hop, location)
    return root.freeze(prefix="")


class _MutableNode:
    """Working form of :class:`Branch` while paths are being merged."""

    def __init__(self, strategy: str | None) -> None:
        self.strategy = strategy
        self.children: dict[str, _MutableNode] = {}

    def child(self, hop: Hop, location: str) -> _MutableNode:
        existing = self.children.get(hop.key)
        if existing is None:
            existing = self.children[hop.key] = _MutableNode(hop.strategy)
        elif hop.strategy is not None:
            existing.force(hop.strategy, location)
        return existing

    def force(self, strategy: str, location: str) -> None:
        if self.strategy not in (None, strategy):
            raise PresetError(
                f"conflicting strategies for {location!r}: {self.strategy!r} and {strategy!r};"
                " force a hop's strategy in one path only"
            )
        self.strategy = strategy

    def freeze(self, prefix: str) -> tuple[Branch, ...]:
        branches = []
        for key, node in self.children.items():
            location = f"{prefix}{key}"
            if node.strategy in _TERMINAL and node.children:
                below = ", ".join(repr(f"{location}.{k}") for k in node.children)
                raise PresetError(
                    f"{location!r} is forced to {node.strategy!r}, which loads nothing,"
                    f" so {below} can never be loaded"
                )
            branches.append(
                Branch(key, node.strategy, location, node.freeze(prefix=f"{location}."))
            )
        return tuple(branches)


def _require_text(path: object) -> str:
    if not isinstance(path, str):
        key = getattr(path, "key", None)
        hint = f" (write {key!r})" if isinstance(key, str) else ""
        raise PresetError(
            "loader paths are dotted relationship names such as 'appointments.client',"
            f" got {path!r}{hint}"
        )
    if not path:
        raise PresetError("a loader path cannot be empty")
    return path


def _parse_hop(part: str, path: str) -> Hop:
    key, colon, suffix = part.partition(":")
    if not key:
        raise PresetError(f"empty relationship name in path {path!r}")
    if not colon:
        return Hop(key, None)
    if suffix not in STRATEGIES:
        allowed = ", ".join(STRATEGIES)
        raise PresetError(
            f"unknown strategy suffix {':' + suffix!r} on {key!r} in path {path!r}"
            f"{did_you_mean(suffix, STRATEGIES)}; allowed suffixes: {allowed}"
        )
    return Hop(key, suffix)


def _reject_hops_after_terminal(hops: tuple[Hop, ...], path: str) -> None:
    for hop, following in pairwise(hops):
        if hop.strategy in _TERMINAL:
            raise PresetError(
                f"{hop.key!r} is forced to {hop.strategy!r} in path {path!r}, which loads"
                f" nothing, so {following.key!r} after it can never be loaded"
            )
