"""Finding mapped classes and relationships by name, with errors that say what does exist."""

from __future__ import annotations

from typing import Any

from sqlalchemy import inspect
from sqlalchemy.orm import ColumnProperty, Mapper, RelationshipProperty, registry

from .._errors import PresetError
from .._names import did_you_mean

__all__ = ["find_mapped_class", "mapper_of", "relationship_of"]

_QUERY_ONLY = frozenset({"dynamic", "write_only"})


def mapper_of(entity: object) -> Mapper[Any]:
    """The mapper behind a mapped class or an ``aliased()`` class; PresetError otherwise."""
    info = inspect(entity, raiseerr=False)
    mapper = getattr(info, "mapper", None)
    if not isinstance(mapper, Mapper):
        raise PresetError(f"expected a mapped class such as User, got {entity!r}")
    return mapper


def find_mapped_class(target: object, name: str) -> type[Any]:
    """The class called ``name`` in the registry of ``target``.

    ``target`` is a mapped class, a declarative base (any class with a ``registry``) or a
    ``sqlalchemy.orm.registry``. A mapped class that is itself called ``name`` is returned as
    is, which also settles the case of two classes of that name in one registry.
    """
    if isinstance(target, type) and target.__name__ == name and _is_mapped(target):
        return target
    reg = _registry_of(target)
    matches = [m.class_ for m in reg.mappers if m.class_.__name__ == name]
    if len(matches) == 1:
        return matches[0]
    if matches:
        qualified = ", ".join(sorted(f"{c.__module__}.{c.__qualname__}" for c in matches))
        raise PresetError(
            f"{name!r} names {len(matches)} mapped classes in {_describe(target)}:"
            f" {qualified}; pass the class itself as the target"
        )
    names = sorted({m.class_.__name__ for m in reg.mappers})
    raise PresetError(
        f"no mapped class named {name!r} in {_describe(target)}"
        f"{did_you_mean(name, names)}; mapped classes: {', '.join(names) or 'none'}"
    )


def relationship_of(mapper: Mapper[Any], key: str, location: str) -> RelationshipProperty[Any]:
    """The relationship ``key`` of ``mapper``; PresetError naming what exists otherwise.

    ``location`` is the dotted path up to and including ``key``, shown in the message.
    """
    relationships = mapper.relationships
    if key in relationships:
        return _require_loadable(relationships[key], location)
    model = mapper.class_.__name__
    existing = sorted(relationships.keys())
    what = _non_relationship(mapper, key)
    problem = (
        f"{key!r} is {what} of {model}, not a relationship"
        if what
        else f"{model} has no relationship {key!r}"
    )
    where = f" in path {location!r}" if location != key else ""
    raise PresetError(
        f"{problem}{where}{did_you_mean(key, existing)};"
        f" relationships of {model}: {', '.join(existing) or 'none'}"
    )


def _require_loadable(
    prop: RelationshipProperty[Any], location: str
) -> RelationshipProperty[Any]:
    # These never hold their objects in the instance, so SQLAlchemy would reject any loader
    # option on them, but only when the query runs.
    if prop.lazy in _QUERY_ONLY:
        raise PresetError(
            f"{prop.key!r} of {prop.parent.class_.__name__} is a lazy={prop.lazy!r}"
            f" relationship (in path {location!r}): its objects are never loaded into the"
            " instance, so it cannot be eager loaded; query it instead"
        )
    return prop


def _non_relationship(mapper: Mapper[Any], key: str) -> str | None:
    """How to call a mapped attribute that is not a relationship, or None if none exists."""
    prop = mapper.attrs.get(key)
    if isinstance(prop, ColumnProperty):
        return "a column"
    if prop is not None:
        return f"a {type(prop).__name__}"
    return None


def _registry_of(target: object) -> registry:
    if isinstance(target, registry):
        return target
    reg = getattr(target, "registry", None)
    if isinstance(reg, registry):
        return reg
    raise PresetError(
        "a preset binds to a mapped class, a declarative base or a sqlalchemy.orm.registry,"
        f" got {target!r}"
    )


def _is_mapped(cls: type[Any]) -> bool:
    return isinstance(inspect(cls, raiseerr=False), Mapper)


def _describe(target: object) -> str:
    if isinstance(target, registry):
        return "the given registry"
    return f"the registry of {target.__name__ if isinstance(target, type) else repr(target)}"

