"""pytest plugin: every test runs in its own N+1 scope (registered through ``pytest11``).

- ``--sqlaopt-nplusone`` / ini ``sqlaopt_nplusone``: ``raise`` (default), ``warn``,
  ``record``, ``off``.
- ``@pytest.mark.nplusone(mode=..., allow=[...], threshold=...)`` per test;
  ``@pytest.mark.max_queries(n)`` fails a test whose body ran more than ``n`` statements.
- Fixture ``nplusone``: the running test's :class:`sqlaopt.Report`.
- ``--sqlaopt-batched`` / ini ``sqlaopt_batched``: ``report`` (default: an N+1 that
  :func:`sqlaopt.batch` already batched is in the report but does not fail the test) or
  ``fail``.
- ``--sqlaopt-write-baseline FILE`` records today's detections; ``--sqlaopt-baseline FILE``
  fails only on detections that are not in it.

The scope covers the test body (the call phase), not fixture set-up. A test whose body caused
an N+1 fails even when application code caught the :class:`~sqlaopt.NPlusOneError`.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from ._errors import NPlusOneError
from .detect import Detection, Report
from .detect._hook import close_counter, enter, leave, open_counter
from .detect._scope import Settings

__all__ = ["nplusone"]

_PLUGIN_MODES = ("raise", "warn", "record", "off")
_BATCHED = ("report", "fail")
_scope_key = pytest.StashKey[tuple[Settings, Report]]()
_baseline_key = pytest.StashKey[set[tuple[str, ...]]]()
_seen_key = pytest.StashKey[list[dict[str, Any]]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sqlaopt", "sqlaopt N+1 detection")
    group.addoption("--sqlaopt-nplusone", choices=_PLUGIN_MODES, default=None,
                    help="what an N+1 in a test does (default: raise, i.e. fail the test)")
    group.addoption("--sqlaopt-write-baseline", metavar="FILE", default=None,
                    help="record every detection of this run in FILE (JSON)")
    group.addoption("--sqlaopt-baseline", metavar="FILE", default=None,
                    help="fail only on detections that are not in FILE")
    parser.addini("sqlaopt_nplusone", "default N+1 mode: raise, warn, record or off",
                  default="raise")
    # sqlaopt.batching: an N+1 that sqlaopt.batch() already batched is reported, not failed,
    # unless the suite asks for it.
    group.addoption("--sqlaopt-batched", choices=_BATCHED, default=None,
                    help="what a batched N+1 does in raise mode (default: report)")
    parser.addini("sqlaopt_batched", "batched N+1s in raise mode: report or fail",
                  default="report")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "nplusone(mode=None, allow=(), threshold=2): N+1 detection for this test"
    )
    config.addinivalue_line("markers", "max_queries(n): fail if the test body runs > n statements")
    mode = config.getoption("--sqlaopt-nplusone") or config.getini("sqlaopt_nplusone")
    if mode not in _PLUGIN_MODES:
        raise pytest.UsageError(
            f"sqlaopt_nplusone = {mode!r} is not a mode; accepted: {', '.join(_PLUGIN_MODES)}"
        )
    batched = config.getoption("--sqlaopt-batched") or config.getini("sqlaopt_batched")
    if batched not in _BATCHED:
        raise pytest.UsageError(
            f"sqlaopt_batched = {batched!r} is not accepted; accepted: {', '.join(_BATCHED)}"
        )
    config.stash[_seen_key] = []
    baseline = config.getoption("--sqlaopt-baseline")
    config.stash[_baseline_key] = _read_baseline(Path(baseline)) if baseline else set()


def _settings(item: pytest.Item) -> Settings:
    mode = item.config.getoption("--sqlaopt-nplusone") or item.config.getini("sqlaopt_nplusone")
    marker = item.get_closest_marker("nplusone")
    if marker is None:
        return Settings.checked(mode, 2, ())
    if marker.args:
        raise pytest.UsageError(
            f"{item.nodeid}: use nplusone(mode=..., allow=[...], threshold=...)"
        )
    options = dict(marker.kwargs)
    unknown = set(options) - {"mode", "allow", "threshold"}
    if unknown:
        raise pytest.UsageError(
            f"{item.nodeid}: unknown nplusone option(s) {sorted(unknown)}; "
            "accepted: mode, allow, threshold"
        )
    return Settings.checked(options.get("mode", mode), options.get("threshold", 2),
                            options.get("allow", ()))


def pytest_runtest_setup(item: pytest.Item) -> None:
    item.stash[_scope_key] = (_settings(item), Report())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    settings, report = item.stash[_scope_key]
    budget = _budget(item)
    # The walk up the stack can stop at the test function: pytest's own frames are the same
    # for every statement of the test.
    test_function = getattr(getattr(item, "obj", None), "__code__", None)
    scope, token = enter(settings, anchor=test_function)
    scope.report = report
    baseline = item.config.stash[_baseline_key]
    if baseline:
        scope.tolerated = lambda d: _baseline_entry(item.nodeid, d) in baseline
    counter, counter_token = open_counter()
    try:
        outcome = yield
    except NPlusOneError:
        _remember(item, report)
        raise
    finally:
        close_counter(counter_token)
        leave(scope, token)
    _remember(item, report)
    _fail_on_new_detections(item, settings, report)
    if budget is not None and counter.count > budget:
        statements = "\n".join(f"  {i}. {s}" for i, s in enumerate(counter.statements, 1))
        pytest.fail(f"max_queries({budget}): the test ran {counter.count} SQL statements:\n"
                    f"{statements}", pytrace=False)
    return outcome


def _budget(item: pytest.Item) -> int | None:
    marker = item.get_closest_marker("max_queries")
    if marker is None:
        return None
    budget = marker.args[0] if marker.args else marker.kwargs.get("n")
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 0:
        raise pytest.UsageError(f"{item.nodeid}: max_queries(n) needs a non-negative int")
    return budget


def _fail_on_new_detections(item: pytest.Item, settings: Settings, report: Report) -> None:
    if settings.mode != "raise":
        return
    baseline = item.config.stash[_baseline_key]
    fail_batched = (item.config.getoption("--sqlaopt-batched")
                    or item.config.getini("sqlaopt_batched")) == "fail"
    new = [d for d in report.detections if _baseline_entry(item.nodeid, d) not in baseline
           and (fail_batched or not d.batched)]
    if new:
        listing = "\n".join(f"  {d}" for d in new)
        pytest.fail(
            f"N+1 detected in {item.nodeid} ({len(new)}):\n{listing}\n"
            "(to accept one: @pytest.mark.nplusone(allow=['Model.attr']) or sqlaopt.allow(...); "
            "to opt a test out: @pytest.mark.nplusone(mode='off'))",
            pytrace=False,
        )


@pytest.fixture
def nplusone(request: pytest.FixtureRequest) -> Report:
    """The running test's :class:`sqlaopt.Report` (filled while the test body runs)."""
    report: Report = request.node.stash[_scope_key][1]
    return report


def _baseline_entry(nodeid: str, detection: Detection) -> tuple[str, ...]:
    # Line numbers move when code is edited; the file and function identify the loop well enough.
    where = detection.location.split(":", 1)[0] + " " + detection.location.rsplit(" in ", 1)[-1]
    target = detection.target if detection.relationship else detection.statement
    return (nodeid, detection.kind, target, where)


def _remember(item: pytest.Item, report: Report) -> None:
    seen = item.config.stash[_seen_key]
    for detection in report.detections:
        entry = _baseline_entry(item.nodeid, detection)
        seen.append(dict(zip(("test", "kind", "target", "where"), entry, strict=True)))


def _read_baseline(path: Path) -> set[tuple[str, ...]]:
    try:
        entries = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise pytest.UsageError(f"--sqlaopt-baseline {path}: cannot read it ({error})") from error
    return {(e["test"], e["kind"], e["target"], e["where"]) for e in _entries(entries)}


def _entries(data: Any) -> Iterator[dict[str, str]]:
    if not isinstance(data, dict) or not isinstance(data.get("detections"), list):
        raise pytest.UsageError("a sqlaopt baseline is {\"detections\": [...]} as written by "
                                "--sqlaopt-write-baseline")
    yield from data["detections"]


def pytest_sessionfinish(session: pytest.Session) -> None:
    target = session.config.getoption("--sqlaopt-write-baseline")
    if target:
        seen: list[dict[str, Any]] = session.config.stash[_seen_key]
        entries = sorted(seen, key=lambda e: tuple(e.values()))
        unique = [dict(t) for t in dict.fromkeys(tuple(e.items()) for e in entries)]
        Path(target).write_text(json.dumps({"detections": unique}, indent=2) + "\n")
