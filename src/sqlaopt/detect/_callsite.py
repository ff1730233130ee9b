"""Where a statement comes from: the user frames of the current call stack.

Two executions come "from the same place" when the frames outside SQLAlchemy and sqlaopt are
the same code at the same instructions. Walking the stack costs about 0.15 µs a frame, so the
walk stops as early as it can: at the frame that opened the scope (the ``with`` line), at
sqlaopt's own scope machinery (decorator, pytest hook, middleware, request unit), or after
``MAX_FRAMES`` user frames.

Nothing here keeps a frame: a key holds code ids and line numbers, and what a report
needs from the frames (file, line, function, the loop's line) is read while the statement that
reached the threshold is still running (:func:`describe`).
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import sys
import sysconfig
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import CodeType, FrameType
from typing import Final, NamedTuple, cast

import sqlalchemy

from ._loops import loop_line, loop_variable, returns_call

__all__ = [
    "Site",
    "TestCode",
    "activations",
    "capture",
    "depth_of",
    "describe",
    "format_location",
    "is_test_code",
    "restore_test_code",
    "set_test_code",
    "treat_as_library",
]

MAX_FRAMES: Final = 32

# Frame kinds, by the file their code lives in.
_ORM: Final = 0  # SQLAlchemy, and sqlaopt's own work below user code: never part of a site
_OWN: Final = 1  # sqlaopt's scope machinery: above user code, it ends the walk
_SCHEMA: Final = 2  # schema work (SQLAlchemy's reflection, DDL, introspection; Alembic) and
# sqlaopt's own tooling (index builds and checks, EXPLAIN, monitoring): not the app's SQL
_LIBRARY: Final = 3  # stdlib and installed packages: part of the key, never the location
_APP: Final = 4  # the application (kinds from _LIBRARY up are "user" frames)
_GENERATED: Final = 5  # "<string>": SQLAlchemy 2.0's generated decorators, or user exec()


def _package_dir(module_file: str) -> str:
    return os.path.dirname(os.path.abspath(module_file)) + os.sep


_SQLALCHEMY_DIR = _package_dir(sqlalchemy.__file__ or "")
_SQLAOPT_DIR = os.path.dirname(_package_dir(__file__).rstrip(os.sep)) + os.sep
# The reference booking flows are application code from the detector's point of view.
_BOOKING_DIR = _SQLAOPT_DIR + "booking" + os.sep
# sqlaopt's tooling: the statements it runs itself are its own work, like schema work.
_TOOLING = tuple(
    _SQLAOPT_DIR + name
    for name in ("indexes" + os.sep, "watch" + os.sep, "structure" + os.sep, "explain.py")
)
# The modules that open scopes: a walk that reaches them has left the scope's code.
_SCOPE_MACHINERY = tuple(
    _SQLAOPT_DIR + name
    for name in (
        os.path.join("detect", "_api.py"), os.path.join("detect", "_units.py"),
        "asgi.py", "wsgi.py", "pytest_plugin.py",
    )
)


def _installed_package_dir(name: str) -> str | None:
    """Where package ``name`` is installed, without importing it."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
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
# Installed code, wherever the installer put it: virtualenvs, user site, `uv run --with`
# overlays, system packages, zipapps and eggs.
_INSTALLED_MARKERS = (
    f"{os.sep}site-packages{os.sep}", f"{os.sep}dist-packages{os.sep}",
    f".zip{os.sep}", f".pyz{os.sep}", f".egg{os.sep}",
)
_STDLIB_DIRS = tuple(
    {
        os.path.abspath(p) + os.sep
        for p in (sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib"))
    }
)
_extra_library_places: tuple[str, ...] = ()
_kinds: dict[str, int] = {}
_orm_files: set[str] = set()  # the files of kind _ORM, for the walk's fast path


def treat_as_library(*places: str) -> None:
    """Treat the frames of these packages or directories as library code: part of a call
    stack, never the reported location (e.g. a company-wide shared package installed from
    source). Each place is an importable package name (``"mycompany.shared"``) or a directory.

    >>> sqlaopt.treat_as_library("mycompany.shared", "/srv/vendor/")
    """
    global _extra_library_places
    resolved: list[str] = []
    for place in places:
        if not isinstance(place, str) or not place:
            raise TypeError(f"treat_as_library takes package names or directories; got {place!r}")
        directory = place if os.sep in place or os.path.isdir(place) else None
        if directory is None:
            directory = _installed_package_dir(place)
            if directory is None:
                raise ValueError(
                    f"treat_as_library: {place!r} is neither a directory nor an importable "
                    "package name"
                )
        resolved.append(os.path.abspath(directory).rstrip(os.sep) + os.sep)
    _extra_library_places = tuple(dict.fromkeys((*_extra_library_places, *resolved)))
    _kinds.clear()
    _orm_files.clear()
    _passed_modules.clear()


def _classify(filename: str) -> int:
    if filename.startswith(_SCHEMA_PLACES):
        return _SCHEMA
    if filename.startswith(_SQLALCHEMY_DIR) or filename.startswith("<sqlalchemy"):
        return _ORM
    if filename.startswith(_SQLAOPT_DIR) and not filename.startswith(_BOOKING_DIR):
        if filename.startswith(_TOOLING):
            return _SCHEMA
        return _OWN if filename.startswith(_SCOPE_MACHINERY) else _ORM
    if filename == "<string>":
        return _GENERATED
    if filename.startswith("<frozen") or filename.startswith(_STDLIB_DIRS) \
            or any(marker in filename for marker in _INSTALLED_MARKERS) \
            or (_extra_library_places and filename.startswith(_extra_library_places)):
        return _LIBRARY
    return _APP


def _kind(frame: FrameType) -> int:
    filename = frame.f_code.co_filename
    kind = _kinds.get(filename)
    if kind is None:
        kind = _kinds[filename] = _classify(filename)
        if kind == _ORM:
            _orm_files.add(filename)
    if kind == _GENERATED:  # SQLAlchemy 2.0 compiles its decorators in the module's globals
        module = frame.f_globals.get("__name__", "")
        return _ORM if isinstance(module, str) and module.startswith("sqlalchemy") else _APP
    return kind


# ---------------------------------------------------------------- test code


_TEST_DIRECTORY_NAMES: Final = frozenset({"tests", "test"})


class TestCode(NamedTuple):
    """Where a test session's own code lives."""

    files: frozenset[str]
    """The collected test modules."""
    directories: tuple[str, ...]
    """Directories whose every module is the suite's (helpers, factories, fixtures)."""


_test_code = TestCode(frozenset(), ())


def set_test_code(files: Iterable[str], root: str) -> TestCode:
    """Set the test code of the running test session (the pytest plugin does): its collected
    modules, and every directory below ``root`` named ``tests`` or ``test`` that holds a
    collected module (with the suite's helpers, factories and fixtures). Returns the previous
    value (an outer session's, under pytester) for the plugin to restore."""
    collected = frozenset(os.path.abspath(f) for f in files)
    found: set[str] = set()
    root = os.path.join(os.path.abspath(root), "")
    for file in collected:
        if not file.startswith(root):
            continue
        parts = file[len(root):].split(os.sep)
        for index in range(len(parts) - 2, -1, -1):  # the innermost test directory
            if parts[index] in _TEST_DIRECTORY_NAMES:
                found.add(root + os.sep.join(parts[:index + 1]) + os.sep)
                break
    return restore_test_code(TestCode(collected, tuple(sorted(found))))


def restore_test_code(code: TestCode) -> TestCode:
    """Put back a :class:`TestCode` that :func:`set_test_code` returned."""
    global _test_code
    previous, _test_code = _test_code, code
    return previous


def is_library_code(filename: str | None) -> bool:
    """Whether ``filename`` is installed, standard-library or declared library code."""
    return filename is not None and _classify(filename) == _LIBRARY


def is_test_code(filename: str | None) -> bool:
    """Whether ``filename`` is one of the test session's test modules or conftest files."""
    files, directories = _test_code
    if not filename or not files:
        return False
    return (filename in files or os.path.basename(filename) == "conftest.py"
            or filename.startswith(directories))


# ---------------------------------------------------------------- keys


# The application's frame is found by walking outward over SQLAlchemy's frames on every
# statement (about 5 µs). Version 0.1 jumped over them with remembered depths ("hints"); its
# one-frame check skipped application frames, and the sampled check that replaced it never
# matched. See docs/design.md for what a hint could save and what it must check.
#
# Python 3.12+ can check every frame it jumps over: sys._getframemodulename(depth) reads the
# module of the function running at a depth without making a frame object, which is most of
# what a frame on the walk costs (one allocation and one free each). So the walk starts at the
# first frame whose module is not SQLAlchemy's or sqlaopt's inner work. 3.11 has no such call.
_module_at = cast("Callable[[int], str | None] | None", getattr(sys, "_getframemodulename",
                                                                None))
_passed_modules: dict[str | None, bool] = {}  # module name -> whether the walk passes over it


def _passed_over(module_name: str | None) -> bool:
    """Whether the walk passes over the frames of ``module_name`` when they run before any
    user frame: SQLAlchemy's own and sqlaopt's inner and scope machinery, by the module's file,
    as the walk judges each frame (a generated ``<string>`` function has its module's name)."""
    module = sys.modules.get(module_name) if module_name else None
    filename = getattr(module, "__file__", None)
    passes = isinstance(filename, str) and _classify(filename) in (_ORM, _OWN)
    _passed_modules[module_name] = passes  # looked up by _first_walked before calling here
    return passes


def _first_walked(depth: int) -> int:
    """The depth of the first frame the walk must look at, from the frame at ``depth`` (both
    counted from the caller): on Python 3.12+, the frames whose module is one the walk passes
    over are jumped over without making their frame objects."""
    if _module_at is None:
        return depth
    depth += 1  # counted from this function's frame
    passed = _passed_modules
    while True:
        name = _module_at(depth)
        passes = passed.get(name)
        if not (_passed_over(name) if passes is None else passes):
            return depth - 1
        depth += 1


def _frame_at(depth: int) -> FrameType | None:
    """``sys._getframe(depth + 1)``, or None past the top of the stack (a child greenlet's
    stack can be SQLAlchemy's frames only)."""
    try:
        return sys._getframe(depth + 1)
    except ValueError:
        return None


# Sentinels. Not real frames: a frame object kept at import would keep its callers alive.
_SCHEMA_WORK: Final = cast(FrameType, object())  # "the statement is SQLAlchemy's schema work"

Key = tuple[int, ...]


def capture(anchor: FrameType | CodeType | None, skip: int = 2) -> Key | None:
    """The call site of the code running now, up to ``anchor`` (the frame that opened the
    scope, or the code of the function it runs, e.g. a test function): a hashable key of
    (code id, line number) pairs with every recursion cycle cut out (when a function
    appears again further out, the frames between its two appearances are dropped), so a
    function recursing into itself, directly or through a comprehension or a helper, has the
    same key at every depth.

    None when the statement comes from SQLAlchemy's own schema work (``create_all``'s
    ``has_table`` checks, reflection): one ``create_all`` runs the same check per table.
    """
    # One loop over the whole stack, _kind inlined: this runs for every statement in a scope,
    # and a call per frame on the way out of SQLAlchemy cost about 2 µs a statement.
    # Lines, not f_lasti: once CPython 3.11 specialises a call to a builtin (getattr), the
    # calling frame reports another instruction offset, which split one loop in two.
    # (3.11 takes the frame at once: no two calls to learn that there is no jump.)
    frame = sys._getframe(skip) if _module_at is None else _frame_at(_first_walked(skip))
    parts: list[int] = []
    at: dict[int, int] = {}  # code id -> its index in parts
    count = 0
    kinds, lines, orm_files = _kinds, _lines, _orm_files
    while frame is not None:
        code = frame.f_code
        filename = code.co_filename
        if filename in orm_files:  # most frames are SQLAlchemy's: the cheapest test
            frame = frame.f_back
            continue
        kind = kinds.get(filename)
        if kind is None or kind == _GENERATED:
            kind = _kind(frame)
        if kind >= _LIBRARY:
            code_id = id(code)
            line = lines.get((code_id, frame.f_lasti))
            if line is None or line[0] is not code:
                line = _line(frame)
            if code_id not in at:
                at[code_id] = len(parts)
                parts.append(code_id)
                parts.append(line[1])
            else:
                _Key(parts, at).add(code_id, line[1])  # a recursion: cut the cycle out
            count += 1
            if frame is anchor or code is anchor or count >= MAX_FRAMES:
                return tuple(parts)
        elif kind != _ORM and (count or kind == _SCHEMA):
            # Past the user frames, sqlaopt's scope machinery or schema work ends the walk;
            # before them, schema work means the statement is SQLAlchemy's own.
            return tuple(parts) if count else None
        frame = frame.f_back
    if _parent_frame(None)[1] is None:  # the top of the stack, and no waiting caller
        return tuple(parts)
    # asyncio: the walk goes on in the parent greenlet
    return _Key(parts, at).extend(_user_frames(None, anchor), count)


# A frame's line number costs a scan of its code's line table up to the running instruction:
# 0.1 µs in a short function, about 1 µs at the end of a 200-line one (a module body, a long
# test or view). Keyed by (code id, instruction offset), a line is computed once; the entry
# keeps its code so that an id reused by a later code object is not trusted.
_MAX_LINES: Final = 50_000
_lines: dict[tuple[int, int], tuple[CodeType, int]] = {}


def _line(frame: FrameType) -> tuple[CodeType, int]:
    """``(code, line)`` of ``frame``, remembered by code id and instruction offset."""
    if len(_lines) >= _MAX_LINES:
        _lines.clear()
    code = frame.f_code
    entry = _lines[(id(code), frame.f_lasti)] = (code, frame.f_lineno or 0)
    return entry


class _Key:
    """A call-site key being built, frame by frame from the innermost outward (``capture``
    builds the common case inline, and hands its lists over for the rest)."""

    __slots__ = ("at", "parts")

    def __init__(self, parts: list[int] | None = None, at: dict[int, int] | None = None) -> None:
        self.parts: list[int] = [] if parts is None else parts
        self.at: dict[int, int] = {} if at is None else at  # code id -> its index in parts

    def add(self, code_id: int, line: int) -> None:
        index = self.at.get(code_id)
        if index is None:
            self.at[code_id] = len(self.parts)
            self.parts.append(code_id)
            self.parts.append(line)
        else:  # seen further in: cut the cycle between the two appearances out
            for dropped in self.parts[index + 2::2]:
                del self.at[dropped]
            del self.parts[index + 2:]

    def extend(self, frames: Iterable[FrameType], count: int = 0) -> Key:
        for frame in frames:
            if count >= MAX_FRAMES:
                break
            count += 1
            self.add(id(frame.f_code), _line(frame)[1])
        return self.done()

    def done(self) -> Key:
        return tuple(self.parts)


def _innermost_user_frame(skip: int) -> FrameType | None:
    return _find_user_frame(_frame_at(_first_walked(skip)))


def _find_user_frame(frame: FrameType | None) -> FrameType | None:
    """Walk outward from ``frame`` to the first application or library frame."""
    while frame is not None:
        kind = _kind(frame)
        if kind >= _LIBRARY:
            return frame
        if kind == _SCHEMA:
            return _SCHEMA_WORK
        frame = frame.f_back
    return None


def _user_frames(
    frame: FrameType | None, anchor: FrameType | CodeType | None
) -> Iterable[FrameType]:
    """The user frames from ``frame`` outward, up to and including ``anchor``.

    Under asyncio SQLAlchemy runs ORM work in a child greenlet whose stack holds only
    SQLAlchemy frames; the caller waits in the parent greenlet, so the walk continues there.
    """
    glet = None
    if frame is None:
        glet, frame = _parent_frame(None)
        frame = _find_user_frame(frame) if frame is not None else None
        if frame is _SCHEMA_WORK:
            return
    count = 0
    while True:
        while frame is not None:
            kind = _kind(frame)
            if kind >= _LIBRARY:
                yield frame
                count += 1
                if frame is anchor or frame.f_code is anchor or count >= MAX_FRAMES:
                    return
            elif kind != _ORM:  # sqlaopt's scope machinery, or schema work: the walk ends
                return
            frame = frame.f_back
        glet, frame = _parent_frame(glet)
        if frame is None:
            return


def _parent_frame(glet: object) -> tuple[object, FrameType | None]:
    greenlet = sys.modules.get("greenlet")
    if greenlet is None:
        return None, None
    current = greenlet.getcurrent() if glet is None else glet
    parent = getattr(current, "parent", None)
    if parent is None:
        return None, None
    return parent, parent.gr_frame


# ---------------------------------------------------------------- description


@dataclass(frozen=True)
class Place:
    """A line of code: what a report shows."""

    filename: str
    lineno: int
    function: str

    def __str__(self) -> str:
        return format_location(self.filename, self.lineno, self.function)


@dataclass(frozen=True)
class Site:
    """What a detection says about where it happened, read from the live frames."""

    location: Place | None
    """The innermost application frame (or, if none, the innermost user frame)."""
    loop: Place | None
    """Where the repetition is: the first line of the innermost loop on the stack, or a
    recursive call (None when neither is found)."""
    loop_elsewhere: bool
    """Whether ``loop`` is in another frame than ``location`` (a helper called in a loop)."""
    code: CodeType | None
    """The code and instruction of ``location`` (to read which attribute it was reading)."""
    lasti: int
    recursive: CodeType | None = None
    """The function that recurses into itself on this stack, if one does."""
    depth: int = 1
    """How many times it is on the stack."""
    across_calls: bool = False
    """Whether a loop of test code went round between the loop's first statement and this
    one: each repeat came from another call the test made (the test's repetition)."""
    retry: bool = False
    """Whether the statement was repeated by a retry: the frame that made the call again is
    in a loop whose body returns that call's value (``try: return create(...)``)."""

    @property
    def repeating_file(self) -> str | None:
        """The file of the code that repeats the statement."""
        place = self.loop or self.location
        return place.filename if place is not None else None


_COMPREHENSIONS = frozenset({"<listcomp>", "<dictcomp>", "<setcomp>", "<genexpr>"})


def activations(anchor: FrameType | CodeType | None, skip: int = 2) -> tuple[int, ...]:
    """The user frames of the statement running now, outermost first, as (code id, frame id,
    id of the item its innermost ``for`` loop is at, or 0) triples: what :func:`describe`
    compares at a later statement to see which loops went round in between."""
    return _activations(_frames_of(anchor, skip + 1))


def _activations(frames: list[FrameType]) -> tuple[int, ...]:
    return tuple(n for frame in reversed(frames)
                 for n in (id(frame.f_code), id(frame), _item_id(frame)))


def _item_id(frame: FrameType) -> int:
    """The id of the item the frame's innermost ``for`` loop is at (0: not in one).

    Two items of one loop are alive at once when the loop moves on (the iterator makes the
    next before the variable lets go of the last), so a changed id means the loop went round.
    """
    name = loop_variable(frame.f_code, frame.f_lasti)
    if name is None:
        return 0
    namespace = frame.f_locals
    item = id(namespace[name]) if name in namespace else 0
    # Before Python 3.13 a function's f_locals is a snapshot dict kept on the frame: it would
    # keep every local's value alive after the code let go of it (the ORM instances of a
    # test, and through SQLAlchemy's weak identity map, the statements the test runs next).
    # Emptied when no one else holds it; the next locals() or f_locals fills it again.
    if type(namespace) is dict and frame.f_code.co_flags & _OPTIMIZED \
            and sys.getrefcount(namespace) <= _SNAPSHOT_REFERENCES:
        namespace.clear()
    return item


_OPTIMIZED: Final = inspect.CO_OPTIMIZED  # a function's frame (its f_locals is a snapshot)
_SNAPSHOT_REFERENCES: Final = 3  # the frame's, ``namespace``, getrefcount's argument


def _frames_of(anchor: FrameType | CodeType | None, skip: int) -> list[FrameType]:
    frame = _innermost_user_frame(skip + 1)
    return list(_user_frames(None if frame is _SCHEMA_WORK else frame, anchor))


def _went_round(frames: list[FrameType], first: tuple[int, ...]) -> tuple[set[int], set[int]]:
    """Which of ``frames`` (positions, innermost first) had their ``for`` loop move to another
    item since the first statement (``first``, from :func:`activations`), and which are still
    at the same item; matched from the outermost frame in while code and frame agree. A frame
    at the same id may be a new call (CPython reuses a finished frame's memory): a loop at the
    same item did not repeat the statement either way, but only a test frame, which lives as
    long as its test, proves by moving on that the repeats came from separate calls."""
    went: set[int] = set()
    stayed: set[int] = set()
    for position, frame in enumerate(reversed(frames)):
        index = 3 * position
        if index + 2 >= len(first) or first[index] != id(frame.f_code) \
                or first[index + 1] != id(frame):
            break
        item, before = _item_id(frame), first[index + 2]
        if item and before:
            (stayed if item == before else went).add(len(frames) - 1 - position)
    return went, stayed


def describe(anchor: FrameType | CodeType | None, skip: int = 2,
             first: tuple[int, ...] | None = None) -> Site:
    """The :class:`Site` of the statement running now (the same frames :func:`capture` keys);
    ``first``: the :func:`activations` of the loop's first statement, if known."""
    frames = _frames_of(anchor, skip + 1)
    location = next((f for f in frames if _kind(f) == _APP), frames[0] if frames else None)
    went, stayed = _went_round(frames, first) if first else (set(), set())
    test_loop = next((frames[p] for p in sorted(went)
                      if _lives_with_the_scope(frames[p], anchor)
                      and is_test_code(frames[p].f_code.co_filename)), None)
    found = _loop_of(test_loop) if test_loop is not None else _loop(frames, went, stayed)
    codes = Counter(f.f_code for f in frames)
    recursive, depth = codes.most_common(1)[0] if codes else (None, 1)
    return Site(
        location=_place(location) if location is not None else None,
        loop=found[0] if found and found is not _RETRY else None,
        loop_elsewhere=found is not None and found is not _RETRY and found[1] is not location,
        code=location.f_code if location is not None else None,
        lasti=location.f_lasti if location is not None else -1,
        recursive=recursive if depth > 1 else None,
        depth=depth,
        across_calls=test_loop is not None,
        retry=found is _RETRY,
    )


def depth_of(code: CodeType) -> int:
    """How many frames of ``code`` are on the current stack (a recursion's depth)."""
    frame: FrameType | None = sys._getframe(1)
    depth = 0
    while frame is not None:
        depth += frame.f_code is code
        frame = frame.f_back
    return depth


_RETRY: Final = cast("tuple[Place, FrameType]", (Place("", 0, ""), object()))  # "a retry"


def _loop(frames: list[FrameType], went: set[int], stayed: set[int]
          ) -> tuple[Place, FrameType] | None:
    """Where the loop is, and its frame: the innermost frame running inside a loop of its own
    code (the loop's first line, so two lines of one loop body are one loop), or a call of a
    function that is already further in (a recursion: the line of that call).

    Passed over: a loop still at the item it was at for the first statement (``stayed``: it
    did not repeat the statement; with no loop left, the repeats happened inside one call, in
    code without Python frames such as a validator walking a collection), and a loop whose
    body returns the value of the call it is making (``for attempt in range(3): try: return
    create(...)``), which runs the call again only when it failed: ``_RETRY`` if it went round
    (``went``)."""
    inner_codes: set[CodeType] = set()
    for position, frame in enumerate(frames):
        code = frame.f_code
        if code in inner_codes:
            return _place(frame), frame
        line = loop_line(code, frame.f_lasti)
        if line is not None and position not in stayed:
            if not returns_call(code, frame.f_lasti):
                return Place(code.co_filename, line, _function_name(frame)), frame
            if position in went:
                return _RETRY
        inner_codes.add(code)
    return None


def _lives_with_the_scope(frame: FrameType, anchor: FrameType | CodeType | None) -> bool:
    """Whether ``frame`` is certainly the same call for every statement of the scope: the
    frame that opened it (a test function), or a comprehension written in it (run again, it
    would be the opener's own loop going round). A helper function's frame may be a new call
    at the address of a finished one."""
    if frame is anchor or frame.f_code is anchor:
        return True
    outer = frame.f_back
    return frame.f_code.co_name in _COMPREHENSIONS and outer is not None \
        and (outer is anchor or outer.f_code is anchor)


def _loop_of(frame: FrameType) -> tuple[Place, FrameType] | None:
    line = loop_line(frame.f_code, frame.f_lasti)
    return (Place(frame.f_code.co_filename, line, _function_name(frame)), frame) if line \
        else None


def _place(frame: FrameType) -> Place:
    return Place(frame.f_code.co_filename, frame.f_lineno or frame.f_code.co_firstlineno,
                 _function_name(frame))


def _function_name(frame: FrameType) -> str:
    """The function's name; for a comprehension, the function it is written in."""
    name = frame.f_code.co_name
    if name in _COMPREHENSIONS:
        outer = frame.f_back
        if outer is not None and outer.f_code.co_filename == frame.f_code.co_filename:
            return outer.f_code.co_name
    return name


def format_location(filename: str, lineno: int, function: str) -> str:
    """``path/to/file.py:LINE in function``, the path relative to the working directory."""
    try:
        relative = os.path.relpath(filename)
    except ValueError:  # another drive on Windows
        relative = filename
    shown = filename if relative.startswith("..") else relative
    return f"{shown}:{lineno} in {function}"
