"""The adapters: what each mode does with a detection (raise, warn, log), safely.

In every mode but ``raise`` nothing raised here reaches the application: not sqlaopt's own
errors, not a logging filter's, handler's, formatter's or record factory's, not a warnings
filter's, not a user ``__repr__``'s. Log mode is aggregated process-wide, so a hot endpoint with
one N+1 writes one record when it is first seen and then one summary per window, not one record
per request.
"""

from __future__ import annotations

import atexit
import logging
import sys
import threading
import time
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from typing import Final

from .._errors import NPlusOneError, NPlusOneWarning
from ._report import Detection

__all__ = [
    "DEFAULT_LOG_WINDOW",
    "emit",
    "flush_log_summaries",
    "internal_error",
    "logger",
    "set_log_window",
]

logger = logging.getLogger("sqlaopt.nplusone")
_internal = logging.getLogger("sqlaopt")
_reported_errors: set[tuple[str, str]] = set()
DEFAULT_LOG_WINDOW: Final = 60.0
_MAX_AGGREGATES: Final = 10_000
_MAX_REPORTED_ERRORS: Final = 100


def emit(detection: Detection, mode: str) -> None:
    """Act on a detection according to ``mode`` (``record`` and ``off`` do nothing).

    Only ``raise`` mode raises (that is its job); the other modes never do.
    """
    if mode == "raise":
        raise NPlusOneError([detection])
    try:
        if mode == "warn":
            _warn(detection)
        elif mode == "log":
            _aggregator.occurred(detection)
    except Exception as error:
        internal_error(error)


def _warn(detection: Detection) -> None:
    # Point the warning at the loop's line, not at sqlaopt.
    filename, _, rest = detection.location.rpartition(":")
    lineno = int(rest.split(" ", 1)[0]) if rest[:1].isdigit() else 0
    warnings.warn_explicit(str(detection), NPlusOneWarning, filename or "<unknown>", lineno,
                           module="sqlaopt")


# ---------------------------------------------------------------- log aggregation


@dataclass
class _Aggregate:
    started: float
    """When the current window began (the first record of the window was written then)."""
    repeats: int = 0
    scopes: int = 0
    max_count: int = 0
    last: Detection | None = None


class _Aggregator:
    """Per distinct N+1 (kind, target, location, loop): the first occurrence is logged at once;
    later ones within ``window`` seconds are counted, and written as one summary record when
    the window is over (at the next occurrence of any N+1, at :func:`sqlaopt.uninstall`, or at
    exit). Bounded: at most ``_MAX_AGGREGATES`` distinct N+1s are tracked."""

    def __init__(self) -> None:
        self.window = DEFAULT_LOG_WINDOW
        self.entries: OrderedDict[tuple[object, ...], _Aggregate] = OrderedDict()
        self.lock = threading.Lock()

    def occurred(self, detection: Detection) -> None:
        key = (detection.kind, detection.target, detection.location, detection.loop)
        now = time.monotonic()
        with self.lock:
            due = self._due(now)
            entry = self.entries.get(key)
            first = entry is None
            if first:
                entry = self.entries[key] = _Aggregate(started=now)
                if len(self.entries) > _MAX_AGGREGATES:
                    due.append(self.entries.popitem(last=False)[1])
            else:
                assert entry is not None
                entry.repeats += detection.count
                entry.scopes += 1
                entry.max_count = max(entry.max_count, detection.count)
                entry.last = detection
        for summary in due:
            _log_summary(summary)
        if first:
            _log(detection, "%s", str(detection))

    def _due(self, now: float) -> list[_Aggregate]:
        """Entries whose window ended: taken out (with repeats) or restarted (without)."""
        due = []
        for key in list(self.entries):
            entry = self.entries[key]
            if now - entry.started < self.window:
                break  # ordered by start: the rest are younger
            del self.entries[key]
            if entry.scopes:
                due.append(entry)
        return due

    def flush(self) -> None:
        with self.lock:
            due = [e for e in self.entries.values() if e.scopes]
            self.entries.clear()
        for summary in due:
            _log_summary(summary)


_aggregator = _Aggregator()
atexit.register(lambda: flush_log_summaries())


def set_log_window(seconds: float) -> None:
    """How long repeats of one N+1 are aggregated before a summary record is written."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
        raise ValueError(f"log_window must be a number of seconds >= 0; got {seconds!r}")
    _aggregator.window = float(seconds)


def flush_log_summaries() -> None:
    """Write the pending summary records now (``uninstall()`` and interpreter exit do)."""
    try:
        _aggregator.flush()
    except Exception as error:
        internal_error(error)


def _log_summary(entry: _Aggregate) -> None:
    detection = entry.last
    if detection is None:
        return
    _log(
        detection,
        "%s seen %s more times in %s %s, max count %s (in the last %.0f s); %s",
        f"N+1 {detection.kind}: {detection.target} at {detection.location}",
        f"{entry.repeats:,}", f"{entry.scopes:,}",
        ("request" if detection.context else "scope") + ("" if entry.scopes == 1 else "s"),
        entry.max_count, time.monotonic() - entry.started, f"fix: {detection.suggestion}",
        summary={"repeats": entry.repeats, "scopes": entry.scopes, "max_count": entry.max_count},
    )


def _log(detection: Detection, message: str, *args: object,
         summary: dict[str, int] | None = None) -> None:
    if logger.disabled:
        _notice_disabled_logger()
        return
    fields = detection.as_dict()
    if summary is not None:
        fields["summary"] = summary
    # One mapping under one name: cannot collide with LogRecord attributes or with fields
    # that record factories and filters add (``context``, ``kind``, ...).
    logger.warning(message, *args, extra={"sqlaopt": fields})


_noticed_disabled = False


def _notice_disabled_logger() -> None:
    """``logging.config.fileConfig()`` (e.g. Alembic's env.py) disables loggers created before
    it unless ``disable_existing_loggers=False``: say so once, where it cannot be missed."""
    global _noticed_disabled
    if _noticed_disabled:
        return
    _noticed_disabled = True
    sys.stderr.write(
        "sqlaopt: the 'sqlaopt.nplusone' logger is disabled, so N+1 reports are not written. "
        "A logging.config.fileConfig() or dictConfig() call (Alembic's env.py has one) "
        "disabled it: pass disable_existing_loggers=False to it.\n"
    )


def internal_error(error: BaseException) -> None:
    """Log a detector failure once per kind of failure; never raise into the application."""
    try:
        signature = (type(error).__name__, _safe_text(error)[:200])
        if signature in _reported_errors or len(_reported_errors) >= _MAX_REPORTED_ERRORS:
            return
        _reported_errors.add(signature)
        _internal.error("sqlaopt detector error (detection goes on): %s: %s", *signature,
                        exc_info=error)
    except Exception:  # the logging set-up itself fails: nothing more can be done safely
        pass


def _safe_text(error: BaseException) -> str:
    try:
        return str(error)
    except Exception:
        return f"<{type(error).__name__} with an unprintable message>"
