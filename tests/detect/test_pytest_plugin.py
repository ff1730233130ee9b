"""The pytest plugin, run on real generated test suites with pytester.

The generated suites keep their application code in ``helpers.py`` (not a test module): loops
that live in test modules are the test's own repetition and are not reported by default.
"""

from __future__ import annotations

import json

import pytest

# The suites run in this process: this test's own scope must not see their statements.
pytestmark = pytest.mark.nplusone(mode="off")

HEADER = '''
import pytest
import sqlaopt
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool
from sqlaopt.booking import build_sample
from sqlaopt.booking.models import Appointment, Base

engine = create_engine("sqlite://", poolclass=StaticPool,
                       connect_args={"check_same_thread": False})
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


def load(appointment_id):
    with Session(engine) as s:
        return s.get(Appointment, appointment_id).client
'''


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(helpers=HEADER)
    return pytester


def test_default_fail_mode_fails_the_test_at_its_end(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_app="""
        from helpers import n_plus_one, no_n_plus_one
        def test_bad():
            n_plus_one()
            print("the body ran to its end")   # no exception was thrown into it
        def test_good(): no_n_plus_one()
    """)
    result = suite.runpytest("-rA")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*sqlaopt: N+1 Appointment.client lazy-loaded 5 times at helpers.py:19 in n_plus_one;"
        " fix: joinedload(Appointment.client)*",
        "*helpers.py:19 | a.client",
        "(1 N+1 in test_app.py::test_bad; to accept one: @pytest.mark.nplusone(allow=?'Appoint*",
        "*the body ran to its end*",
    ])
    assert "Traceback" not in result.stdout.str()


@pytest.mark.parametrize("style", ["--tb=short", "--tb=line", "-q"])
def test_the_failure_reads_well_in_every_report_style(suite: pytest.Pytester, style: str) -> None:
    suite.makepyfile(test_app="""
        from helpers import n_plus_one
        def test_bad(): n_plus_one()
    """)
    result = suite.runpytest(style)
    result.assert_outcomes(failed=1)
    text = result.stdout.str()
    # The first line of the failure names the N+1, its count, place and fix; it is what the
    # one-line styles and the short summary show.
    assert "N+1 Appointment.client lazy-loaded 5 times at helpers.py:19" in text
    assert text.count("\n") < 40


def test_raise_mode_raises_at_the_access(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_app="""
        from helpers import n_plus_one
        def test_bad(): n_plus_one()
    """)
    result = suite.runpytest("--sqlaopt-nplusone=raise")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*sqlaopt.NPlusOneError: N+1 detected (1):*",
        "*Appointment.client lazy-loaded 2 times at helpers.py:19 in n_plus_one;*",
    ])


def test_a_caught_error_still_fails_the_test(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_app="""
        import pytest, sqlaopt
        from helpers import n_plus_one
        def handler():
            try:
                n_plus_one()
            except sqlaopt.NPlusOneError:
                return 500   # e.g. a web framework turning it into an error page
        @pytest.mark.nplusone(mode="raise")
        def test_handler(): assert handler() == 500
    """)
    result = suite.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*N+1 Appointment.client lazy-loaded 2 times*"])


@pytest.mark.parametrize(("option", "outcome"), [
    ("--sqlaopt-nplusone=off", {"passed": 1}),
    ("--sqlaopt-nplusone=record", {"passed": 1}),
    ("--sqlaopt-nplusone=log", {"passed": 1}),
    ("--sqlaopt-nplusone=warn", {"passed": 1, "warnings": 1}),
    ("--sqlaopt-nplusone=raise", {"failed": 1}),
    ("--sqlaopt-nplusone=fail", {"failed": 1}),
])
def test_modes_from_the_command_line(
    suite: pytest.Pytester, option: str, outcome: dict[str, int]
) -> None:
    suite.makepyfile(test_app="""
        from helpers import n_plus_one
        def test_bad(): n_plus_one()
    """)
    suite.runpytest(option).assert_outcomes(**outcome)


def test_log_mode_logs_in_the_test(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_app="""
        import logging
        from helpers import n_plus_one
        def test_bad(caplog):
            caplog.set_level(logging.WARNING, logger="sqlaopt")
            n_plus_one()
        def test_after(caplog):
            pass
    """)
    result = suite.runpytest("--sqlaopt-nplusone=log", "-rA", "-p", "no:randomly")
    result.assert_outcomes(passed=2)


def test_warn_mode_is_not_silenced_by_user_warning_filters(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_app="""
        from helpers import n_plus_one
        def test_bad(): n_plus_one()
    """)
    suite.makeini("[pytest]\nfilterwarnings =\n    ignore::UserWarning\n"
                  "    ignore::DeprecationWarning\n")
    suite.runpytest("--sqlaopt-nplusone=warn").assert_outcomes(passed=1, warnings=1)


def test_record_and_warn_modes_print_a_summary(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_app="""
        from helpers import n_plus_one, load
        def test_one(): n_plus_one()
        def test_two(): n_plus_one()
    """)
    for mode in ("record", "warn"):
        result = suite.runpytest(f"--sqlaopt-nplusone={mode}")
        result.stdout.fnmatch_lines([
            "*sqlaopt summary*",
            "2 detection(s) in 2 test(s); 1 distinct place(s). Most frequent:",
            "*2 x Appointment.client at helpers.py:19 in n_plus_one",
        ])


def test_ini_option_and_bad_modes(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_app="""
        import pytest
        from helpers import n_plus_one
        def test_bad(): n_plus_one()
    """)
    suite.makeini("[pytest]\nsqlaopt_nplusone = record\n")
    suite.runpytest().assert_outcomes(passed=1)
    suite.makeini("[pytest]\nsqlaopt_nplusone = loud\n")
    result = suite.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*'loud' is not a mode; accepted: fail, raise, warn, log, record, off*"]
    )
    suite.makeini("[pytest]\n")
    suite.makepyfile(test_app="""
        import pytest
        @pytest.mark.nplusone(mode="rasie")
        def test_x(): pass
    """)
    result = suite.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*nplusone(mode) = 'rasie' is not a mode*(did you mean 'raise'?)*"])


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


def test_loops_in_test_code_are_the_tests_own(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_app="""
        import pytest
        from helpers import load
        def test_fetches_one_by_one():
            for i in range(1, 6):   # the test's own loop over the application
                load(i)
        @pytest.mark.nplusone(test_loops=True)
        def test_reported_on_request():
            for i in range(1, 6):
                load(i)
    """)
    result = suite.runpytest()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*N+1 Appointment.client lazy-loaded 5 times at helpers.py:*in load "
         "(loop at test_app.py:8 in test_reported_on_request)*"]
    )
    suite.runpytest("--sqlaopt-test-loops").assert_outcomes(failed=2)
    suite.makeini("[pytest]\nsqlaopt_test_loops = true\n")
    suite.runpytest().assert_outcomes(failed=2)


APP = '''
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlaopt.booking.models import Appointment


def client_name(session, appointment_id):
    return session.get(Appointment, appointment_id).client.name


def client_name_with_retry(session, appointment_id):
    for _attempt in range(3):  # a retry loop: its body returns on the first pass
        try:
            return client_name(session, appointment_id)
        except OperationalError:
            session.rollback()
    raise RuntimeError("no attempt succeeded")


def client_names(session, ids):
    names = []
    for appointment_id in ids:  # the application's loop
        names.append(client_name(session, appointment_id))
    return names


def names_with_retry(session, ids):
    return [client_name_with_retry(session, i) for i in ids]


def client_names_of(session, ids):
    return client_names(session, ids)


failures = []


def status(session, appointment_id):
    row = session.execute(select(Appointment.status).where(Appointment.id == appointment_id))
    if not failures:  # the first attempt fails after its query, as a deadlock would
        failures.append(appointment_id)
        raise OperationalError("SELECT ...", {}, Exception("deadlock detected"))
    return row.one()


def status_with_retry(session, appointment_id):
    for _attempt in range(3):
        try:
            return status(session, appointment_id)
        except OperationalError:
            session.rollback()
    raise RuntimeError("no attempt succeeded")
'''


def test_a_loop_that_did_not_repeat_the_statement_is_not_the_loop(
    suite: pytest.Pytester,
) -> None:
    # mealie: a test's loop over the application's create(), which retries in a loop whose
    # body returns, or loops over one element per call, is the test's repetition (rule 7).
    suite.makepyfile(app=APP, test_app="""
        import pytest
        from sqlalchemy.orm import Session
        from helpers import engine
        from app import (client_name_with_retry, client_names, client_names_of, names_with_retry,
                         status_with_retry)
        def test_a_test_loop_through_a_retry_loop():
            with Session(engine) as s:
                for i in range(1, 6):
                    client_name_with_retry(s, i)
        def test_a_test_loop_over_calls_whose_loop_runs_once():
            with Session(engine) as s:
                for i in range(1, 6):
                    client_names_of(s, [i])
        def test_the_applications_loop():
            with Session(engine) as s:
                client_names(s, [1, 2, 3, 4, 5])
        def test_the_applications_loop_over_the_retry():
            with Session(engine) as s:
                names_with_retry(s, [1, 2, 3, 4, 5])
        def test_a_test_loop_over_calls_that_loop_themselves():
            with Session(engine) as s:
                for ids in ([1], [2, 3, 4]):
                    client_names_of(s, ids)
        def test_a_retry_that_ran_the_query_again():
            with Session(engine) as s:
                status_with_retry(s, 1)
    """)
    result = suite.runpytest("-rA", "-p", "no:randomly")
    result.assert_outcomes(passed=3, failed=3)
    result.stdout.fnmatch_lines_random([
        "*N+1 Appointment.client lazy-loaded 5 times at app.py:7 in client_name (loop at "
        "app.py:21 in client_names)*",
        "*N+1 Appointment.client lazy-loaded 5 times at app.py:7 in client_name (loop at "
        "app.py:27 in names_with_retry)*",
        # The first two loads came from two calls: counted afresh from the second call, whose
        # own loop repeats the load 3 times.
        "*N+1 Appointment.client lazy-loaded 3 times at app.py:7 in client_name (loop at "
        "app.py:21 in client_names)*",
        "FAILED test_app.py::test_the_applications_loop *",
        "FAILED test_app.py::test_the_applications_loop_over_the_retry *",
        "FAILED test_app.py::test_a_test_loop_over_calls_that_loop_themselves *",
    ])
    result = suite.runpytest("--sqlaopt-test-loops", "-k", "test_a_test_loop_through")
    result.stdout.fnmatch_lines(["*(loop at test_app.py:8 in test_a_test_loop_through_a_retry_"
                                 "loop)*"])


def test_modules_of_a_tests_directory_are_test_code(suite: pytest.Pytester) -> None:
    # mealie's tests/multitenant_tests/case_tools.py: a helper of the suite that pytest never
    # collects; its loops are the test's. The application's helpers.py stays application code.
    suite.mkpydir("tests")
    (suite.path / "tests" / "seeding.py").write_text(
        "from helpers import load\n"
        "def seed_and_read():\n"
        "    for i in range(1, 6):  # the suite's loop\n"
        "        load(i)\n"
    )
    (suite.path / "tests" / "test_seed.py").write_text(
        "from tests.seeding import seed_and_read\n"
        "from helpers import n_plus_one\n"
        "def test_seeding(): seed_and_read()\n"
        "def test_application(): n_plus_one()\n"
    )
    # In a subprocess: this process already imported a package named "tests" (sqlaopt's own).
    result = suite.runpytest_subprocess("-rA", "-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["FAILED tests/test_seed.py::test_application*"])
    result = suite.runpytest_subprocess("--sqlaopt-test-loops", "-k", "seeding")
    result.stdout.fnmatch_lines(["*(loop at tests/seeding.py:3 in seed_and_read)*"])


def test_baseline_adoption(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_app="""
        from helpers import n_plus_one
        def test_old(): n_plus_one()
    """)
    baseline = suite.path / "nested" / "dir" / "baseline.json"  # directories are created
    suite.runpytest(f"--sqlaopt-write-baseline={baseline}", "--sqlaopt-nplusone=record")
    entries = json.loads(baseline.read_text())["detections"]
    assert [(e["test"], e["kind"], e["target"]) for e in entries] == [
        ("test_app.py::test_old", "lazy_load", "Appointment.client")
    ]
    suite.runpytest(f"--sqlaopt-baseline={baseline}").assert_outcomes(passed=1)
    suite.makepyfile(helpers_new="""
        from sqlalchemy.orm import Session
        from sqlalchemy import select
        from helpers import engine, Appointment
        def services():
            with Session(engine) as s:
                for a in s.scalars(select(Appointment).limit(3)).all():
                    a.service
    """)
    suite.makepyfile(test_app="""
        from helpers import n_plus_one
        from helpers_new import services
        def test_old(): n_plus_one()
        def test_new(): services()
    """)
    result = suite.runpytest(f"--sqlaopt-baseline={baseline}")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*Appointment.service*"])


@pytest.mark.parametrize("content", [
    "not json",
    "[]",
    '{"detections": {}}',
    '{"detections": [1, 2]}',
    '{"detections": [{"test": "t"}]}',
    '{"detections": [{"test": 1, "kind": "k", "target": "t", "where": "w"}]}',
    "\udcff".encode("utf-8", "surrogateescape").decode("latin-1"),
])
def test_a_malformed_baseline_is_a_one_line_usage_error(
    suite: pytest.Pytester, content: str
) -> None:
    suite.makepyfile(test_app="def test_x(): pass\n")
    path = suite.path / "baseline.json"
    path.write_text(content, encoding="latin-1")
    result = suite.runpytest(f"--sqlaopt-baseline={path}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.stderr.lines if line.strip()]
    assert len(errors) == 1 and errors[0].startswith(f"ERROR: --sqlaopt-baseline {path}: ")
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


def test_xdist_workers_write_one_merged_baseline(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_app="""
        from helpers import n_plus_one, load
        from sqlalchemy.orm import Session
        from sqlalchemy import select
        from helpers import engine, Appointment
        def test_a(): n_plus_one()
        def test_b(): n_plus_one()
        def test_c(): n_plus_one()
        def test_d(): n_plus_one()
    """)
    baseline = suite.path / "baseline.json"
    result = suite.runpytest_subprocess("-n", "2", "--sqlaopt-nplusone=record",
                                        f"--sqlaopt-write-baseline={baseline}")
    result.assert_outcomes(passed=4)
    entries = json.loads(baseline.read_text())["detections"]
    assert sorted(e["test"] for e in entries) == [
        f"test_app.py::test_{name}" for name in "abcd"
    ]
    result.stdout.fnmatch_lines(["*4 detection(s) in 4 test(s)*"])
    suite.runpytest_subprocess("-n", "2", f"--sqlaopt-baseline={baseline}").assert_outcomes(
        passed=4
    )


def test_a_failing_test_does_not_leave_its_scope_behind(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_app="""
        import pytest
        from sqlaopt.detect._hook import running_test_scope
        def test_fails():
            assert running_test_scope() is not None
            raise AssertionError("the test's own failure")
        @pytest.mark.nplusone(mode="off")
        def test_next():
            assert running_test_scope() is None
    """)
    result = suite.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*the test's own failure*"])
