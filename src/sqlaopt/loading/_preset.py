"""``Preset``: a named bundle of loader paths, declared by class name and bound to models later."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from sqlalchemy.orm.interfaces import LoaderOption

from .._errors import PresetError
from ._eager import PlannedHop, build_options, per_row_hops, plan, statement_count
from ._paths import Branch, merge_paths, parse_path
from ._rename import Bound, Renames, bind, builtin_renames

__all__ = ["Preset"]


class Preset:
    """Loader paths for one root model, declared once and applied to any model base by name.

    ``Preset("User", "appointments.client", name=..., doc=...)`` takes the root as a class
    name, so it can live in a library that does not import your models, and the same paths
    (with the same optional suffixes) as :func:`sqlaopt.eager`. The paths' syntax is checked
    here; names are checked against the models by :meth:`options`.

    Presets are immutable and hashable (equal when root, paths, name and doc are equal).
    ``repr()`` is the constructor call without ``doc``: root, paths with any forced suffixes,
    and name; it does not depend on which models are loaded. A hop without a suffix gets the
    rule's strategy (``joined`` for a scalar, ``selectin`` for a collection) from the models it
    is bound to: :meth:`explain` shows them, with the statement count. ``a + b`` combines two
    presets of the same root.
    """

    __slots__ = ("_branches", "_doc", "_name", "_paths", "_root")

    _root: str
    _paths: tuple[str, ...]
    _name: str | None
    _doc: str | None
    _branches: tuple[Branch, ...]

    def __init__(
        self, root: str, *paths: str, name: str | None = None, doc: str | None = None
    ) -> None:
        if not isinstance(root, str) or not root:
            raise PresetError(f"a preset's root is a class name such as 'User', got {root!r}")
        if not paths:
            raise PresetError(f"preset {name or root!r} has no paths")
        unique_paths = tuple(dict.fromkeys(paths))
        # Parsing and merging here makes a bad suffix or a conflict fail at declaration.
        branches = merge_paths(parse_path(p) for p in unique_paths)
        for attribute, value in (
            ("_root", root), ("_paths", unique_paths), ("_name", name), ("_doc", doc),
            ("_branches", branches),
        ):
            object.__setattr__(self, attribute, value)

    @property
    def root(self) -> str:
        """Class name of the model the paths start from."""
        return self._root

    @property
    def paths(self) -> tuple[str, ...]:
        """The dotted paths, as declared (duplicates removed)."""
        return self._paths

    @property
    def name(self) -> str | None:
        """Name shown in ``repr()``, ``explain()`` and error messages."""
        return self._name

    @property
    def doc(self) -> str | None:
        """What the preset is for."""
        return self._doc

    def options(
        self, target: Any, *, rename: Mapping[str, str] | None = None
    ) -> tuple[LoaderOption, ...]:
        """The loader options for ``select(...).options(*...)``, bound to ``target``'s models.

        ``target`` is a mapped class, a declarative base (any class with a ``registry``) or a
        ``sqlalchemy.orm.registry``; the root is the class of that name in its registry.
        ``rename`` maps the preset's names to yours, as the index spec's ``rename=`` does:
        ``{"Appointment": "Booking", "Appointment.client": "customer"}`` (a class, or a
        relationship of a class, in the preset's names). Without it, a built-in preset uses
        the mapping given to :func:`sqlaopt.presets.retarget`, if any.

        Raises :class:`sqlaopt.PresetError` when the root class is missing, a hop is not a
        relationship of its model, or a ``rename`` key is not a name the preset uses.
        """
        with self._naming_errors():
            bound = self._bound(target, rename)
            return build_options(bound.root, bound.mapper, bound.branches)

    def explain(self, target: Any, *, rename: Mapping[str, str] | None = None) -> str:
        """What the preset does on ``target``'s models: each hop's strategy, and the count of
        statements a load runs (see :func:`sqlaopt.eager` for the rule). Same arguments and
        errors as :meth:`options`; the hops are shown in ``target``'s names."""
        with self._naming_errors():
            bound = self._bound(target, rename)
            hops = plan(bound.mapper, bound.branches)
        width = max(len(hop.location) for hop in hops)
        headline = self._headline(bound.root.__name__, hops)
        return "\n".join([headline, *(_hop_line(hop, width) for hop in hops)])

    def _bound(self, target: Any, rename: Mapping[str, str] | None) -> Bound:
        """The preset resolved on ``target`` (root class, mapper, branches in ``target``'s
        names), without building options; errors as :meth:`options` but unprefixed."""
        renames = Renames.parse(rename) if rename is not None else builtin_renames(self)
        return bind(self._root, self._branches, target, renames)

    def _headline(self, root: str, hops: tuple[PlannedHop, ...]) -> str:
        count, per_row = statement_count(hops), per_row_hops(hops)
        plural = "s" if count > 1 else ""
        extra = f" + {per_row} per parent row (immediate)" if per_row else ""
        return f"{self._name or 'Preset'} on {root}: {count} statement{plural}{extra}"

    @contextmanager
    def _naming_errors(self) -> Iterator[None]:
        """Prefix a PresetError with the preset it came from: binding usually happens far
        from the declaration, and ``Appointment has no relationship 'payment'`` alone does
        not say which bundle asked for it."""
        try:
            yield
        except PresetError as error:
            label = f"preset {self._name}" if self._name else repr(self)
            raise PresetError(f"{label}: {error}") from None

    def __add__(self, other: Preset) -> Preset:
        """A preset with both presets' paths (this one's first), named ``"A + B"`` when both
        have names. Raises PresetError when the roots differ or a hop would get two forced
        strategies."""
        if not isinstance(other, Preset):
            return NotImplemented
        if other._root != self._root:
            raise PresetError(
                f"cannot combine a preset of {self._root} with one of {other._root}:"
                " both must start from the same class"
            )
        name = f"{self._name} + {other._name}" if self._name and other._name else None
        return Preset(self._root, *self._paths, *other._paths, name=name)

    def _key(self) -> tuple[str, tuple[str, ...], str | None, str | None]:
        return (self._root, self._paths, self._name, self._doc)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Preset):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        arguments = [repr(self._root), *map(repr, self._paths)]
        if self._name is not None:
            arguments.append(f"name={self._name!r}")
        return f"Preset({', '.join(arguments)})"

    def __reduce__(self) -> tuple[Any, ...]:
        # The default reduction restores slots with setattr, which immutability forbids.
        return (_rebuild, (self._root, self._paths, self._name, self._doc))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Preset is immutable; cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Preset is immutable; cannot delete {name!r}")


def _hop_line(hop: PlannedHop, width: int) -> str:
    kind = "collection" if hop.collection else "scalar"
    return f"  {hop.location:<{width}}  {hop.strategy + 'load':<13} ({kind})"


def _rebuild(root: str, paths: tuple[str, ...], name: str | None, doc: str | None) -> Preset:
    return Preset(root, *paths, name=name, doc=doc)
