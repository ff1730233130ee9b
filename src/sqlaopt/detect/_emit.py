"""The adapters: what each mode does with a detection (raise, warn, log)."""

from __future__ import annotations

import logging
import warnings

from .._errors import NPlusOneError, NPlusOneWarning
from ._report import Detection

__all__ = ["emit", "internal_error", "logger"]

logger = logging.getLogger("sqlaopt.nplusone")
_internal = logging.getLogger("sqlaopt")
_reported_errors: set[tuple[str, str]] = set()


def emit(detection: Detection, mode: str) -> None:
    """Act on a detection according to ``mode`` (``record`` and ``off`` do nothing)."""
    if mode == "raise":
        raise NPlusOneError([detection])
    if mode == "warn":
        _warn(detection)
    elif mode == "log":
        logger.warning("%s", detection, extra=detection.as_dict())


def _warn(detection: Detection) -> None:
    # Point the warning at the loop's line, not at sqlaopt.
    filename, _, rest = detection.location.rpartition(":")
    lineno = int(rest.split(" ", 1)[0]) if rest[:1].isdigit() else 0
    warnings.warn_explicit(str(detection), NPlusOneWarning, filename or "<unknown>", lineno,
                           module="sqlaopt")


def internal_error(error: Exception) -> None:
    """Log a detector failure once per kind of failure; never raise into the application."""
    signature = (type(error).__name__, str(error)[:200])
    if signature in _reported_errors:
        return
    _reported_errors.add(signature)
    _internal.error("sqlaopt detector error (detection goes on): %r", error, exc_info=error)
