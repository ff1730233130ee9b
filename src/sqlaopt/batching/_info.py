"""What a batch statement tells the rest of sqlaopt (the N+1 detector) about itself."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

__all__ = ["BATCHED_OPTION", "KEYS_PARAMETER", "Batched"]

BATCHED_OPTION: Final = "_sqlaopt_batched"
"""Execution option carried by every batch statement; its value is a :class:`Batched`."""
KEYS_PARAMETER: Final = "sqlaopt_batch_keys"
"""The bound parameter holding a batch statement's IN list."""


@dataclass(frozen=True, eq=False)
class Batched:
    """One batch statement: the load it replaces and how many instances it serves.

    Lives only as long as the statement runs (execution options are not cached).
    """

    state: Any
    """The ``InstanceState`` whose lazy or column load triggered the batch."""
    served: int
    """Instances this statement loads for (the triggering one included)."""
    column: bool
    """True for a batch of expired/deferred column loads, False for a relationship."""
