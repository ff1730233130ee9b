"""Issue 13's finding kinds through the pytest plugin, on generated suites (pytester).

As in test_pytest_plugin.py, the application code lives in ``helpers.py`` (not a test module).
"""

from __future__ import annotations

import json

import pytest

from ..report.helpers import assert_valid_sarif

# The suites run in this process: this test's own scope must not see their statements.
pytestmark = pytest.mark.nplusone(mode="off")

HELPERS = '''
import sqlaopt
from sqlalchemy import create_engine, select, update
from sqlalchemy.orm import Session, joinedload, selectinload
from sqlalchemy.pool import StaticPool
from sqlaopt.booking import SampleSize, build_sample
from sqlaopt.booking.models import Appointment, Base, Client, User

engine = create_engine("sqlite://", poolclass=StaticPool,
                       connect_args={"check_same_thread": False})
Base.metadata.create_all(engine)
with Session(engine) as s:
    build_sample(s, SampleSize(clients=20, appointments=800))


def unused_eager():
    with Session(engine) as s:
        query = select(Appointment).options(selectinload(Appointment.service)).limit(20)
        return len(s.scalars(query).all())


def used_eager():
    with Session(engine) as s:
        query = select(Appointment).options(selectinload(Appointment.service)).limit(20)
        return [a.service for a in s.scalars(query).all()]


def exploding():
    with Session(engine) as s:
        query = select(User).options(joinedload(User.appointments), joinedload(User.payments))
        return sum(len(u.appointments) + len(u.payments) for u in s.scalars(query).unique())


def not_exploding():
    with Session(engine) as s:
        query = select(User).options(selectinload(User.appointments),
                                     selectinload(User.payments))
        return sum(len(u.appointments) + len(u.payments) for u in s.scalars(query))


def row_by_row():
    with Session(engine) as s:
        for i in range(1, 6):
            s.execute(update(Client).where(Client.id == i).values(name="x"))
        s.rollback()


def bulk():
    with Session(engine) as s:
        s.execute(update(Client), [{"id": i, "name": "x"} for i in range(1, 6)])
        s.rollback()


def logged_block():
    with sqlaopt.detect("log"):  # application code: its findings reach the running test
        unused_eager()
'''

TESTS = """
from helpers import (bulk, exploding, logged_block, not_exploding, row_by_row, unused_eager,
                     used_eager)
def test_unused(): unused_eager()
def test_used(): used_eager()
def test_explode(): exploding()
def test_no_explode(): not_exploding()
def test_writes(): row_by_row()
def test_bulk(): bulk()
"""


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(helpers=HELPERS)
    return pytester


def test_by_default_each_kind_is_reported_and_fails_no_test(suite: pytest.Pytester) -> None:
    # Issue 9's contract: the default mode fails no test that is not an N+1.
    suite.makepyfile(test_app=TESTS)
    result = suite.runpytest("-rA", "-p", "no:randomly")
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines([
        "*sqlaopt summary*",
        "3 detection(s) that failed no test in 3 test(s); 3 distinct place(s). Most frequent:",
    ])
    result.stdout.fnmatch_lines_random([
        "*1 x Appointment.service (unused_eager_load) at helpers.py:* in unused_eager",
        "*1 x User (row_explosion) at helpers.py:* in exploding",
        "*1 x Client (row_by_row_write) at helpers.py:* in row_by_row",
    ])


@pytest.mark.parametrize("how", [["--sqlaopt-findings=fail"], "ini"])
def test_findings_fail_fails_each_kind_its_test_and_only_it(
    suite: pytest.Pytester, how: list[str] | str
) -> None:
    suite.makepyfile(test_app=TESTS)
    if how == "ini":
        suite.makeini("[pytest]\nsqlaopt_findings = fail\n")
    result = suite.runpytest("-rA", "-p", "no:randomly", *(how if how != "ini" else []))
    result.assert_outcomes(passed=3, failed=3)
    result.stdout.fnmatch_lines_random([
        "*sqlaopt: Appointment.service eager-loaded for 20 instances and never read at "
        "helpers.py:* in unused_eager; fix: drop selectinload(Appointment.service) from the "
        "query's options*",
        "*sqlaopt: User joined-loaded into 23105 rows at helpers.py:* in exploding; fix: "
        "23,105 rows for 24 User (962 per User): load the collections with "
        "selectinload(User.appointments), selectinload(User.payments) in place of their "
        "joinedload*",
        "*sqlaopt: Client written row by row 5 times at helpers.py:* in row_by_row; fix: one "
        "statement for all rows: session.execute(update(Client), *",
        "FAILED test_app.py::test_unused*", "FAILED test_app.py::test_explode*",
        "FAILED test_app.py::test_writes*",
    ])
    assert "sqlaopt: N+1" not in result.stdout.str()  # these kinds are not N+1s
    assert "N+1 in test_app.py" not in result.stdout.str()
    result.stdout.fnmatch_lines(["(1 finding(s) in test_app.py::test_unused; to accept one:*"])
    assert "sqlaopt summary" not in result.stdout.str()  # every detection failed its test


def test_marker_options_and_raise_mode(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_app="""
        import pytest
        from helpers import exploding, logged_block, row_by_row, unused_eager
        @pytest.mark.nplusone(unused_eager=False)
        def test_opted_out(): unused_eager()
        @pytest.mark.nplusone(allow=["Appointment.*", "User.*", "Client.*"])
        def test_allowed(): unused_eager(); exploding(); row_by_row()
        @pytest.mark.nplusone(threshold=6)
        def test_under_threshold(): row_by_row()
        def test_application_block_in_log_mode(): logged_block()
        @pytest.mark.nplusone(mode="raise")
        def test_raise(): unused_eager()
        @pytest.mark.nplusone(mode="raise", findings="report")  # the marker wins
        def test_raise_reports(): unused_eager()
    """)
    result = suite.runpytest("-rA", "-p", "no:randomly", "--sqlaopt-findings=fail")
    result.assert_outcomes(passed=4, failed=2)
    result.stdout.fnmatch_lines_random([
        "FAILED test_app.py::test_application_block_in_log_mode*",
        "FAILED test_app.py::test_raise*",
    ])


def test_bad_marker_value_is_a_usage_error(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_app="""
        import pytest
        @pytest.mark.nplusone(unused_eager="no")
        def test_a(): pass
        @pytest.mark.nplusone(findings="loud")
        def test_b(): pass
    """)
    result = suite.runpytest("-k", "test_a")
    assert "unused_eager must be True, False or None" in result.stderr.str() + \
        result.stdout.str()
    result = suite.runpytest("-k", "test_b")
    assert "test_app.py::test_b: nplusone(findings) = 'loud' is not accepted; accepted: " \
        "report, fail" in result.stderr.str() + result.stdout.str()
    suite.makeini("[pytest]\nsqlaopt_findings = always\n")
    result = suite.runpytest("-k", "test_a")
    assert "sqlaopt_findings = 'always' is not accepted; accepted: report, fail" in \
        result.stderr.str()


def test_two_workers_and_a_merged_baseline(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_app=TESTS)
    baseline, report, sarif = (suite.path / name
                               for name in ("baseline.json", "r.json", "r.sarif"))
    result = suite.runpytest_subprocess("-n", "2", "--sqlaopt-nplusone=record",
                                        f"--sqlaopt-write-baseline={baseline}",
                                        f"--sqlaopt-report={report}", f"--sqlaopt-report={sarif}")
    result.assert_outcomes(passed=6)
    expected = [
        ("test_app.py::test_explode", "row_explosion"),
        ("test_app.py::test_unused", "unused_eager_load"),
        ("test_app.py::test_writes", "row_by_row_write"),
    ]
    entries = json.loads(baseline.read_text())["detections"]
    assert sorted((e["test"], e["kind"]) for e in entries) == expected
    findings = json.loads(report.read_text())["findings"]
    assert sorted((f["test"], f["kind"]) for f in findings) == expected
    run = assert_valid_sarif(sarif)["runs"][0]
    assert sorted(r["ruleId"] for r in run["results"]) == sorted(k for _, k in expected)
    rules = {r["id"]: r["shortDescription"]["text"] for r in run["tool"]["driver"]["rules"]}
    assert rules["unused_eager_load"] == "An eager load whose value nothing read"
    suite.runpytest_subprocess("-n", "2", "--sqlaopt-findings=fail").assert_outcomes(
        passed=3, failed=3)
    suite.runpytest_subprocess("-n", "2", f"--sqlaopt-baseline={baseline}").assert_outcomes(
        passed=6)
