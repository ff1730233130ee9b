"""Automatic batch loading: a loop of lazy loads becomes one statement per relationship hop.

See docs/batching.md for the rule, the fall-backs and the opt-outs, and docs/design.md for why
it is built this way.
"""

from ._api import batch, checked_flag, install, uninstall
from ._info import BATCHED_OPTION, Batched

__all__ = ["BATCHED_OPTION", "Batched", "batch", "checked_flag", "install", "uninstall"]
