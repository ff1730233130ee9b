"""pytest plugin loaded by run.py (``-p sqlaopt_real_suites_details``) in the record run.

``--sqlaopt-write-baseline`` keeps (test, kind, target, file + function) per detection. Triage
needs more: the line, the loop's line, the final count, the fix, the SQL, and the call stack
that reached the threshold (to tell a loop in test code, a loop across requests or a SELECT
inside a flush from an application loop). This plugin writes one JSON object per detection
(``"type": "detection"``: ``Detection.as_dict()`` plus ``target``, ``in_test_code``, the
thread and the stack) and one per test (``"type": "test"``, with the statements its body ran)
to the file named by ``$SQLAOPT_REAL_SUITES_DETAILS``.

It reads sqlaopt's internals (as of the detector in ``sqlaopt.detect``: ``_hook``,
``_scope``, ``_report``), each on a best-effort basis, so that run.py keeps working while the
detector is rewritten:

- the running test's Report: ``item.stash[pytest_plugin._settings_key][2]`` (the Report the
  test's scope fills), else the public ``nplusone`` fixture;
- the stack: a wrapper around ``_hook.build_detection`` (the one function that makes an N+1
  Detection, called when a loop reaches the threshold) keeps ``traceback``-style frames of the
  statement that reached it; ``Scope.forwarded`` copies a request unit's detection into the
  test's scope (``dataclasses.replace``), so a wrapper around it hands the copy the stack;
- the ``split`` diagnostic: a wrapper around ``_hook.lane`` (see ``_split_lanes``).

If one of them is gone it degrades (no stacks, or run.py reads the baseline file's fields).
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import json
import os
import sys
import threading
from typing import Any

import pytest

_PATH_ENV = "SQLAOPT_REAL_SUITES_DETAILS"
_MAX_FRAMES = 80
_SKIPPED_FRAMES = ("/_pytest/", "/pluggy/")

_records: list[dict[str, Any]] = []
_stacks: dict[int, tuple[object, list[str], str]] = {}  # id(detection) -> (it, stack, thread)


def _stack() -> list[str]:
    """Every frame of the current stack, outermost first, as ``file:line in function``."""
    frames = []
    frame = sys._getframe(2)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not any(part in filename for part in _SKIPPED_FRAMES):
            frames.append(f"{filename}:{frame.f_lineno} in {frame.f_code.co_name}")
        frame = frame.f_back
    return frames[:_MAX_FRAMES][::-1]


def _wrap_builders() -> None:
    """Remember the stack of every Detection the detector builds, and hand it on to the copy
    an enclosing scope makes of a nested scope's detection."""
    hook = importlib.import_module("sqlaopt.detect._hook")
    build = hook.__dict__.get("build_detection")
    if build is None:
        raise LookupError("sqlaopt.detect._hook.build_detection is gone")
    if not getattr(build, "_real_suites_wrapped", False):
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            detection = build(*args, **kwargs)
            _stacks[id(detection)] = (detection, _stack(), threading.current_thread().name)
            return detection

        wrapped._real_suites_wrapped = True  # type: ignore[attr-defined]
        hook.build_detection = wrapped
    scope_class = importlib.import_module("sqlaopt.detect._scope").__dict__.get("Scope")
    forwarded = getattr(scope_class, "forwarded", None)
    if forwarded is None or getattr(forwarded, "_real_suites_wrapped", False):
        return

    def forward(self: Any, place: Any, detection: Any, count: int) -> Any:
        mine = forwarded(self, place, detection, count)
        if mine is not None and id(mine) not in _stacks and id(detection) in _stacks:
            _stacks[id(mine)] = (mine, *_stacks[id(detection)][1:])
        return mine

    forward._real_suites_wrapped = True  # type: ignore[attr-defined]
    scope_class.forwarded = forward


_SPLIT_ENV = "SQLAOPT_REAL_SUITES_SPLIT"
_root = ""
_invocations: dict[int, tuple[object, int]] = {}  # id(frame) -> (frame, serial), per test


def _is_test_file(filename: str) -> bool:
    name = filename.rsplit("/", 1)[-1]
    return "/tests/" in filename or name.startswith("test_") or name.endswith("_test.py") \
        or name == "conftest.py"


def _invocation() -> int:
    """A serial for the call of the application being served: the outermost application frame
    below the test code (or, on a worker thread, below the thread's library frames). A frame
    object is one call; holding it keeps its id from being reused within the test. A held
    frame that has returned is cleared (``frame.clear()``) when the next call starts, so that
    holding it does not keep the call's locals, and with them ORM instances in the Session's
    identity map, alive: that would spare later lazy loads the record run makes."""
    frame = sys._getframe(2)
    outermost_app = None
    while frame is not None:
        filename = frame.f_code.co_filename
        if filename.startswith(_root) and "-packages/" not in filename:
            if _is_test_file(filename):
                break
            outermost_app = frame
        frame = frame.f_back
    if outermost_app is None:
        return 0
    entry = _invocations.get(id(outermost_app))
    if entry is None or entry[0] is not outermost_app:
        _release_returned_frames()
        entry = _invocations[id(outermost_app)] = (outermost_app, len(_invocations) + 1)
    return entry[1]


_SUSPENDABLE = inspect.CO_GENERATOR | inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR


def _release_returned_frames() -> None:
    for frame, _ in _invocations.values():
        if frame.f_code.co_flags & _SUSPENDABLE:  # clear() would finalize a suspended one
            continue
        with contextlib.suppress(RuntimeError):  # raised while the frame still executes
            frame.clear()


def _split_lanes() -> None:
    """Diagnostic: count per (lane, application call) instead of per lane, by wrapping the
    detector's lane function. Detections that survive repeat within one request or one call
    of the application; those that vanish were repetition across calls (a test's loop,
    sequential requests on a reused thread)."""
    for name in ("sqlaopt.detect._hook", "sqlaopt.detect._writes"):  # N+1s, row-by-row writes
        module = importlib.import_module(name)
        lane = module.__dict__.get("lane")
        if lane is None:
            raise LookupError(f"{name}.lane is gone")
        module.lane = lambda lane=lane: (lane(), _invocation())


def _stash_key() -> Any:
    """The stash key under which the plugin keeps (verdict, settings, Report) per test."""
    plugin = sys.modules.get("sqlaopt.pytest_plugin")
    return getattr(plugin, "_settings_key", None)


def pytest_configure(config: pytest.Config) -> None:
    global _root
    _root = str(config.rootpath) + os.sep
    try:
        _wrap_builders()
    except Exception as error:  # the harness must still run against a rewritten detector
        print(f"sqlaopt_real_suites_details: no stacks ({error!r})", file=sys.stderr)
    if os.environ.get(_SPLIT_ENV):
        _split_lanes()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if _stash_key() is not None:
        return
    for item in items:  # fall back to the public fixture
        names = getattr(item, "fixturenames", None)
        if isinstance(names, list) and "nplusone" not in names:
            names.append("nplusone")


def _report(item: pytest.Item) -> Any:
    key = _stash_key()
    if key is not None:
        entry = item.stash.get(key, None)
        if isinstance(entry, tuple) and entry and hasattr(entry[-1], "detections"):
            return entry[-1]
    return getattr(item, "funcargs", {}).get("nplusone")


@pytest.hookimpl(tryfirst=True)  # makereport is firstresult: run before the default
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> None:
    if call.when != "call":
        return
    report = _report(item)
    _records.append({"type": "test", "test": item.nodeid,
                     "statements": getattr(report, "statements", None)})
    for detection in getattr(report, "detections", ()):
        _, stack, thread = _stacks.get(id(detection), (None, [], ""))
        record = {"type": "detection", "test": item.nodeid, "thread": thread, "stack": stack}
        as_dict = getattr(detection, "as_dict", None)
        record.update(as_dict() if callable(as_dict) else vars(detection))
        record["target"] = getattr(detection, "target", record.get("model"))
        record["in_test_code"] = getattr(detection, "in_test_code", None)
        _records.append(record)
    _stacks.clear()
    _invocations.clear()


def pytest_sessionfinish(session: pytest.Session) -> None:
    path = os.environ.get(_PATH_ENV)
    if path:
        with open(path, "w", encoding="utf-8") as out:
            for record in _records:
                out.write(json.dumps(record, default=str) + "\n")
