"""Pick the writer by the file's suffix and write the file."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Final

from .._errors import ReportError
from .._names import did_you_mean
from . import _html, _json, _sarif
from ._findings import Collected, collect

__all__ = ["SUFFIXES", "check_path", "write", "write_collected"]

_WRITERS: Final[dict[str, Callable[[Collected, str], str]]] = {
    ".json": _json.render,
    ".sarif": _sarif.render,
    ".html": _html.render,
}
SUFFIXES: Final = tuple(_WRITERS)
"""The report formats, by the suffix of the file they are written to."""


def check_path(path: str | os.PathLike[str]) -> Path:
    """``path`` as a Path whose suffix names a format; :class:`ReportError` otherwise."""
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in _WRITERS:
        named = f"suffix {suffix!r}" if suffix else "no suffix"
        raise ReportError(f"{target} has {named}; accepted: {', '.join(SUFFIXES)}"
                          f"{did_you_mean(suffix, SUFFIXES)}")
    return target


def write(source: object, path: str | os.PathLike[str],
          *, root: str | os.PathLike[str] | None = None) -> Path:
    """Write a :class:`~sqlaopt.Report`, or an iterable of :class:`~sqlaopt.Detection`
    objects or of JSON report findings, to ``path`` in the format its suffix names
    (``.json``, ``.sarif`` or ``.html``); missing directories are created.

    File paths in the report are relative to ``root`` (default: the working directory),
    which for SARIF must be the repository's root. Returns the path written.
    """
    target = check_path(path)
    write_collected(collect(source, root), target)
    return target


def write_collected(collected: Collected, path: Path) -> None:
    """Write records already collected (the pytest plugin's, merged across workers)."""
    from .. import __version__  # the package is imported whole before any report is written

    text = _WRITERS[check_path(path).suffix.lower()](collected, __version__)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
