"""Where a statement comes from: the user frames of the current call stack.

Two executions come "from the same place" when the frames outside SQLAlchemy and sqlaopt are
the same code at the same lines. Walking the stack costs about 0.15 µs a frame, so the walk
stops as early as it can: at the frame that opened the scope (the ``with`` line), at sqlaopt's
own scope machinery (decorator, pytest hook, middleware), or after ``MAX_FRAMES`` user frames.
"""

from __future__ import annotations

import os
import sys
import sysconfig
from types import CodeType, FrameType
from typing import Final

import sqlalchemy

__all__ = ["CallSite", "capture", "format_location"]

MAX_FRAMES: Final = 40

# Frame kinds, by the file their code lives in.
_ORM: Final = 0  # SQLAlchemy: never part of a call site
_SCHEMA: Final = 4  # SQLAlchemy's reflection, DDL and dialect introspection: not the app's SQL
_OWN: Final = 1  # sqlaopt's machinery: below user code it is skipped, above it ends the walk
_LIBRARY: Final = 2  # stdlib and installed packages: part of the key, never the location
_APP: Final = 3  # the application


def _package_dir(module_file: str) -> str:
    return os.path.dirname(os.path.abspath(module_file)) + os.sep


_SQLALCHEMY_DIR = _package_dir(sqlalchemy.__file__ or "")
_SQLAOPT_DIR = os.path.dirname(_package_dir(__file__).rstrip(os.sep)) + os.sep
# The reference booking flows are application code from the detector's point of view.
_BOOKING_DIR = _SQLAOPT_DIR + "booking" + os.sep
_SCHEMA_PLACES = tuple(
    _SQLALCHEMY_DIR + p
    for p in ("dialects" + os.sep, os.path.join("engine", "reflection.py"),
              os.path.join("sql", "ddl.py"))
) + ("<sqlalchemy generated cache()",)
_LIBRARY_DIRS = tuple(
    {
        os.path.abspath(p) + os.sep
        for p in (sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib"))
    }
)
_kinds: dict[str, int] = {}


def _classify(filename: str) -> int:
    if filename.startswith(_SCHEMA_PLACES):
        return _SCHEMA
    if filename.startswith(_SQLALCHEMY_DIR) or filename.startswith("<sqlalchemy"):
        return _ORM
    if filename.startswith(_SQLAOPT_DIR) and not filename.startswith(_BOOKING_DIR):
        return _OWN
    if filename.startswith("<frozen") or filename.startswith(_LIBRARY_DIRS):
        return _LIBRARY
    return _APP


def _kind(filename: str) -> int:
    kind = _kinds.get(filename)
    if kind is None:
        kind = _kinds[filename] = _classify(filename)
    return kind


class CallSite:
    """The user part of a call stack: a hashable key and the frame to report."""

    __slots__ = ("code", "function", "key", "lasti", "lineno")

    def __init__(self, key: tuple[int, ...], frame: FrameType | None) -> None:
        self.key = key
        self.code: CodeType | None = None
        self.lineno, self.lasti, self.function = 0, -1, "?"
        if frame is not None:
            self.code, self.lineno, self.lasti = frame.f_code, frame.f_lineno, frame.f_lasti
            self.function = _function_name(frame)

    @property
    def location(self) -> str:
        """``path/to/file.py:LINE in function`` of the reported frame."""
        if self.code is None:
            return "<unknown>"
        return format_location(self.code.co_filename, self.lineno, self.function)


_COMPREHENSIONS = frozenset({"<listcomp>", "<dictcomp>", "<setcomp>", "<genexpr>"})


def _function_name(frame: FrameType) -> str:
    """The function's name; for a comprehension, the function it is written in."""
    name = frame.f_code.co_name
    outer = frame.f_back
    if name in _COMPREHENSIONS and outer is not None and outer.f_code.co_filename == \
            frame.f_code.co_filename:
        return outer.f_code.co_name
    return name


def capture(anchor: FrameType | None, skip: int = 2) -> CallSite | None:
    """The call site of the code running now, up to ``anchor`` (the frame that opened the scope).

    None when the statement comes from SQLAlchemy's own schema work (``create_all``'s
    ``has_table`` checks, reflection): one ``create_all`` runs the same check per table.

    Under asyncio SQLAlchemy runs ORM work in a child greenlet whose stack holds only
    SQLAlchemy frames; the caller waits in the parent greenlet, so the walk continues there.
    """
    key: list[int] = []
    location: FrameType | None = None
    first_user: FrameType | None = None
    frame: FrameType | None = sys._getframe(skip)
    glet = None
    while True:
        while frame is not None:
            kind = _kind(frame.f_code.co_filename)
            if kind == _SCHEMA:
                return None
            if kind == _ORM or (kind == _OWN and not key):
                frame = frame.f_back
                continue
            if kind == _OWN:
                return CallSite(tuple(key), location or first_user)
            key.append(id(frame.f_code))
            key.append(frame.f_lineno)
            if first_user is None:
                first_user = frame
            if location is None and kind == _APP:
                location = frame
            if frame is anchor or len(key) >= 2 * MAX_FRAMES:
                return CallSite(tuple(key), location or first_user)
            frame = frame.f_back
        glet, frame = _parent_frame(glet)
        if frame is None:
            return CallSite(tuple(key), location or first_user)


def _parent_frame(glet: object) -> tuple[object, FrameType | None]:
    greenlet = sys.modules.get("greenlet")
    if greenlet is None:
        return None, None
    current = greenlet.getcurrent() if glet is None else glet
    parent = getattr(current, "parent", None)
    if parent is None:
        return None, None
    return parent, parent.gr_frame


def format_location(filename: str, lineno: int, function: str) -> str:
    """``path/to/file.py:LINE in function``, the path relative to the working directory."""
    try:
        relative = os.path.relpath(filename)
    except ValueError:  # another drive on Windows
        relative = filename
    shown = filename if relative.startswith("..") else relative
    return f"{shown}:{lineno} in {function}"
