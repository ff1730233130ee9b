"""``covering_preset``: which built-in preset would have loaded a lazy relationship.

The N+1 detector calls it while it reports a detection, so it is not on a hot path, and it
must never raise: a failure here would hide the detection it is meant to improve.
"""

from __future__ import annotations

from collections.abc import Iterable

from .._errors import PresetError
from ._paths import Branch
from ._preset import Preset

__all__ = ["covering_preset"]

_LOADS_NOTHING = frozenset({"raise", "noload"})


def covering_preset(
    model: str, path: tuple[str, ...], *, target: object = None
) -> str | None:
    """The dotted name of the smallest preset in ``sqlaopt.presets`` that loads ``path``.

    ``model`` is the class name of the root model and ``path`` the relationship keys from it,
    e.g. ``("User", ("appointments", "client"))``. A preset covers the path when its root is
    ``model`` and the keys follow its paths from the root, hop by hop, without reaching a hop
    forced to ``raise`` or ``noload``; it may load more than the path. Of the presets that
    cover it, the one with the fewest paths wins (it loads the least that is not asked
    for); ties go to the one ``sqlaopt.presets`` defines first. With ``target`` (anything
    :meth:`Preset.options` accepts), presets that do not bind to those models are skipped.

    Returns e.g. ``"sqlaopt.presets.APPOINTMENT_DETAILS"``, or None when no preset covers
    the path, the path is empty, or anything goes wrong: this function never raises.
    """
    try:
        return _smallest_covering(model, _keys(path), target)
    except Exception:  # must never raise, see the module docstring
        return None


def _keys(path: Iterable[str] | str) -> tuple[str, ...]:
    # A dotted string is accepted too, so a caller's slip still gets an answer.
    return tuple(path.split(".")) if isinstance(path, str) else tuple(path)


def _smallest_covering(model: str, keys: tuple[str, ...], target: object) -> str | None:
    if not keys:
        return None
    from .. import presets  # here, not at the top: sqlaopt.presets imports this package

    public = set(presets.__all__)
    # vars() keeps definition order; __all__ is kept sorted, which would make the tie-break
    # depend on the alphabet rather than on the order the module presents its presets in.
    covering = [
        (len(preset.paths), attribute)
        for attribute, preset in vars(presets).items()
        if attribute in public
        and isinstance(preset, Preset)
        and preset.root == model
        and _covers(preset, keys)
        and _binds(preset, target)
    ]
    if not covering:
        return None
    return f"{presets.__name__}.{min(covering, key=lambda c: c[0])[1]}"


def _covers(preset: Preset, keys: tuple[str, ...]) -> bool:
    branches: tuple[Branch, ...] = preset._branches
    for key in keys:
        branch = next((b for b in branches if b.key == key), None)
        if branch is None or branch.strategy in _LOADS_NOTHING:
            return False
        branches = branch.children
    return True


def _binds(preset: Preset, target: object) -> bool:
    if target is None:
        return True
    try:
        preset.options(target)
    except PresetError:
        return False
    return True
