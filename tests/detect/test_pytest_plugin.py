"""The pytest plugin, run on real generated test files with pytester."""

from __future__ import annotations

import json

import pytest

HEADER = '''
import pytest
import sqlaopt
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool
from sqlaopt.booking import build_sample
from sqlaopt.booking.models import Appointment, Base

engine = create_engine("sqlite://", poolclass=StaticPool)
Base.metadata.create_all(engine)
with Session(engine) as s:
    build_sample(s)


def n_plus_one():
    with Session(engine) as s:
        for a in s.scalars(select(Appointment).limit(5)).all():
            a.client


def no_n_plus_one():
    with Session(engine) as s:
        s.scalars(select(Appointment).limit(5)).all()[0].client
'''


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(helpers=HEADER)
    return pytester


def test_default_raise_fails_the_test_with_location_and_fix(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_app="""
        from helpers import n_plus_one, no_n_plus_one
        def test_bad(): n_plus_one()
        def test_good(): no_n_plus_one()
    """)
    result = suite.runpytest()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*sqlaopt.NPlusOneError: N+1 detected (1):*",
        "*Appointment.client lazy-loaded 2 times at helpers.py:18 in n_plus_one;"
        " fix: joinedload(Appointment.client)*",
    ])


def test_caught_error_still_fails_the_test(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_app="""
        import sqlaopt
        from helpers import n_plus_one
        def handler():
            try:
                n_plus_one()
            except sqlaopt.NPlusOneError:
                return 500   # e.g. a web framework turning it into an error page
        def test_handler(): assert handler() == 500
    """)
    result = suite.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*N+1 detected in test_app.py::test_handler (1)*",
                                 "*Appointment.client*fix: joinedload(Appointment.client)*"])


def test_explicit_scope_inside_a_test_owns_its_detections(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_app="""
        import sqlaopt
        from helpers import n_plus_one
        def test_asserts_on_its_own_report():
            with sqlaopt.detect("record") as report:
                n_plus_one()
            assert [d.target for d in report.detections] == ["Appointment.client"]
    """)
    suite.runpytest().assert_outcomes(passed=1)


@pytest.mark.parametrize(("option", "outcome"), [
    ("--sqlaopt-nplusone=off", {"passed": 1}),
    ("--sqlaopt-nplusone=record", {"passed": 1}),
    ("--sqlaopt-nplusone=warn", {"passed": 1, "warnings": 1}),
    ("--sqlaopt-nplusone=raise", {"failed": 1}),
])
def test_modes_from_the_command_line(
    suite: pytest.Pytester, option: str, outcome: dict[str, int]
) -> None:
    suite.makepyfile(test_app="""
        from helpers import n_plus_one
        def test_bad(): n_plus_one()
    """)
    suite.runpytest(option).assert_outcomes(**outcome)


def test_ini_option_and_bad_mode(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_app="""
        from helpers import n_plus_one
        def test_bad(): n_plus_one()
    """)
    suite.makeini("[pytest]\nsqlaopt_nplusone = record\n")
    suite.runpytest().assert_outcomes(passed=1)
    suite.makeini("[pytest]\nsqlaopt_nplusone = loud\n")
    result = suite.runpytest()
    assert result.ret != 0
    result.stderr.fnmatch_lines(["*'loud' is not a mode; accepted: raise, warn, record, off*"])


def test_markers_and_fixture(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_app="""
        import pytest
        from helpers import n_plus_one, no_n_plus_one

        @pytest.mark.nplusone(mode="record")
        def test_recorded(nplusone):
            n_plus_one()
            assert [d.target for d in nplusone.detections] == ["Appointment.client"]
            assert nplusone.statements == 6  # the select and five lazy loads

        @pytest.mark.nplusone(allow=["Appointment.*"])
        def test_allowed(): n_plus_one()

        @pytest.mark.nplusone(threshold=10)
        def test_threshold(): n_plus_one()

        @pytest.mark.max_queries(1)
        def test_over_budget(): no_n_plus_one()

        @pytest.mark.max_queries(2)
        def test_within_budget(): no_n_plus_one()
    """)
    result = suite.runpytest()
    result.assert_outcomes(passed=4, failed=1)
    result.stdout.fnmatch_lines(["*max_queries(1): the test ran 2 SQL statements:*",
                                 "*1. SELECT appointments.id*"])


def test_bad_marker_arguments(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_app="""
        import pytest
        @pytest.mark.nplusone(mood="raise")
        def test_x(): pass
    """)
    result = suite.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*unknown nplusone option(s)*mood*; accepted: mode, allow*"])


def test_baseline_adoption(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_app="""
        from helpers import n_plus_one
        def test_old(): n_plus_one()
    """)
    baseline = suite.path / "baseline.json"
    suite.runpytest(f"--sqlaopt-write-baseline={baseline}", "--sqlaopt-nplusone=record")
    entries = json.loads(baseline.read_text())["detections"]
    assert [(e["test"], e["kind"], e["target"]) for e in entries] == [
        ("test_app.py::test_old", "lazy_load", "Appointment.client")
    ]
    suite.runpytest(f"--sqlaopt-baseline={baseline}").assert_outcomes(passed=1)
    suite.makepyfile(test_app="""
        from helpers import n_plus_one
        from sqlalchemy.orm import Session
        from sqlalchemy import select
        from helpers import engine, Appointment
        def test_old(): n_plus_one()
        def test_new():
            with Session(engine) as s:
                for a in s.scalars(select(Appointment).limit(3)).all():
                    a.service
    """)
    result = suite.runpytest(f"--sqlaopt-baseline={baseline}")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*Appointment.service*"])
