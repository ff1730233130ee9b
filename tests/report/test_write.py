"""sqlaopt.report.write and Report.to_dict: the three formats from code."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path
from typing import get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

import sqlaopt
import sqlaopt.report
from sqlaopt.booking.models import Appointment
from sqlaopt.detect._report import Kind
from sqlaopt.report import _sarif
from sqlaopt.report._findings import Collected, fingerprint, record
from sqlaopt.report._html import render as render_html

from .helpers import HOSTILE_SQL, assert_valid_sarif, detection

pytestmark = pytest.mark.nplusone(mode="off")  # the scopes below are the tests' own


def _n_plus_one(engine: Engine) -> sqlaopt.Report:
    with Session(engine) as session, sqlaopt.detect("record") as report:
        for appointment in session.scalars(select(Appointment).order_by(Appointment.id)
                                           .limit(5)):
            appointment.client  # noqa: B018 (the lazy load is the point)
    return report


def test_to_dict_has_every_field_of_a_finding(booking_engine: Engine) -> None:
    report = _n_plus_one(booking_engine)
    data = report.to_dict()
    assert (data["statements"], data["dropped"]) == (6, 0)
    [finding] = data["findings"]
    line = finding["line"]
    assert finding == {
        **report.detections[0].as_dict(), "target": "Appointment.client",
        "file": "tests/report/test_write.py", "line": line, "function": "_n_plus_one",
    }
    assert finding["location"] == f"tests/report/test_write.py:{line} in _n_plus_one"
    assert finding["count"] == 5 and finding["statement"].startswith("SELECT clients.id")
    assert json.loads(json.dumps(data)) == data


def test_the_json_file_holds_the_same_findings(booking_engine: Engine, tmp_path: Path) -> None:
    report = _n_plus_one(booking_engine)
    written = sqlaopt.report.write(report, tmp_path / "new" / "sqlaopt.json")
    document = json.loads(written.read_text())
    assert {k: v for k, v in document.items() if k != "findings"} == {
        "schema_version": 1, "tool": "sqlaopt", "sqlaopt_version": sqlaopt.__version__,
        "statements": 6, "dropped": 0,
    }
    assert document["findings"] == [{"test": None, "outcome": "reported", **f}
                                    for f in report.to_dict()["findings"]]


def test_a_json_report_converts_to_the_other_formats(tmp_path: Path) -> None:
    detections = [detection(), detection("Appointment.service", 3, "app/a.py:9 in f")]
    for suffix in (".sarif", ".html"):
        direct = sqlaopt.report.write(detections, tmp_path / f"direct{suffix}")
        findings = json.loads(sqlaopt.report.write(detections, tmp_path / "r.json")
                              .read_text())["findings"]
        converted = sqlaopt.report.write(findings, tmp_path / f"converted{suffix}")
        assert converted.read_text() == direct.read_text()


def test_sarif_is_valid_and_has_one_rule_per_kind(booking_engine: Engine,
                                                  tmp_path: Path) -> None:
    report = _n_plus_one(booking_engine)
    log = assert_valid_sarif(sqlaopt.report.write(report, tmp_path / "r.sarif"))
    run = log["runs"][0]
    rules = [rule["id"] for rule in run["tool"]["driver"]["rules"]]
    assert rules == list(get_args(Kind))
    [result] = run["results"]
    assert rules[result["ruleIndex"]] == result["ruleId"] == "lazy_load"
    assert result["level"] == "warning"
    location = result["locations"][0]["physicalLocation"]
    assert location["artifactLocation"] == {"uri": "tests/report/test_write.py",
                                            "uriBaseId": "%SRCROOT%"}
    assert location["region"]["startLine"] == report.to_dict()["findings"][0]["line"]
    assert result["properties"]["count"] == 5
    assert "Fix: joinedload(Appointment.client)" in result["message"]["text"]


def test_sarif_groups_a_place_found_by_many_tests(tmp_path: Path) -> None:
    findings = [record(detection(count=n), test=f"t.py::test_{n}", outcome=outcome)
                for n, outcome in ((2, "accepted"), (3, "failed"), (4, "reported"))]
    moved = record(detection(location="app/schedule.py:35 in schedule_entry"), test="t.py::x")
    log = assert_valid_sarif(sqlaopt.report.write([*findings, moved], tmp_path / "r.sarif"))
    [result] = log["runs"][0]["results"]
    assert result["level"] == "error"  # the most severe outcome
    assert result["properties"]["count"] == 2 + 3 + 4 + 5
    assert result["properties"]["tests"] == ["t.py::test_2", "t.py::test_3", "t.py::test_4",
                                             "t.py::x"]
    assert result["locations"][0]["physicalLocation"]["region"] == {"startLine": 31}
    [related] = result["relatedLocations"]
    assert related["physicalLocation"]["region"] == {"startLine": 35}


def test_unknown_kinds_get_a_rule_too(tmp_path: Path) -> None:
    finding = {**record(detection()), "kind": "made_up_kind"}
    log = assert_valid_sarif(sqlaopt.report.write([finding], tmp_path / "r.sarif"))
    rules = log["runs"][0]["tool"]["driver"]["rules"]
    assert rules[-1]["id"] == "made_up_kind"
    assert rules[-1]["shortDescription"]["text"] == "sqlaopt finding: made up kind"
    assert log["runs"][0]["results"][0]["ruleIndex"] == len(rules) - 1
    assert all(sqlaopt.report.rule_description(k)[0] for k in get_args(Kind))


def test_files_outside_the_root_are_absolute_uris(tmp_path: Path) -> None:
    outside = detection(location="/elsewhere/app.py:3 in f")
    log = assert_valid_sarif(sqlaopt.report.write([outside], tmp_path / "r.sarif"))
    artifact = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"][
        "artifactLocation"]
    assert artifact == {"uri": "file:///elsewhere/app.py"}


def test_paths_are_relative_to_the_root(tmp_path: Path) -> None:
    inside = detection(location=f"{tmp_path}/pkg/app.py:3 in f")
    written = sqlaopt.report.write([inside], tmp_path / "r.json", root=tmp_path)
    assert json.loads(written.read_text())["findings"][0]["file"] == "pkg/app.py"


texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=20)


@given(kind=texts, target=texts, file=texts, function=texts, suggestion=texts,
       line=st.integers(1, 10**6), other_line=st.integers(1, 10**6))
def test_fingerprints_leave_the_line_out(kind: str, target: str, file: str, function: str,
                                         suggestion: str, line: int, other_line: int) -> None:
    finding = {"kind": kind, "target": target, "file": file, "function": function,
               "suggestion": suggestion, "line": line}
    assert fingerprint(finding) == fingerprint({**finding, "line": other_line})
    for field in ("kind", "target", "file", "function", "suggestion"):
        assert fingerprint(finding) != fingerprint({**finding, field: finding[field] + "x"})


@pytest.mark.parametrize(("path", "message"), [
    ("report.srif", "has suffix '.srif'; accepted: .json, .sarif, .html (did you mean '.sarif'?)"),
    ("report", "has no suffix; accepted: .json, .sarif, .html"),
    ("report.xml", "has suffix '.xml'; accepted: .json, .sarif, .html"),
])
def test_an_unknown_suffix_names_the_accepted_ones(tmp_path: Path, path: str,
                                                   message: str) -> None:
    with pytest.raises(sqlaopt.report.ReportError, match="^.*" + message.replace(
            "(", r"\(").replace(")", r"\)").replace("?", r"\?") + "$"):
        sqlaopt.report.write([], tmp_path / path)
    assert not (tmp_path / path).exists()


@pytest.mark.parametrize(("source", "message"), [
    ("not findings", "cannot write a report of str"),
    ({"findings": []}, "cannot write a report of dict"),
    ([1], "finding 1 is a int"),
    ([{"kind": "lazy_load"}], "finding 1 lacks or mistypes target (str), count (int)"),
    ([{**record(detection()), "outcome": "fine"}], "outcome 'fine'; accepted: failed, "
                                                   "reported, accepted"),
])
def test_unreadable_findings_are_a_report_error(tmp_path: Path, source: object,
                                                message: str) -> None:
    with pytest.raises(sqlaopt.report.ReportError, match=message.replace("(", r"\(")
                       .replace(")", r"\)")):
        sqlaopt.report.write(source, tmp_path / "r.json")
    assert issubclass(sqlaopt.report.ReportError, sqlaopt.SqlaoptError)


def test_html_escapes_everything(tmp_path: Path) -> None:
    hostile = detection(statement=HOSTILE_SQL, suggestion="<b>bold</b>")
    finding = record(hostile, test='t.py::test[<script>alert("x")</script>]')
    page = sqlaopt.report.write([finding], tmp_path / "r.html").read_text()
    assert page.count("<script>") == 1  # the page's own
    assert "<img" not in page and "<b>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=" in page


def test_html_fetches_nothing(tmp_path: Path) -> None:
    page = sqlaopt.report.write([detection()], tmp_path / "r.html").read_text()
    assert " src=" not in page and " href=" not in page and "url(" not in page
    assert "default-src 'none'" in page


def test_an_empty_report_is_valid_in_every_format(tmp_path: Path) -> None:
    log = assert_valid_sarif(sqlaopt.report.write(sqlaopt.Report(), tmp_path / "r.sarif"))
    assert log["runs"][0]["results"] == []
    assert json.loads(sqlaopt.report.write([], tmp_path / "r.json").read_text())[
        "findings"] == []
    assert "No findings." in sqlaopt.report.write([], tmp_path / "r.html").read_text()


class _Tags(HTMLParser):
    def __init__(self, page: str) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


_BENIGN = _Tags(render_html(Collected([record(detection(), test="t.py::test")]), "0"))


_printable = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1)


@given(sql=_printable, test=_printable)
def test_any_text_stays_text_in_the_page(sql: str, test: str) -> None:
    page = _Tags(render_html(Collected([record(detection(statement=sql), test=test)]), "0"))
    assert page.tags == _BENIGN.tags
    assert sql in page.text and test in page.text


def test_sarif_keeps_the_most_severe_results_within_githubs_limits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_sarif, "_MAX_RESULTS", 2)
    monkeypatch.setattr(_sarif, "_MAX_RELATED", 1)
    findings = [record(detection(f"M.r{n}", location=f"app/a.py:{n} in f"), outcome=outcome)
                for n, outcome in ((1, "accepted"), (2, "failed"), (3, "reported"))]
    findings += [record(detection("M.r2", location=f"app/a.py:{n} in f")) for n in (7, 8)]
    run = assert_valid_sarif(sqlaopt.report.write(findings, tmp_path / "r.sarif"))["runs"][0]
    assert [(r["ruleId"], r["level"]) for r in run["results"]] == [
        ("lazy_load", "error"), ("lazy_load", "warning")]
    assert run["properties"] == {"omittedResults": 1}
    assert len(run["results"][0]["relatedLocations"]) == 1


def test_a_hand_made_finding_is_located_from_its_location(tmp_path: Path) -> None:
    made = {"kind": "lazy_load", "target": "A.b", "count": 2, "location": "app/x.py:3 in f",
            "suggestion": "selectinload(A.b)", "statement": "SELECT 1"}
    written = sqlaopt.report.write([made], tmp_path / "r.json")
    [finding] = json.loads(written.read_text())["findings"]
    assert finding == {**made, "test": None, "outcome": "reported", "file": "app/x.py",
                       "line": 3, "function": "f"}
    assert_valid_sarif(sqlaopt.report.write([made], tmp_path / "r.sarif"))
