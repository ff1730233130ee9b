"""pytest plugin: every test runs in its own N+1 scope (registered through ``pytest11``).

- ``--sqlaopt-nplusone`` / ini ``sqlaopt_nplusone``: ``fail`` (default: the test fails at the
  end of its body, listing each N+1), ``raise``, ``warn``, ``log``, ``record``, ``off``.
- ``@pytest.mark.nplusone(mode=..., allow=[...], threshold=..., test_loops=...,
  unused_eager=...)`` per test;
  ``@pytest.mark.max_queries(n)`` fails a test whose body ran more than ``n`` statements.
- Fixture ``nplusone``: the running test's :class:`sqlaopt.Report`.
- ``--sqlaopt-batched`` / ini ``sqlaopt_batched``: ``report`` (default: an N+1 that
  :func:`sqlaopt.batch` already batched is in the report but does not fail the test) or
  ``fail``.
- ``--sqlaopt-findings`` / ini ``sqlaopt_findings`` / marker ``nplusone(findings=...)``:
  ``report`` (default: unused eager loads, row explosions and row-by-row writes, which are not
  N+1s, are in the summary and the reports but do not fail the test) or ``fail``.
- ``--sqlaopt-write-baseline FILE`` records today's detections (merged across pytest-xdist
  workers); ``--sqlaopt-baseline FILE`` fails only on detections that are not in it.
- ``--sqlaopt-report PATH`` (repeatable) writes every finding of the run, merged across
  workers, as ``.json``, ``.sarif`` or ``.html`` (by :mod:`sqlaopt.report`), paths relative to
  ``--sqlaopt-report-root`` (default: pytest's rootdir).

The test's scope is the authority: what middlewares, Session scopes, request units and
application ``detect()`` blocks find inside the test also reaches it. See docs/pytest.md.
"""

from __future__ import annotations

import difflib
import functools
import os
from collections.abc import Generator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from .detect import Report
from .detect import _baseline as baseline
from .detect._callsite import TestCode, restore_test_code, set_test_code, treat_as_library
from .detect._hook import close_counter, enter, leave, open_counter, set_test_scope
from .detect._propagate import propagate_context
from .detect._report import END_OF_SCOPE_KINDS, Detection
from .detect._scope import Scope, Settings
from .detect._units import close_detached, install_request_units, unit
from .report import ReportError
from .report._findings import Collected, record
from .report._write import check_path, write_collected

__all__ = ["nplusone"]

PLUGIN_MODES = ("fail", "raise", "warn", "log", "record", "off")
BATCHED = ("report", "fail")
FINDINGS = BATCHED
_SCOPE_MODE = {"fail": "record"}  # the scope collects; the plugin fails the test at the end
_settings_key = pytest.StashKey[tuple["_Verdict", Settings, Report]]()
_state_key = pytest.StashKey[baseline.SessionState]()
_outer_test_code_key = pytest.StashKey[TestCode]()
_outer_scope_key = pytest.StashKey["Scope | None"]()
_inner_test_key = pytest.StashKey[tuple[Any, Any]]()
_MARKER_OPTIONS = ("mode", "allow", "threshold", "test_loops", "unused_eager", "findings")


class _Reports(NamedTuple):
    """``--sqlaopt-report``: where to write, the root of the paths, the findings so far."""

    paths: list[Path]
    root: Path
    collected: Collected


_reports_key = pytest.StashKey[_Reports]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sqlaopt", "sqlaopt N+1 detection")
    group.addoption("--sqlaopt-nplusone", choices=PLUGIN_MODES, default=None,
                    help="what an N+1 in a test does (default: fail the test at its end)")
    group.addoption("--sqlaopt-test-loops", action="store_true", default=None,
                    help="also report loops that live in test code (a test's own repetition)")
    group.addoption("--sqlaopt-write-baseline", metavar="FILE", default=None,
                    help="record every detection of this run in FILE (JSON)")
    group.addoption("--sqlaopt-baseline", metavar="FILE", default=None,
                    help="fail only on detections that are not in FILE")
    parser.addini("sqlaopt_nplusone", f"default N+1 mode: {', '.join(PLUGIN_MODES)}",
                  default="fail")
    parser.addini("sqlaopt_test_loops", "report loops that live in test code", type="bool",
                  default=False)
    group.addoption("--sqlaopt-batched", choices=BATCHED, default=None,
                    help="what an N+1 that sqlaopt.batch() already batched does: report "
                    "(default) or fail")
    parser.addini("sqlaopt_batched", "batched N+1s: report or fail", default="report")
    group.addoption("--sqlaopt-findings", choices=FINDINGS, default=None,
                    help="what findings that are not N+1s (unused eager loads, row explosions, "
                    "row-by-row writes) do: report (default) or fail")
    parser.addini("sqlaopt_findings", "findings that are not N+1s: report or fail",
                  default="report")
    group.addoption("--sqlaopt-report", metavar="PATH", action="append", default=[],
                    help="write every finding of the run to PATH: .json, .sarif or .html "
                    "(repeatable)")
    group.addoption("--sqlaopt-report-root", metavar="DIR", default=None,
                    help="file paths in reports are relative to DIR (default: rootdir); "
                    "for SARIF, the repository's root")
    parser.addini("sqlaopt_library", "packages or directories whose frames are library code",
                  type="linelist", default=[])


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "nplusone(mode=None, allow=(), threshold=2, test_loops=False, unused_eager=None, "
        "findings=None): N+1 detection for this test",
    )
    config.addinivalue_line("markers", "max_queries(n): fail if the test body runs > n statements")
    _check_mode(_default_mode(config), "sqlaopt_nplusone")
    for name in ("batched", "findings"):
        _check_choice(_choice(config, name), f"sqlaopt_{name}")
    try:
        treat_as_library(*config.getini("sqlaopt_library"))
    except (TypeError, ValueError) as error:
        raise pytest.UsageError(f"sqlaopt_library: {error}") from error
    state = baseline.SessionState()
    path = config.getoption("--sqlaopt-baseline")
    if path:
        try:
            state.accepted = baseline.read(Path(path))
        except baseline.BaselineError as error:
            raise pytest.UsageError(f"--sqlaopt-baseline {path}: {error}") from None
    config.stash[_state_key] = state
    _configure_reports(config)
    install_request_units()
    propagate_context(True)


def _configure_reports(config: pytest.Config) -> None:
    paths = config.getoption("--sqlaopt-report")
    if not paths:
        return
    try:
        targets = [check_path(path) for path in paths]
    except ReportError as error:
        raise pytest.UsageError(f"--sqlaopt-report {error}") from None
    root = Path(config.getoption("--sqlaopt-report-root") or config.rootpath).resolve()
    config.stash[_reports_key] = _Reports(targets, root, Collected([]))


def _default_mode(config: pytest.Config) -> str:
    mode: str = config.getoption("--sqlaopt-nplusone") or config.getini("sqlaopt_nplusone")
    return mode


def _choice(config: pytest.Config, name: str) -> str:
    """``--sqlaopt-NAME``, else ini ``sqlaopt_NAME``: ``report`` or ``fail``."""
    value: str = config.getoption(f"--sqlaopt-{name}") or config.getini(f"sqlaopt_{name}")
    return value


def _check_choice(value: object, where: str) -> str:
    return _checked(value, FINDINGS, where, "accepted")


def _check_mode(mode: object, where: str) -> str:
    return _checked(mode, PLUGIN_MODES, where, "a mode")


def _checked(value: object, accepted: tuple[str, ...], where: str, what: str) -> str:
    """``value`` if it is one of ``accepted``, else a usage error naming the closest one."""
    if value not in accepted:
        close = difflib.get_close_matches(str(value), accepted, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise pytest.UsageError(
            f"{where} = {value!r} is not {what}; accepted: {', '.join(accepted)}{hint}"
        )
    return str(value)


def pytest_collection_finish(session: pytest.Session) -> None:
    # Not pytest's testpaths: projects list their source directory there to run doctests.
    session.config.stash[_outer_test_code_key] = set_test_code(
        (str(item.path) for item in session.items), str(session.config.rootpath)
    )


def pytest_unconfigure(config: pytest.Config) -> None:
    outer = config.stash.get(_outer_test_code_key, None)
    if outer is not None:  # a session run inside another (pytester): give the files back
        restore_test_code(outer)


class _Verdict(NamedTuple):
    """What fails the test: its mode, and whether batched N+1s and findings that are not
    N+1s fail it too."""

    mode: str
    batched: bool
    findings: bool


def _settings(item: pytest.Item) -> tuple[_Verdict, Settings]:
    config = item.config
    mode = _default_mode(config)
    test_loops = bool(config.getoption("--sqlaopt-test-loops") or
                      config.getini("sqlaopt_test_loops"))
    options: dict[str, Any] = {}
    marker = item.get_closest_marker("nplusone")
    if marker is not None:
        if marker.args:
            raise pytest.UsageError(
                f"{item.nodeid}: use nplusone(mode=..., allow=[...], threshold=...)"
            )
        options = dict(marker.kwargs)
        unknown = set(options) - set(_MARKER_OPTIONS)
        if unknown:
            raise pytest.UsageError(
                f"{item.nodeid}: unknown nplusone option(s) {sorted(unknown)}; "
                f"accepted: {', '.join(_MARKER_OPTIONS)}"
            )
    mode = _check_mode(options.get("mode", mode), f"{item.nodeid}: nplusone(mode)")
    findings = _check_choice(options.get("findings", _choice(config, "findings")),
                             f"{item.nodeid}: nplusone(findings)")
    try:
        settings = Settings.checked(
            _SCOPE_MODE.get(mode, mode), options.get("threshold", 2), options.get("allow", ()),
            test_loops=bool(options.get("test_loops", test_loops)),
            unused_eager=options.get("unused_eager"),
        )
    except (TypeError, ValueError) as error:
        raise pytest.UsageError(f"{item.nodeid}: {error}") from None
    verdict = _Verdict(mode, _choice(config, "batched") == "fail", findings == "fail")
    return verdict, settings


def pytest_runtest_setup(item: pytest.Item) -> None:
    verdict, settings = _settings(item)
    item.stash[_settings_key] = (verdict, settings, Report())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    verdict, settings, report = item.stash[_settings_key]
    budget = _budget(item)
    counter, counter_token = open_counter()
    scope = None if verdict.mode == "off" else _open_test_scope(item, settings, report)
    failing: list[Detection] = []
    try:
        outcome = yield
    finally:  # whatever the body raised: the test's scope must not outlive it
        close_counter(counter_token)
        if scope is not None:
            failing = _close_test_scope(item, scope)
    if scope is not None:
        _record_findings(item, scope, failing)
        if failing:
            failure = pytest.fail.Exception(baseline.failure_text(item.nodeid, failing),
                                            pytrace=False)
            _raise_at(failing[0].loop or failing[0].location, failure)
    if budget is not None and counter.count > budget:
        statements = "\n".join(f"  {i}. {s}" for i, s in enumerate(counter.statements, 1))
        pytest.fail(f"max_queries({budget}): the test ran {counter.count} SQL statements:\n"
                    f"{statements}", pytrace=False)
    return outcome


def _open_test_scope(item: pytest.Item, settings: Settings, report: Report) -> Scope:
    # The walk up the stack can stop at the test function: pytest's own frames are the same
    # for every statement of the test.
    function = _examples_as_units(item)
    scope = enter(settings, anchor=getattr(function, "__code__", None), owns=True)
    scope.report = report
    state = item.config.stash[_state_key]
    if state.accepted:
        scope.tolerated = lambda d: baseline.entry(item.nodeid, d) in state.accepted
    item.stash[_outer_scope_key] = set_test_scope(scope)
    return scope


def _examples_as_units(item: pytest.Item) -> Any:
    """The test function itself. A hypothesis test runs it once per example: each example is
    a unit of work of its own (repeating the test is not an N+1), through the
    ``hypothesis.inner_test`` hook that hypothesis offers plugins for wrapping examples."""
    function = getattr(item, "obj", None)
    handle: Any = getattr(function, "hypothesis", None)
    inner = getattr(handle, "inner_test", None)
    if inner is None:
        return function

    @functools.wraps(inner)
    def one_example(*args: Any, **kwargs: Any) -> Any:
        with unit(f"example of {item.nodeid}"):
            return inner(*args, **kwargs)

    handle.inner_test = one_example
    item.stash[_inner_test_key] = (handle, inner)
    return inner


def _close_test_scope(item: pytest.Item, scope: Scope) -> list[Detection]:
    """End the test's scope; the detections that fail the test."""
    wrapped = item.stash.get(_inner_test_key, None)
    if wrapped is not None:
        wrapped[0].inner_test = wrapped[1]
    if scope.closed:
        return []
    close_detached()  # request scopes whose response was never closed
    set_test_scope(item.stash.get(_outer_scope_key, None))
    leave(scope)  # which finalizes it
    failing = _failing(item.stash[_settings_key][0], scope)
    item.config.stash[_state_key].remember(item.nodeid, scope.report.detections, failing)
    return failing


def _budget(item: pytest.Item) -> int | None:
    marker = item.get_closest_marker("max_queries")
    if marker is None:
        return None
    budget = marker.args[0] if marker.args else marker.kwargs.get("n")
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 0:
        raise pytest.UsageError(f"{item.nodeid}: max_queries(n) needs a non-negative int")
    return budget


def _failing(verdict: _Verdict, scope: Scope) -> list[Detection]:
    """The detections that fail the test, in a mode that fails: not in the baseline, N+1s
    (other findings only with ``findings=fail``), not batched (unless ``batched=fail``)."""
    if verdict.mode not in ("fail", "raise"):
        return []
    return [d for d in scope.actionable()
            if (verdict.batched or not d.batched)
            and (verdict.findings or d.kind not in END_OF_SCOPE_KINDS)]


def _record_findings(item: pytest.Item, scope: Scope, failing: list[Detection]) -> None:
    """Every detection of the test for ``--sqlaopt-report``, with whether it failed the test,
    the baseline accepted it, or it was only reported."""
    reports = item.config.stash.get(_reports_key, None)
    if reports is None:
        return
    failed = {id(d) for d in failing}
    tolerated = scope.tolerated
    for detection in scope.report.detections:
        outcome = ("failed" if id(detection) in failed
                   else "accepted" if tolerated is not None and tolerated(detection)
                   else "reported")
        reports.collected.records.append(record(detection, test=item.nodeid, outcome=outcome,
                                                root=reports.root))
    reports.collected.dropped += scope.report.dropped


def _raise_at(location: str, failure: BaseException) -> None:
    """Raise ``failure`` from the loop's own file and line, which is where the one-line
    report styles (``--tb=line``) point; pytest's own frames would tell the reader nothing."""
    place = location.rsplit(" in ", 1)[0]
    filename, _, line = place.rpartition(":")
    if not filename or not line.isdigit():
        raise failure
    code = compile("\n" * (int(line) - 1) + "raise failure", os.path.abspath(filename), "exec")
    exec(code, {"failure": failure})


@pytest.fixture
def nplusone(request: pytest.FixtureRequest) -> Report:
    """The running test's :class:`sqlaopt.Report` (filled while the test body runs)."""
    report: Report = request.node.stash[_settings_key][2]
    return report


# ---------------------------------------------------------------- end of the session


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """pytest-xdist: take a worker's detections into the controller's (for the baseline,
    the summary and the reports)."""
    state = node.config.stash.get(_state_key, None)
    workeroutput = getattr(node, "workeroutput", {})
    output = workeroutput.get("sqlaopt")
    if state is not None and output:
        state.merge(output)
    reports = node.config.stash.get(_reports_key, None)
    found = workeroutput.get("sqlaopt_report")
    if reports is not None and found:
        reports.collected.records.extend(found["records"])
        reports.collected.dropped += found["dropped"]


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    state = config.stash.get(_state_key, None)
    if state is None:
        return
    reports = config.stash.get(_reports_key, None)
    if hasattr(config, "workerinput"):  # an xdist worker: hand everything to the controller
        config.workeroutput["sqlaopt"] = state.export()  # type: ignore[attr-defined]
        if reports is not None:
            config.workeroutput["sqlaopt_report"] = {  # type: ignore[attr-defined]
                "records": reports.collected.records, "dropped": reports.collected.dropped}
        return
    target = config.getoption("--sqlaopt-write-baseline")
    if target:
        try:
            baseline.write(Path(target), state)
        except OSError as error:
            raise pytest.UsageError(
                f"--sqlaopt-write-baseline {target}: cannot write it ({error})"
            ) from None
    if reports is not None:
        _write_reports(reports)


def _write_reports(reports: _Reports) -> None:
    for path in reports.paths:
        try:
            write_collected(reports.collected, path)
        except OSError as error:
            raise pytest.UsageError(f"--sqlaopt-report {path}: cannot write it ({error})"
                                    ) from None


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    state = config.stash.get(_state_key, None)
    if state is None or hasattr(config, "workerinput"):
        return
    # Failing tests already name what failed them; the summary lists the rest.
    fails = _default_mode(config) in ("fail", "raise")
    lines = state.summary(failed=False if fails else None)
    if lines:
        terminalreporter.write_sep("=", "sqlaopt summary")
        for line in lines:
            terminalreporter.write_line(line)
