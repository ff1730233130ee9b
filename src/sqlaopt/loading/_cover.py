"""``covering_preset``: which built-in preset would have loaded a lazy relationship.

The N+1 detector calls it while it reports a detection, so it is not on a hot path, and it
must never raise: a failure here would hide the detection it is meant to improve.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

from .._errors import PresetError
from ._paths import Branch
from ._preset import Preset
from ._rename import Renames, builtin_presets, builtin_renames

__all__ = ["covering_preset"]

_LOADS_NOTHING = frozenset({"raise", "noload"})


def covering_preset(
    model: str,
    path: tuple[str, ...],
    *,
    target: object = None,
    rename: Mapping[str, str] | None = None,
) -> str | None:
    """The dotted name of the smallest preset in ``sqlaopt.presets`` that loads ``path``.

    ``model`` is the class name of the root model and ``path`` the relationship keys from it,
    e.g. ``("User", ("appointments", "client"))``. A preset covers the path when its root is
    ``model`` and the keys follow its paths from the root, hop by hop, without reaching a hop
    forced to ``raise`` or ``noload``; it may load more than the path. Of the presets that
    cover it, the one with the fewest paths wins (it loads the least that is not asked
    for); ties go to the one ``sqlaopt.presets`` defines first.

    With ``target`` (anything :meth:`Preset.options` accepts), ``model`` and ``path`` are in
    the target's names: each preset is bound to the target through ``rename`` (or, when it is
    None, the mapping given to :func:`sqlaopt.presets.retarget`), and presets that do not bind
    are skipped. Without ``target`` only the root class and its own relationships can be
    translated (deeper hops' classes are known only from the models).

    Returns e.g. ``"sqlaopt.presets.APPOINTMENT_DETAILS"``, or None when no preset covers
    the path, the path is empty, or anything goes wrong: this function never raises.
    """
    try:
        return _smallest_covering(model, _keys(path), target, rename)
    except Exception:  # must never raise, see the module docstring
        return None


def _keys(path: Iterable[str] | str) -> tuple[str, ...]:
    # A dotted string is accepted too, so a caller's slip still gets an answer.
    return tuple(path.split(".")) if isinstance(path, str) else tuple(path)


def _smallest_covering(
    model: str, keys: tuple[str, ...], target: object, rename: Mapping[str, str] | None
) -> str | None:
    if not keys:
        return None
    from .. import presets  # here, not at the top: sqlaopt.presets imports this package

    # builtin_presets() keeps definition order; __all__ is kept sorted, which would make the
    # tie-break depend on the alphabet rather than on the order the module presents them in.
    covering = []
    for attribute, preset in builtin_presets().items():
        named = _in_target_names(preset, target, rename)
        if named is not None and named[0] == model and _covers(named[1], keys):
            covering.append((len(preset.paths), attribute))
    if not covering:
        return None
    return f"{presets.__name__}.{min(covering, key=lambda c: c[0])[1]}"


def _in_target_names(
    preset: Preset, target: object, rename: Mapping[str, str] | None
) -> tuple[str, tuple[Branch, ...]] | None:
    """The preset's root class name and branches in the target's names; None when it does
    not bind to ``target``."""
    if target is not None:
        try:
            bound = preset._bound(target, rename)
        except PresetError:
            return None
        return bound.root.__name__, bound.branches
    renames = Renames.parse(rename) if rename is not None else builtin_renames(preset)
    top = tuple(
        replace(branch, key=renames.relationship(preset.root, branch.key))
        for branch in preset._branches
    )
    return renames.class_name(preset.root), top


def _covers(branches: tuple[Branch, ...], keys: tuple[str, ...]) -> bool:
    for key in keys:
        branch = next((b for b in branches if b.key == key), None)
        if branch is None or branch.strategy in _LOADS_NOTHING:
            return False
        branches = branch.children
    return True
