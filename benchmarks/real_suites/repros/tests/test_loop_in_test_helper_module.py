"""Shape `test-loop-direct` in a helper module of the test package: the loop is the test
suite's, but lives in a module pytest does not collect.

Seen in mealie @ b5643a939946 (sqlaopt b4ed7fb, default mode):
``tests/multitenant_tests/test_multitenant_cases.py::test_multitenant_cases_get_all[...]``
and ``test_multitenant_cases_same_named_resources[...]`` call
``ToolsTestCase.seed_action`` / ``seed_multi`` (``tests/multitenant_tests/case_tools.py``,
likewise ``case_tags.py`` and ``case_categories.py``), which loop ``for _ in range(10):
self.database.tools.create(...)``; each ``create`` refreshes the new row once. The tests fail
with ``Tool.id column-loaded 10 times at mealie/repos/repository_generic.py:174 in create
(loop at tests/multitenant_tests/case_tools.py:15 in seed_action)``: the report itself names
a file under ``tests/`` as the loop.

Responsible: ``_callsite.is_test_code`` knows only the files of the collected items
(``pytest_plugin.pytest_collection_finish`` passes ``item.path`` of every item to
``set_test_code``) and files named ``conftest.py``. A helper module of the test package
(not ``test_*.py``, never collected) is application code to it, so ``_hook._new_loop``
reports the loop although issue 9 rule 7 says a loop in test code is the test's own
repetition.

Here the test package is ``tests`` (a package, as mealie's ``tests`` is) and its helper
``tests/seeding.py``; ``mini_app.py``, outside the package, stays application code. The
first test fails on sqlaopt b4ed7fb.
"""

from __future__ import annotations

import mini_app
import pytest
from sqlalchemy.orm import Session

from tests import seeding


@pytest.mark.nplusone(mode="record")
def test_a_loop_in_a_helper_module_of_the_test_package_is_the_tests(engine, nplusone):
    with Session(engine) as session:
        seeding.seed_and_read(session, [1, 2, 3])
    assert nplusone.detections == [], str(nplusone)


@pytest.mark.nplusone(mode="record")
def test_an_app_loop_called_from_the_helper_is_still_reported(engine, nplusone):
    """The counterpart: the application's own loop stays reported in the test package."""
    with Session(engine) as session:
        assert mini_app.total_children(session) == 10
    [detection] = nplusone.detections
    assert (detection.kind, detection.target) == ("lazy_load", "Parent.children")
