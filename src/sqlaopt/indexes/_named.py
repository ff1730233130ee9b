"""A sequence of named entries, indexed by position or by name: specs and their results."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator, Sequence
from typing import Protocol, TypeVar, overload

from .._names import did_you_mean

__all__ = ["NamedSequence"]


class _Named(Protocol):
    @property
    def name(self) -> str: ...


T = TypeVar("T", bound=_Named)


class NamedSequence(Sequence[T]):
    """Entries in spec order; ``result["idx_x"]`` finds one by name, and a miss says which
    names exist and the closest one."""

    __slots__ = ()

    @abstractmethod
    def _items(self) -> tuple[T, ...]:
        """The entries, in order."""

    @property
    def names(self) -> tuple[str, ...]:
        """Entry names, in order."""
        return tuple(item.name for item in self._items())

    @overload
    def __getitem__(self, key: int) -> T: ...
    @overload
    def __getitem__(self, key: str) -> T: ...
    @overload
    def __getitem__(self, key: slice) -> Sequence[T]: ...
    def __getitem__(self, key: int | str | slice) -> T | Sequence[T]:
        if isinstance(key, str):
            for item in self._items():
                if item.name == key:
                    return item
            raise KeyError(f"no entry named {key!r}{did_you_mean(key, self.names)}")
        return self._items()[key]

    def __len__(self) -> int:
        return len(self._items())

    def __iter__(self) -> Iterator[T]:
        return iter(self._items())
