"""Where a statement comes from: the user frames of the current call stack.

Two executions come "from the same place" when the frames outside SQLAlchemy and sqlaopt are
the same code at the same lines. Walking the stack costs about 0.15 µs a frame, so the walk
stops as early as it can: at the frame that opened the scope (the ``with`` line), at sqlaopt's
own scope machinery (decorator, pytest hook, middleware), or after ``MAX_FRAMES`` user frames.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import sys
import sysconfig
from types import CodeType, FrameType
from typing import Final

import sqlalchemy

__all__ = ["CallSite", "LastSite", "Site", "capture", "format_location"]

MAX_FRAMES: Final = 32

# Frame kinds, by the file their code lives in.
_ORM: Final = 0  # SQLAlchemy: never part of a call site
_OWN: Final = 1  # sqlaopt's machinery: below user code it is skipped, above it ends the walk
_SCHEMA: Final = 2  # SQLAlchemy's reflection, DDL and dialect introspection: not the app's SQL
_LIBRARY: Final = 3  # stdlib and installed packages: part of the key, never the location
_APP: Final = 4  # the application (kinds from _LIBRARY up are "user" frames)


def _package_dir(module_file: str) -> str:
    return os.path.dirname(os.path.abspath(module_file)) + os.sep


_SQLALCHEMY_DIR = _package_dir(sqlalchemy.__file__ or "")
_SQLAOPT_DIR = os.path.dirname(_package_dir(__file__).rstrip(os.sep)) + os.sep
# The reference booking flows are application code from the detector's point of view.
_BOOKING_DIR = _SQLAOPT_DIR + "booking" + os.sep
def _installed_package_dir(name: str) -> str | None:
    """Where package ``name`` is installed, without importing it."""
    spec = importlib.util.find_spec(name)
    origin = spec.origin if spec is not None else None
    return _package_dir(origin) if origin else None


_SCHEMA_PLACES = tuple(
    place
    for place in (
        *(_SQLALCHEMY_DIR + p for p in ("dialects" + os.sep,
                                         os.path.join("engine", "reflection.py"),
                                         os.path.join("sql", "ddl.py"))),
        "<sqlalchemy generated cache()",
        _installed_package_dir("alembic"),  # migrations and autogenerate: schema work too
    )
    if place
)
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
    """The user part of a call stack: a hashable key and the frame to report.

    The key holds (code id, instruction offset) pairs: the same code at the same instruction
    is the same place, and ``f_lasti`` is a plain int where ``f_lineno`` is computed from the
    line table on every read. Line numbers are worked out only when a detection is reported.
    """

    __slots__ = ("code", "function", "key", "lasti")

    def __init__(self, key: tuple[int, ...], frame: FrameType | None) -> None:
        self.key = key
        self.code: CodeType | None = None
        self.lasti, self.function = -1, "?"
        if frame is not None:
            self.code, self.lasti = frame.f_code, frame.f_lasti
            self.function = _function_name(frame)

    @property
    def lineno(self) -> int:
        """The line of the reported frame's current instruction."""
        if self.code is None:
            return 0
        for start, end, line in self.code.co_lines():
            if start <= self.lasti < end and line is not None:
                return line
        return self.code.co_firstlineno

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
    if name in _COMPREHENSIONS:
        outer = frame.f_back
        if outer is not None and outer.f_code.co_filename == frame.f_code.co_filename:
            return outer.f_code.co_name
    return name


Site = tuple[tuple[int, ...], "FrameType | None"]


class LastSite:
    """The previous call site of a scope, to answer a loop's next statement without a walk.

    When the innermost application frame is the same live frame object at the same
    instruction, and not a generator or coroutine frame (which can be resumed from another
    stack), none of its callers can have changed since: they are suspended in the calls that
    lead to it. So the previous key is still exact. Holds one frame, for the scope's lifetime.
    """

    __slots__ = ("frame", "lasti", "site")

    def __init__(self) -> None:
        self.frame: FrameType | None = None
        self.lasti = -1
        self.site: Site | None = None


_RESUMABLE = inspect.CO_GENERATOR | inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR


def capture(
    anchor: FrameType | CodeType | None, skip: int = 2, last: LastSite | None = None
) -> Site | None:
    """The call site of the code running now, up to ``anchor`` (the frame that opened the
    scope, or the code of the function it runs, e.g. a test function): its key and the frame
    to report (turned into a :class:`CallSite` only when a detection is made).

    None when the statement comes from SQLAlchemy's own schema work (``create_all``'s
    ``has_table`` checks, reflection): one ``create_all`` runs the same check per table.
    """
    frame = _innermost_user_frame(skip + 1)
    if frame is _SCHEMA_WORK:
        return None
    if last is None or frame is None or frame.f_code.co_flags & _RESUMABLE:
        return _walk_user_frames(frame, anchor)
    if frame is last.frame and frame.f_lasti == last.lasti and last.site is not None:
        return last.site
    site = _walk_user_frames(frame, anchor)
    last.frame, last.lasti, last.site = frame, frame.f_lasti, site
    return site


# Where the application's frame was found recently: (depth, code of the SQLAlchemy function it
# called). sys._getframe(depth) walks in C and builds one frame object, where a Python walk
# over SQLAlchemy's 10-20 frames builds them all (about 0.5 µs a frame). A hint is used only
# when the same SQLAlchemy entry point sits at the same depth, so the frames skipped are the
# ones the full walk saw when it learned the hint.
_depth_hints: list[tuple[int, CodeType]] = []
_SCHEMA_WORK: Final = sys._getframe()  # sentinel: "the statement is SQLAlchemy's schema work"


def _innermost_user_frame(skip: int) -> FrameType | None:
    for depth, entry in _depth_hints:
        try:
            callee = sys._getframe(skip + depth - 1)
        except ValueError:
            continue
        frame = callee.f_back
        if callee.f_code is entry and frame is not None \
                and _kind(frame.f_code.co_filename) >= _LIBRARY:
            return frame
    return _find_user_frame(sys._getframe(skip), learn=True)


def _find_user_frame(frame: FrameType | None, learn: bool) -> FrameType | None:
    """Walk outward from ``frame`` to the first application or library frame; with ``learn``,
    remember its depth as a hint."""
    depth = 0
    kinds = _kinds
    callee = None
    while frame is not None:
        kind = kinds.get(frame.f_code.co_filename)
        if kind is None:
            kind = _kind(frame.f_code.co_filename)
        if kind >= _LIBRARY:
            if learn and callee is not None:
                _learn((depth, callee.f_code))
            return frame
        if kind == _SCHEMA:
            return _SCHEMA_WORK
        callee, frame = frame, frame.f_back
        depth += 1
    return None


def _learn(hint: tuple[int, CodeType]) -> None:
    if hint not in _depth_hints:
        _depth_hints.insert(0, hint)
        del _depth_hints[8:]


def _walk_user_frames(frame: FrameType | None, anchor: FrameType | CodeType | None) -> Site:
    """Key the user frames from ``frame`` outward; report the innermost application frame.

    Under asyncio SQLAlchemy runs ORM work in a child greenlet whose stack holds only
    SQLAlchemy frames; the caller waits in the parent greenlet, so the walk continues there.
    """
    key: list[int] = []
    location: FrameType | None = None
    first_user: FrameType | None = None
    glet = None
    if frame is None:
        glet, frame = _parent_frame(None)
        frame = _find_user_frame(frame, learn=False) if frame is not None else None
        if frame is _SCHEMA_WORK:
            frame = None
    kinds = _kinds
    while True:
        while frame is not None:
            code = frame.f_code
            kind = kinds.get(code.co_filename)
            if kind is None:
                kind = _kind(code.co_filename)
            if kind >= _LIBRARY:
                key.append(id(code))
                key.append(frame.f_lasti)
                if first_user is None:
                    first_user = frame
                if location is None and kind == _APP:
                    location = frame
                if frame is anchor or code is anchor or len(key) >= 2 * MAX_FRAMES:
                    return tuple(key), location or first_user
            elif kind != _ORM:  # sqlaopt's scope machinery, or schema work: the walk ends
                return tuple(key), location or first_user
            frame = frame.f_back
        glet, frame = _parent_frame(glet)
        if frame is None:
            return tuple(key), location or first_user


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
