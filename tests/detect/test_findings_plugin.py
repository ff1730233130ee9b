"""Issue 13's finding kinds through the pytest plugin, on generated suites (pytester).

As in test_pytest_plugin.py, the application code lives in ``helpers.py`` (not a test module).
"""

from __future__ import annotations

import json

import pytest

# The suites run in this process: this test's own scope must not see their statements.
pytestmark = pytest.mark.nplusone(mode="off")

HELPERS = '''
import sqlaopt
from sqlalchemy import ForeignKey, String, create_engine, select, update
from sqlalchemy.orm import (DeclarativeBase, Mapped, Session, joinedload, mapped_column,
                            relationship, selectinload)
from sqlalchemy.pool import StaticPool


class Base(DeclarativeBase):
    pass


class Shelf(Base):
    __tablename__ = "shelves"
    id: Mapped[int] = mapped_column(primary_key=True)
    books: Mapped[list["Book"]] = relationship()
    tags: Mapped[list["Tag"]] = relationship()


class Book(Base):
    __tablename__ = "books"
    id: Mapped[int] = mapped_column(primary_key=True)
    shelf_id: Mapped[int] = mapped_column(ForeignKey("shelves.id"))


class Tag(Base):
    __tablename__ = "tags"
    id: Mapped[int] = mapped_column(primary_key=True)
    shelf_id: Mapped[int] = mapped_column(ForeignKey("shelves.id"))
    label: Mapped[str] = mapped_column(String(20), default="")


engine = create_engine("sqlite://", poolclass=StaticPool,
                       connect_args={"check_same_thread": False})
Base.metadata.create_all(engine)
with Session(engine) as s:
    s.add_all(Shelf(books=[Book() for _ in range(10)], tags=[Tag() for _ in range(10)])
              for _ in range(20))
    s.commit()


def unused_eager():
    with Session(engine) as s:
        return len(s.scalars(select(Shelf).options(selectinload(Shelf.books))).all())


def used_eager():
    with Session(engine) as s:
        shelves = s.scalars(select(Shelf).options(selectinload(Shelf.books))).all()
        return sum(len(shelf.books) for shelf in shelves)


def exploding():
    with Session(engine) as s:
        query = select(Shelf).options(joinedload(Shelf.books), joinedload(Shelf.tags))
        return sum(len(x.books) + len(x.tags) for x in s.scalars(query).unique().all())


def not_exploding():
    with Session(engine) as s:
        query = select(Shelf).options(selectinload(Shelf.books), selectinload(Shelf.tags))
        return sum(len(x.books) + len(x.tags) for x in s.scalars(query).all())


def row_by_row():
    with Session(engine) as s:
        for i in range(1, 6):
            s.execute(update(Tag).where(Tag.id == i).values(label="x"))
        s.rollback()


def bulk():
    with Session(engine) as s:
        s.execute(update(Tag), [{"id": i, "label": "x"} for i in range(1, 6)])
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


def test_each_kind_fails_its_test_and_only_it(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_app=TESTS)
    result = suite.runpytest("-rA", "-p", "no:randomly")
    result.assert_outcomes(passed=3, failed=3)
    result.stdout.fnmatch_lines_random([
        "*sqlaopt: Shelf.books eager-loaded for 20 instances and never read at helpers.py:* "
        "in unused_eager; fix: drop selectinload(Shelf.books) from the query's options*",
        "*sqlaopt: Shelf joined-loaded into 2000 rows at helpers.py:* in exploding; fix: "
        "2,000 rows for 20 Shelf (100 per Shelf): load the collections with "
        "selectinload(Shelf.books), selectinload(Shelf.tags) in place of their joinedload*",
        "*sqlaopt: Tag written row by row 5 times at helpers.py:* in row_by_row; fix: one "
        "statement for all rows: session.execute(update(Tag), *",
        "FAILED test_app.py::test_unused*", "FAILED test_app.py::test_explode*",
        "FAILED test_app.py::test_writes*",
    ])
    assert "N+1 Shelf" not in result.stdout.str()  # these kinds are not N+1s


def test_marker_options_and_raise_mode(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_app="""
        import pytest
        from helpers import exploding, logged_block, row_by_row, unused_eager
        @pytest.mark.nplusone(unused_eager=False)
        def test_opted_out(): unused_eager()
        @pytest.mark.nplusone(allow=["Shelf.*", "Tag.*"])
        def test_allowed(): unused_eager(); exploding(); row_by_row()
        @pytest.mark.nplusone(threshold=6)
        def test_under_threshold(): row_by_row()
        def test_application_block_in_log_mode(): logged_block()
        @pytest.mark.nplusone(mode="raise")
        def test_raise(): unused_eager()
    """)
    result = suite.runpytest("-rA", "-p", "no:randomly")
    result.assert_outcomes(passed=3, failed=2)
    result.stdout.fnmatch_lines_random([
        "FAILED test_app.py::test_application_block_in_log_mode*",
        "FAILED test_app.py::test_raise*",
    ])


def test_bad_marker_value_is_a_usage_error(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_app="""
        import pytest
        @pytest.mark.nplusone(unused_eager="no")
        def test_a(): pass
    """)
    result = suite.runpytest()
    assert "unused_eager must be True, False or None" in result.stderr.str() + \
        result.stdout.str()


def test_two_workers_and_a_merged_baseline(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_app=TESTS)
    baseline = suite.path / "baseline.json"
    result = suite.runpytest_subprocess("-n", "2", "--sqlaopt-nplusone=record",
                                        f"--sqlaopt-write-baseline={baseline}")
    result.assert_outcomes(passed=6)
    entries = json.loads(baseline.read_text())["detections"]
    assert sorted((e["test"], e["kind"]) for e in entries) == [
        ("test_app.py::test_explode", "row_explosion"),
        ("test_app.py::test_unused", "unused_eager_load"),
        ("test_app.py::test_writes", "row_by_row_write"),
    ]
    suite.runpytest_subprocess("-n", "2").assert_outcomes(passed=3, failed=3)
    suite.runpytest_subprocess("-n", "2", f"--sqlaopt-baseline={baseline}").assert_outcomes(
        passed=6)
