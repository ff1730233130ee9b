"""Which indexes a statement's plan uses (placeholder: being written)."""

from __future__ import annotations

from typing import Any

__all__ = ["assert_uses_index", "indexes_used"]


def indexes_used(bind: Any, statement: Any) -> set[str]:
    raise NotImplementedError


def assert_uses_index(bind: Any, statement: Any, name: str) -> None:
    raise NotImplementedError
