"""Shape `test-loop-direct` behind an application retry loop: the test's loop is taken for a
loop of the application because the call passes through a loop that never iterates.

Seen in mealie @ b5643a939946 (sqlaopt b4ed7fb, default mode): ``test_group_get_by_slug_or_id``
runs ``[unfiltered_database.groups.create({...}) for _ in range(random_int(3, 10))]``;
``RepositoryGroup.create`` wraps ``super().create(data)`` in a ``while True`` retry loop whose
body returns on its first iteration. Each call refreshes one group and validates it (one
column load of ``Group.id`` and one lazy load each of ``Group.categories``, ``webhooks``,
``households``, ``users``, ``preferences``), and the test fails with ``Group.id column-loaded
3 times at mealie/repos/repository_generic.py:174 in create (loop at
mealie/repos/repository_group.py:26 in create)``. The same with ``RepositoryHousehold.create``
(repository_household.py:34), ``RepositoryRecipes.create`` (repository_recipes.py:45) and
``RepositoryCookbooks.create`` (repository_cookbooks.py:22) when a test or fixture calls them
in its own loop.

Responsible: ``_callsite._loop`` (through ``describe``) names as the loop the innermost frame
whose current instruction lies between a backward jump and its target
(``_loops.loop_line``), whether or not that loop has iterated: a retry loop on the way to the
statement is "the loop", the repeating frame (the test's comprehension) is never looked at,
and ``_hook._new_loop`` asks ``is_test_code`` about the retry loop's file, an application
file, so the test-loop rule (issue 9 rule 7) does not apply. The count key itself is right
(the whole stack up to the test function): only the choice of the repeating frame is wrong.

Each test below asserts issue 9's rule; the first fails on sqlaopt b4ed7fb.
"""

from __future__ import annotations

import mini_app
import pytest
from sqlalchemy.orm import Session


@pytest.mark.nplusone(mode="record")
def test_a_test_loop_through_an_app_retry_loop_is_not_an_n_plus_one(engine, nplusone):
    with Session(engine) as session:
        for parent_id in (1, 2, 3):                   # the test's loop: one app call each
            mini_app.parent_name_with_retry(session, parent_id)
    assert nplusone.detections == [], str(nplusone)


@pytest.mark.nplusone(mode="record")
def test_an_app_loop_through_the_retry_loop_is_still_reported(engine, nplusone):
    """The counterpart that must keep failing the default mode: the loop is the app's
    (mealie's ``RepositoryCookbooks.create_many``)."""
    with Session(engine) as session:
        mini_app.names_with_retry(session, [1, 2, 3])
    [detection] = nplusone.detections
    assert (detection.kind, detection.target, detection.count) == (
        "repeated_statement", "Parent", 3)
