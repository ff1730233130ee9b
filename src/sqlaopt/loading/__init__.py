"""Loader-option presets: eager loading by dotted path, with the strategy chosen per hop.

- :func:`eager` turns ``(User, "appointments.client")`` into loader options;
- :class:`Preset` declares such paths once, by class name, and binds them to any model base;
- :func:`assert_loaded` checks in tests that paths were loaded, without emitting SQL;
- :func:`covering_preset` names the built-in preset (``sqlaopt.presets``) that covers a path.
"""

from __future__ import annotations

from ._assert import assert_loaded
from ._cover import covering_preset
from ._eager import eager
from ._preset import Preset

__all__ = ["Preset", "assert_loaded", "covering_preset", "eager"]
