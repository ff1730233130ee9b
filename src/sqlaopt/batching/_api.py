"""``sqlaopt.batch()``: turn batch loading on (or off) for a block, a function or a process."""

from __future__ import annotations

from collections.abc import Callable
from contextvars import Token
from types import TracebackType
from typing import Any, TypeVar

from .._decorate import each_call_inside
from . import _hook  # noqa: F401  (registers the listener with _settings)
from ._settings import DEFAULT_MAX_BATCH, Settings, current_block, enter, leave
from ._settings import set_process_default as _set_process_default

__all__ = ["batch", "checked_flag", "install", "uninstall"]

F = TypeVar("F", bound=Callable[..., Any])


class batch:
    """Batch lazy loads inside a block: a context manager, or a decorator of sync and async
    functions (each call runs in its own block).

    When code lazily loads a relationship (or an expired or deferred column) of an instance,
    the same attribute is loaded for every peer of that instance (the instances the same
    statement loaded into the Session) in one statement per ``max_batch`` keys. See
    docs/batching.md for the rule and its fall-backs.

    :param max_batch: keys per ``IN`` list (default 500, as SQLAlchemy's select-IN loading).
    :param enabled: ``False`` turns batching off inside the block (e.g. under
        ``install(batch=True)`` or a middleware with ``batch=True``).
    """

    def __init__(self, *, max_batch: int = DEFAULT_MAX_BATCH, enabled: bool = True) -> None:
        self.settings = Settings.checked(enabled, max_batch)
        self._open: list[tuple[Token[Settings | None], Settings | None]] = []

    def __enter__(self) -> None:
        previous = current_block()
        self._open.append((enter(self.settings), previous))

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        token, previous = self._open.pop()
        leave(token, self.settings, previous)

    def __call__(self, function: F) -> F:
        settings = self.settings
        return each_call_inside(function, "sqlaopt.batch(...)", lambda: enter(settings),
                                lambda token: leave(token, settings, None))

    def __repr__(self) -> str:
        return (f"sqlaopt.batch(max_batch={self.settings.max_batch}, "
                f"enabled={self.settings.enabled})")


def install(enabled: object = True, *, max_batch: int = DEFAULT_MAX_BATCH,
            flag: str = "enabled") -> None:
    """Batch lazy loads process-wide, outside blocks (``install(False)``: stop). What
    ``sqlaopt.install(batch=True)`` calls; ``flag`` names the argument in error messages.
    Calling it again replaces the setting."""
    settings = Settings.checked(enabled, max_batch, flag=flag)
    _set_process_default(settings if settings.enabled else None)


def checked_flag(value: object, name: str) -> bool:
    """``value`` if it is a bool, else :class:`~sqlaopt.BatchError` naming ``name``."""
    return Settings.checked(value, DEFAULT_MAX_BATCH, flag=name).enabled


def uninstall() -> None:
    """Undo :func:`install`; idempotent. Blocks keep working."""
    _set_process_default(None)
