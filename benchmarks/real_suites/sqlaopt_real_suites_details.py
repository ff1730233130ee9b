"""pytest plugin loaded by run.py (``-p sqlaopt_real_suites_details``) in the record run.

``--sqlaopt-write-baseline`` keeps (test, kind, target, file + function) per detection. Triage
needs more: the line, the final count, the fix, the SQL, and the call stack that reached the
threshold (to tell a loop in test code, a loop across requests or a SELECT inside a flush from
an application loop). This plugin writes one JSON object per detection (``"type":
"detection"``) and one per test (``"type": "test"``, with the statements its body ran) to the
file named by ``$SQLAOPT_REAL_SUITES_DETAILS``.

It reads sqlaopt's internals only on a best-effort basis, so that run.py keeps working while
the detector is rewritten: the running test's Report through the plugin's stash (or, failing
that, the public ``nplusone`` fixture), and the stack through a wrapper around the function
that builds a Detection, if one named ``build_detection`` is still there.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
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
    """Remember the stack of every Detection the detector builds (best effort)."""
    detect = importlib.import_module("sqlaopt.detect")
    for info in pkgutil.iter_modules(detect.__path__, "sqlaopt.detect."):
        module = importlib.import_module(info.name)
        build = module.__dict__.get("build_detection")
        if build is None or getattr(build, "_real_suites_wrapped", False):
            continue

        def wrapped(*args: Any, _build: Any = build, **kwargs: Any) -> Any:
            detection = _build(*args, **kwargs)
            _stacks[id(detection)] = (detection, _stack(), threading.current_thread().name)
            return detection

        wrapped._real_suites_wrapped = True  # type: ignore[attr-defined]
        module.build_detection = wrapped


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
    object is one call; holding it keeps its id from being reused within the test."""
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
        entry = _invocations[id(outermost_app)] = (outermost_app, len(_invocations) + 1)
    return entry[1]


def _split_lanes() -> None:
    """Diagnostic: count per (lane, application call) instead of per lane, by wrapping the
    detector's lane function. Detections that survive repeat within one request or one call
    of the application; those that vanish were repetition across calls (a test's loop,
    sequential requests on a reused thread)."""
    hook = importlib.import_module("sqlaopt.detect._hook")
    lane = hook.__dict__.get("_lane")
    if lane is None:
        raise LookupError("sqlaopt.detect._hook._lane is gone")
    hook._lane = lambda: (lane(), _invocation())


def _stash_key() -> Any:
    plugin = sys.modules.get("sqlaopt.pytest_plugin")
    return getattr(plugin, "_scope_key", None)


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
        if isinstance(entry, tuple) and len(entry) == 2:
            return entry[1]
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
        _records.append(record)
    _stacks.clear()
    _invocations.clear()


def pytest_sessionfinish(session: pytest.Session) -> None:
    path = os.environ.get(_PATH_ENV)
    if path:
        with open(path, "w", encoding="utf-8") as out:
            for record in _records:
                out.write(json.dumps(record, default=str) + "\n")
