"""--sqlaopt-report through the pytest plugin, on generated suites run with pytester."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ..detect.test_pytest_plugin import HEADER
from .helpers import assert_valid_sarif, rendered_dom

# The suites run in this process: this test's own scope must not see their statements.
pytestmark = pytest.mark.nplusone(mode="off")

SUITE = """
    import pytest
    from helpers import n_plus_one
    def test_fails(): n_plus_one()
    @pytest.mark.nplusone(mode="record")
    def test_records(): n_plus_one()
    @pytest.mark.nplusone(mode="off")
    def test_off(): n_plus_one()
"""


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(helpers=HEADER)
    return pytester


def _findings(path: Path) -> list[dict[str, Any]]:
    document = json.loads(path.read_text())
    assert document["schema_version"] == 1 and document["tool"] == "sqlaopt"
    findings: list[dict[str, Any]] = document["findings"]
    return findings


def test_every_format_in_one_run(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_app=SUITE)
    paths = [suite.path / "out" / f"sqlaopt.{suffix}" for suffix in ("json", "sarif", "html")]
    result = suite.runpytest(*(f"--sqlaopt-report={p}" for p in paths))
    result.assert_outcomes(passed=2, failed=1)
    findings = _findings(paths[0])
    assert [(f["test"], f["outcome"], f["kind"], f["target"], f["count"], f["file"],
             f["line"], f["function"]) for f in findings] == [
        ("test_app.py::test_fails", "failed", "lazy_load", "Appointment.client", 5,
         "helpers.py", 19, "n_plus_one"),
        ("test_app.py::test_records", "reported", "lazy_load", "Appointment.client", 5,
         "helpers.py", 19, "n_plus_one"),
    ]
    assert findings[0]["location"] == "helpers.py:19 in n_plus_one"
    assert findings[0]["suggestion"].startswith("joinedload(Appointment.client)")
    assert findings[0]["statement"].startswith("SELECT clients.id")
    [result_] = assert_valid_sarif(paths[1])["runs"][0]["results"]
    assert result_["level"] == "error"
    assert result_["properties"]["tests"] == ["test_app.py::test_fails",
                                              "test_app.py::test_records"]
    assert result_["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == \
        "helpers.py"
    dom = rendered_dom(paths[2])  # the page as headless Chromium shows it
    assert '<table id="findings" data-sortable="">' in dom
    assert "test_app.py::test_records" in dom and "helpers.py:19 in n_plus_one" in dom
    assert '<td data-sort="0" class="failed">failed</td>' in dom


def test_xdist_workers_write_one_merged_report(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_app="""
        from helpers import n_plus_one
        def test_a(): n_plus_one()
        def test_b(): n_plus_one()
        def test_c(): n_plus_one()
        def test_d(): n_plus_one()
    """)
    json_path, sarif_path = suite.path / "r.json", suite.path / "r.sarif"
    result = suite.runpytest_subprocess("-n", "2", "--sqlaopt-nplusone=record",
                                        f"--sqlaopt-report={json_path}",
                                        f"--sqlaopt-report={sarif_path}")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*2 workers*"])
    findings = _findings(json_path)
    assert [(f["test"], f["outcome"], f["count"]) for f in findings] == [
        (f"test_app.py::test_{name}", "reported", 5) for name in "abcd"
    ]
    [merged] = assert_valid_sarif(sarif_path)["runs"][0]["results"]
    assert (merged["level"], merged["properties"]["count"], merged["properties"]["testCount"]) \
        == ("warning", 20, 4)


def test_baseline_accepted_findings_are_in_the_report(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_app="""
        from helpers import n_plus_one
        def test_old(): n_plus_one()
    """)
    baseline = suite.path / "baseline.json"
    suite.runpytest(f"--sqlaopt-write-baseline={baseline}", "--sqlaopt-nplusone=record")
    suite.makepyfile(test_app="""
        from helpers import n_plus_one
        def test_old(): n_plus_one()
        def test_new(): n_plus_one()
    """)
    report = suite.path / "r.json"
    suite.runpytest(f"--sqlaopt-baseline={baseline}", f"--sqlaopt-report={report}"
                    ).assert_outcomes(passed=1, failed=1)
    assert sorted((f["test"], f["outcome"]) for f in _findings(report)) == [
        ("test_app.py::test_new", "failed"), ("test_app.py::test_old", "accepted"),
    ]


def test_paths_are_relative_to_the_report_root(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_app="""
        from helpers import n_plus_one
        def test_a(): n_plus_one()
    """)
    report = suite.path / "r.sarif"
    suite.runpytest("--sqlaopt-nplusone=record", f"--sqlaopt-report={report}",
                    f"--sqlaopt-report-root={suite.path.parent}")
    [result] = assert_valid_sarif(report)["runs"][0]["results"]
    assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == \
        f"{suite.path.name}/helpers.py"


def test_a_run_without_findings_writes_empty_reports(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_app="def test_x(): pass\n")
    sarif, page = suite.path / "r.sarif", suite.path / "r.html"
    suite.runpytest(f"--sqlaopt-report={sarif}", f"--sqlaopt-report={page}"
                    ).assert_outcomes(passed=1)
    assert assert_valid_sarif(sarif)["runs"][0]["results"] == []
    assert "No findings." in page.read_text()


def test_an_unknown_suffix_is_a_usage_error(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_app="def test_x(): pass\n")
    result = suite.runpytest("--sqlaopt-report=out/report.xml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --sqlaopt-report out/report.xml has suffix '.xml'; "
                                 "accepted: .json, .sarif, .html"])
    assert not (suite.path / "out").exists()


def test_an_unwritable_report_is_a_usage_error(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_app="def test_x(): pass\n")
    (suite.path / "blocker").write_text("a file, not a directory")
    result = suite.runpytest(f"--sqlaopt-report={suite.path / 'blocker' / 'r.json'}")
    result.stderr.fnmatch_lines(["*--sqlaopt-report *blocker/r.json: cannot write it*"])
