"""Where batching is on: the block's settings in a ContextVar, the process default, and the one
``do_orm_execute`` listener, registered only while something turned batching on."""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session

from .._errors import BatchError
from .._while_used import WhileUsed

__all__ = ["DEFAULT_MAX_BATCH", "Settings", "active", "enter", "leave", "set_process_default"]

DEFAULT_MAX_BATCH: Final = 500
"""Keys per IN list: SQLAlchemy's own select-IN loader uses 500."""


@dataclass(frozen=True)
class Settings:
    """Whether batching is on in a block, and how many keys go into one IN list."""

    enabled: bool = True
    max_batch: int = DEFAULT_MAX_BATCH

    @classmethod
    def checked(cls, enabled: object, max_batch: object, *, flag: str = "enabled") -> Settings:
        """Settings from user input; :class:`~sqlaopt.BatchError` names a bad value."""
        if not isinstance(enabled, bool):
            raise BatchError(f"{flag} must be True or False; got {enabled!r}")
        if isinstance(max_batch, bool) or not isinstance(max_batch, int) or max_batch < 1:
            raise BatchError(
                "max_batch must be a positive integer (keys per IN list, default "
                f"{DEFAULT_MAX_BATCH}); got {max_batch!r}"
            )
        return cls(enabled, max_batch)


_block: ContextVar[Settings | None] = ContextVar("sqlaopt_batch", default=None)
_process_default: Settings | None = None
_lock = threading.Lock()
_listener: Callable[[ORMExecuteState], Any] | None = None


def active() -> Settings | None:
    """The settings in force here, or None when batching is off."""
    settings = _block.get()
    if settings is None:
        settings = _process_default
    return settings if settings is not None and settings.enabled else None


def use_listener(listener: Callable[[ORMExecuteState], Any]) -> None:
    """Name the ``do_orm_execute`` listener to register while batching is in use."""
    global _listener
    _listener = listener


def _switch(on: bool) -> None:
    if _listener is not None:
        (event.listen if on else event.remove)(Session, "do_orm_execute", _listener)


_loader = WhileUsed(_switch)
_acquire = _loader.use
_release = _loader.done


def enter(settings: Settings) -> Token[Settings | None]:
    """Apply ``settings`` in the current context (a block, a request, a task)."""
    if settings.enabled:
        _acquire()
    return _block.set(settings)


def leave(token: Token[Settings | None], settings: Settings, previous: Settings | None) -> None:
    """End the block :func:`enter` opened with ``settings``; ``previous`` is restored when the
    block ends in another context than it began (a WSGI body closed by the server)."""
    if settings.enabled:
        _release()
    try:
        _block.reset(token)
    except ValueError:
        _block.set(previous)


def set_process_default(settings: Settings | None) -> None:
    """Turn batching on (or, with None, off) outside blocks, process-wide."""
    global _process_default
    with _lock:
        previous, _process_default = _process_default, settings
    if previous is None and settings is not None:
        _acquire()
    elif previous is not None and settings is None:
        _release()


def current_block() -> Settings | None:
    """The innermost block's settings (None outside blocks)."""
    return _block.get()
