"""Helpers for error messages that name what exists and the closest valid name.

One rule for every "did you mean" sqlaopt prints. A candidate is close to the name when

* they are equal ignoring case (``Day`` → ``day``);
* their similarity (``difflib``'s ratio, case-insensitive) is at least :data:`CUTOFF`: typos,
  a letter missing or doubled, a plural (``paymnets`` → ``payments``, ``weak`` → ``week``);
* or one is a prefix of the other and at least half its length, at least four characters:
  an abbreviated or extended name (``services`` → ``services_offered``).

A looser ratio proposes names that merely share letters: at 0.5 (difflib's default
neighbourhood) ``clients`` got ``payments`` (0.53) and a missing ``end_time`` got
``start_time`` (0.56); mapping one to the other is wrong, so a wrong hint is worse than none.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["CUTOFF", "closest", "did_you_mean"]

#: The least similarity ratio for a suggestion (``weak``/``week`` is exactly 0.75).
CUTOFF = 0.75
_MIN_PREFIX = 4


def closest(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate most like ``name`` by the module's rule, or None when nothing is close."""
    options = [c for c in dict.fromkeys(candidates) if c != name]
    lowered = name.lower()
    scored = [(_score(lowered, c.lower()), c) for c in options]
    best = max(scored, key=lambda pair: pair[0], default=(0.0, None))
    return best[1] if best[0] > 0 else None


def _score(name: str, candidate: str) -> float:
    """2 for a case-insensitive match, else the ratio if it is close by the rule, else 0."""
    if name == candidate:
        return 2.0
    ratio = difflib.SequenceMatcher(None, name, candidate).ratio()
    if ratio >= CUTOFF:
        return ratio
    shorter, longer = sorted((name, candidate), key=len)
    extends = longer.startswith(shorter) and 2 * len(shorter) >= len(longer)
    return ratio if extends and len(shorter) >= _MIN_PREFIX else 0.0


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` when a close candidate exists, else an empty string."""
    match = closest(name, candidates)
    return f" (did you mean {match!r}?)" if match else ""
