"""Presets for any model base: the ``rename=`` mapping, and re-targeting the built-in presets.

A preset names classes and relationships the way the models it was written for do (the
built-in ones: the booking backend's). ``rename=`` maps those names to the target's, with the
same semantics, keyword and early errors as the index spec's ``rename=``: ``"Appointment"``
renames a mapped class, ``"Appointment.client"`` a relationship of that class, both keys in
the preset's names; a key the preset never uses is an error with "did you mean".

Binding walks the target's mappers hop by hop, so a relationship rename applies to the class
the hop really lands on (``"Appointment.client"`` after ``"User.appointments"`` too).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Mapper

from .._errors import PresetError
from .._names import did_you_mean
from ._paths import Branch
from ._resolve import find_mapped_class, mapper_of, relationship_of

if TYPE_CHECKING:
    from ._preset import Preset

__all__ = ["Bound", "Renames", "bind", "builtin_renames", "retarget"]


@dataclass(frozen=True)
class Renames:
    """A checked ``rename=`` mapping: class renames and ``(class, relationship)`` renames,
    keys in the preset's names, values in the target's."""

    classes: Mapping[str, str] = field(default_factory=dict)
    relationships: Mapping[tuple[str, str], str] = field(default_factory=dict)

    @classmethod
    def parse(cls, rename: Mapping[str, str] | None) -> Renames:
        """Check the mapping's shape (keys ``Class`` or ``Class.relationship``, values
        non-empty names); whether the keys are used is checked when binding."""
        if rename is None:
            return cls()
        if not isinstance(rename, Mapping):
            raise PresetError(
                "rename must be a mapping such as {'Appointment.client': 'customer'}, "
                f"not {rename!r}"
            )
        classes: dict[str, str] = {}
        relationships: dict[tuple[str, str], str] = {}
        for key, value in rename.items():
            parts = key.split(".") if isinstance(key, str) else []
            if not 1 <= len(parts) <= 2 or not all(parts):
                raise PresetError(
                    f"rename key {key!r} must be 'Class' or 'Class.relationship' (the "
                    "preset's names)"
                )
            if not isinstance(value, str) or not value or "." in value:
                raise PresetError(
                    f"rename[{key!r}] must be the one name it has in your models, not {value!r}"
                )
            if len(parts) == 1:
                classes[key] = value
            else:
                relationships[(parts[0], parts[1])] = value
        return cls(classes, relationships)

    @property
    def keys(self) -> frozenset[str]:
        """Every key, as written."""
        pairs = {f"{c}.{r}" for c, r in self.relationships}
        return frozenset(self.classes) | pairs

    def class_name(self, name: str) -> str:
        """The target's name for the preset's class ``name``."""
        return self.classes.get(name, name)

    def preset_class(self, target_name: str) -> str:
        """The preset's name for the target's class ``target_name``."""
        for preset_name, renamed in self.classes.items():
            if renamed == target_name:
                return preset_name
        return target_name

    def relationship(self, preset_class: str, key: str) -> str:
        """The target's name for relationship ``key`` of the preset's class."""
        return self.relationships.get((preset_class, key), key)

    def __bool__(self) -> bool:
        return bool(self.classes or self.relationships)


@dataclass(frozen=True)
class Bound:
    """A preset resolved on the target: the root class and the branches in its names."""

    root: type[Any]
    mapper: Mapper[Any]
    branches: tuple[Branch, ...]


class _Walk:
    """What a bind consulted: the keys used, and every key that the preset could use."""

    def __init__(self, renames: Renames) -> None:
        self.renames = renames
        self.used: set[str] = set()
        self.offered: set[str] = set()

    def class_name(self, preset_name: str) -> str:
        self.offered.add(preset_name)
        if preset_name in self.renames.classes:
            self.used.add(preset_name)
        return self.renames.class_name(preset_name)

    def relationship(self, preset_class: str, key: str) -> str:
        pair = f"{preset_class}.{key}"
        self.offered.add(pair)
        if (preset_class, key) in self.renames.relationships:
            self.used.add(pair)
        return self.renames.relationship(preset_class, key)

    def check_used(self, whose: str, target: object = None) -> None:
        """Every key must be used, or (with ``target``) name something that exists there:
        one mapping may serve several presets, but a key that matches nothing anywhere is
        almost always a typo that would leave the old name in place."""
        for key in sorted(self.renames.keys - self.used):
            if target is not None and _exists(target, key, self.renames):
                continue
            alike = [name for name in self.offered if ("." in name) == ("." in key)]
            raise PresetError(
                f"rename key {key!r} is not a class or relationship {whose} uses"
                f"{did_you_mean(key, alike)}; it uses: {', '.join(sorted(self.offered))}"
            )


def _exists(target: object, key: str, renames: Renames) -> bool:
    """Whether the renamed side of ``key`` is a mapped class, or a relationship of one, in
    ``target``'s registry."""
    preset_class, _, relationship = key.partition(".")
    try:
        found = find_mapped_class(target, renames.class_name(preset_class))
    except PresetError:
        return False
    return not relationship or (
        renames.relationship(preset_class, relationship) in mapper_of(found).relationships
    )


def bind(root: str, branches: tuple[Branch, ...], target: object, renames: Renames) -> Bound:
    """Resolve a preset's root class and branches on ``target`` through ``renames``."""
    walk = _Walk(renames)
    bound = _bind(root, branches, target, walk)
    walk.check_used("this preset", target)
    return bound


def _bind(root: str, branches: tuple[Branch, ...], target: object, walk: _Walk) -> Bound:
    name = walk.class_name(root)
    try:
        root_class = find_mapped_class(target, name)
    except PresetError as error:
        if not str(error).startswith("no mapped class"):
            raise  # two classes of that name: the message says what to do
        raise PresetError(_with_hint(str(error), root, name)) from None
    mapper = mapper_of(root_class)
    return Bound(root_class, mapper, _translate(mapper, root, branches, walk, prefix=""))


def _translate(
    mapper: Mapper[Any], preset_class: str, branches: tuple[Branch, ...], walk: _Walk, prefix: str
) -> tuple[Branch, ...]:
    """The branches with the target's relationship keys. Every sibling is tried before the
    first failure is raised, so that renames further along are still seen as used."""
    translated, failure = [], None
    for branch in branches:
        key = walk.relationship(preset_class, branch.key)
        location = f"{prefix}{key}"
        try:
            prop = relationship_of(mapper, key, location)
        except PresetError as error:
            missing = key not in mapper.relationships  # not a dynamic one, say
            hinted = _with_hint(str(error), f"{preset_class}.{branch.key}", key)
            failure = failure or PresetError(hinted if missing else str(error))
            continue
        child_class = walk.renames.preset_class(prop.mapper.class_.__name__)
        walk.class_name(child_class)
        children = _translate(prop.mapper, child_class, branch.children, walk, f"{location}.")
        translated.append(Branch(key, branch.strategy, location, children))
    if failure is not None:
        raise failure
    return tuple(translated)


def _with_hint(message: str, key: str, name: str) -> str:
    """A binding error, with how ``rename=`` maps the name (or what it mapped it to)."""
    preset_name = key.rsplit(".", 1)[-1]
    if name != preset_name:
        return f"{message} ({preset_name!r} renamed by rename={{{key!r}: {name!r}}})"
    return f"{message}. If yours is named differently, map it: rename={{{key!r}: '...'}}"


# --- the built-in presets, re-targeted once at start-up ---------------------------------------

_retargeted: Renames | None = None


def builtin_presets() -> dict[str, Preset]:
    """``sqlaopt.presets``' presets by name, in the order it defines them."""
    from .. import presets  # here: sqlaopt.presets imports this package
    from ._preset import Preset

    public = set(presets.__all__)
    return {
        name: value
        for name, value in vars(presets).items()
        if name in public and isinstance(value, Preset)
    }


def builtin_renames(preset: Preset) -> Renames:
    """The mapping a preset binds with when none is given: the start-up re-targeting for the
    built-in presets (:func:`retarget`), none for any other preset."""
    if _retargeted is None or not any(p is preset for p in builtin_presets().values()):
        return Renames()
    return _retargeted


def retarget(target: object, *, rename: Mapping[str, str]) -> dict[str, str]:
    """Make every built-in preset bind through ``rename`` from now on.

    ``target`` is your declarative base (or anything :meth:`Preset.options` accepts); each
    built-in preset is bound to it now, so mistakes show at start-up: a key no built-in preset
    uses raises :class:`PresetError` (with "did you mean") and changes nothing. Returns the
    presets that still do not bind to ``target``, name → the error their ``options()`` will
    raise; empty when all of them bind. Call it once, at start-up: calling it again with
    another mapping raises PresetError (the same mapping again is a no-op), so no two parts of
    a program can disagree about what the built-in presets mean.
    """
    global _retargeted
    renames = Renames.parse(rename)
    if _retargeted is not None and _retargeted != renames:
        raise PresetError(
            "the built-in presets were re-targeted already, with "
            f"rename={_as_mapping(_retargeted)!r}; re-target them once, at start-up"
        )
    walk = _Walk(renames)
    failures: dict[str, str] = {}
    for name, preset in builtin_presets().items():
        try:
            _bind(preset.root, preset._branches, target, walk)
        except PresetError as error:
            failures[name] = f"preset {name}: {error}"
    walk.check_used("any built-in preset")
    _retargeted = renames
    return failures


def _as_mapping(renames: Renames) -> dict[str, str]:
    pairs = {f"{c}.{r}": v for (c, r), v in renames.relationships.items()}
    return {**renames.classes, **pairs}


def reset_retarget() -> None:
    """Forget the start-up re-targeting (for tests)."""
    global _retargeted
    _retargeted = None
