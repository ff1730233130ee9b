"""Loader-option presets (placeholder: being written)."""

from __future__ import annotations

from typing import Any

__all__ = ["Preset", "assert_loaded", "covering_preset", "eager"]


def eager(root: Any, *paths: str) -> tuple[Any, ...]:
    raise NotImplementedError


class Preset:
    def __init__(self, root: str, *paths: str, name: str | None = None, doc: str | None = None):
        raise NotImplementedError


def assert_loaded(instances: Any, *paths: str) -> None:
    raise NotImplementedError


def covering_preset(model: str, path: tuple[str, ...]) -> str | None:
    return None
