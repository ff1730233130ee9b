"""Helpers for error messages that name what exists and the closest valid name."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["closest", "did_you_mean"]


def closest(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate most like ``name``, or None when nothing is close."""
    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.5)
    return matches[0] if matches else None


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` when a close candidate exists, else an empty string."""
    match = closest(name, candidates)
    return f" (did you mean {match!r}?)" if match else ""
