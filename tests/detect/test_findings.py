"""Issue 13's finding kinds: unused eager loads, row explosions, row-by-row writes.

Each kind: must-flag and must-not-flag cases on SQLite and PostgreSQL (``shapes_engine``), its
allow pattern, its modes, and the rule that it never changes an N+1 verdict.
"""

from __future__ import annotations

import gc
import importlib.util
import logging
import weakref
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict
from sqlalchemy import Engine, delete, insert, inspect, select, update
from sqlalchemy.orm import (
    Session,
    immediateload,
    joinedload,
    lazyload,
    selectinload,
    subqueryload,
)

import sqlaopt
from sqlaopt import NPlusOneError
from sqlaopt.detect import _orm

from .conftest import kinds, nplusone_records
from .shapes import (
    BOOKS_PER_SHELF,
    NOTES_PER_BOOK,
    SHELVES,
    TAGS_PER_SHELF,
    Book,
    Category,
    Drawer,
    Shelf,
    Tag,
)

LINE = "test_findings.py:{}"


def shelves(session: Session, *options: Any) -> list[Shelf]:
    return list(session.scalars(select(Shelf).options(*options).order_by(Shelf.id)).unique())


def found(report: sqlaopt.Report, kind: str) -> list[tuple[str, int]]:
    return sorted((d.target, d.count) for d in report.detections if d.kind == kind)


# ---------------------------------------------------------------- unused eager loads


@pytest.mark.parametrize("option", [selectinload, joinedload, subqueryload, immediateload])
def test_an_eager_load_nothing_reads_is_reported_once_per_query_place(
    shapes_engine: Engine, option: Callable[..., Any],
) -> None:
    with Session(shapes_engine) as s, sqlaopt.detect("record") as report:
        shelves(s, option(Shelf.books))
        s.expunge_all()
        rows = shelves(s, option(Shelf.books))  # the same place: the counts add up
        assert len(rows) == SHELVES
    [detection] = report.detections
    assert (detection.kind, detection.target, detection.count) == (
        "unused_eager_load", "Shelf.books", 2 * SHELVES)
    assert detection.location.startswith("tests/detect/test_findings.py:")
    assert detection.location.endswith(" in shelves")
    assert detection.suggestion == (
        f"drop {option.__name__}(Shelf.books) from the query's options, or that path from the "
        "preset that adds it")


READS: dict[str, Callable[[Shelf], object]] = {
    "attribute": lambda shelf: shelf.books,
    "getattr": lambda shelf: getattr(shelf, "books"),  # noqa: B009
    "iteration": lambda shelf: [book.id for book in shelf.books],
    "inspect": lambda shelf: inspect(shelf).attrs.books.value,
    "pydantic": lambda shelf: ShelfOut.model_validate(shelf),
}


class BookOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int


class ShelfOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    books: list[BookOut]


@pytest.mark.parametrize("read", sorted(READS))
def test_one_read_on_one_instance_by_any_path_is_a_use(shapes_engine: Engine, read: str
                                                         ) -> None:
    with Session(shapes_engine) as s, sqlaopt.detect("raise") as report:
        rows = shelves(s, selectinload(Shelf.books))
        READS[read](rows[-1])
    assert report.detections == []


def test_nested_paths_and_mapping_eager_loads(shapes_engine: Engine) -> None:
    with Session(shapes_engine) as s, sqlaopt.detect("record") as report:
        rows = shelves(s, selectinload(Shelf.books).joinedload(Book.notes))
        assert sum(len(shelf.books) for shelf in rows) == SHELVES * BOOKS_PER_SHELF
        drawers = s.scalars(select(Drawer)).all()  # Drawer.things is lazy="selectin"
    assert found(report, "unused_eager_load") == [
        ("Book.notes", SHELVES * BOOKS_PER_SHELF), ("Drawer.things", len(drawers))]
    fixes = {d.target: d.suggestion for d in report.detections}
    assert fixes["Book.notes"].startswith(
        "drop joinedload(Book.notes) (on the path Shelf.books → Book.notes) from the query's "
        "options")
    assert fixes["Drawer.things"].startswith(
        'Drawer.things is lazy="selectin" on the mapping: add lazyload(Drawer.things) to this '
        "query's options")


def test_the_mapping_fix_works(shapes_engine: Engine) -> None:
    with Session(shapes_engine) as s, sqlaopt.detect("raise"), \
            sqlaopt.count_queries() as queries:
        s.scalars(select(Drawer).options(lazyload(Drawer.things))).all()
    assert queries.count == 1


def test_not_an_eager_load_not_reported(shapes_engine: Engine) -> None:
    with Session(shapes_engine) as s, sqlaopt.detect("raise") as report:
        rows = shelves(s)  # lazy: nothing loaded in advance
        rows[0].books  # noqa: B018  (one lazy load: no N+1, no eager load)
        s.scalars(select(Category).where(Category.parent_id.is_(None))).all()
    assert report.detections == []


def test_allow_pattern_and_settings(shapes_engine: Engine) -> None:
    with Session(shapes_engine) as s:
        with sqlaopt.detect("record", allow=["Shelf.*"]) as allowed:
            shelves(s, selectinload(Shelf.books))
        s.expunge_all()
        with sqlaopt.detect("record", unused_eager=False) as off:
            shelves(s, selectinload(Shelf.books))
        s.expunge_all()
        with sqlaopt.detect("log") as log_default:
            shelves(s, selectinload(Shelf.books))
        s.expunge_all()
        with sqlaopt.detect("record") as outer, sqlaopt.allow("*.books"):
            shelves(s, selectinload(Shelf.books))
    assert (allowed.detections, off.detections, log_default.detections) == ([], [], [])
    assert outer.detections == []
    with pytest.raises(TypeError, match="unused_eager must be True, False or None"):
        sqlaopt.detect(unused_eager="yes")  # type: ignore[arg-type]


def test_raise_mode_raises_when_the_scope_ends(shapes_engine: Engine) -> None:
    with pytest.raises(NPlusOneError) as raised, Session(shapes_engine) as s, sqlaopt.detect():
        rows = shelves(s, selectinload(Shelf.books))
        reached_the_end = True
    assert reached_the_end and len(rows) == SHELVES
    assert [d.kind for d in raised.value.detections] == ["unused_eager_load"]
    with pytest.raises(ZeroDivisionError), Session(shapes_engine) as s, sqlaopt.detect():
        shelves(s, selectinload(Shelf.books))
        1 / 0  # noqa: B018  (the application's error wins over the report)


@pytest.mark.nplusone(mode="off")  # install()'s Session scopes, not the test's
def test_log_mode_opt_in_and_install(shapes_engine: Engine,
                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "sqlaopt.nplusone")
    with Session(shapes_engine) as s, sqlaopt.detect("log", unused_eager=True):
        shelves(s, selectinload(Shelf.tags))
    sqlaopt.install("log")  # off by default in production
    with Session(shapes_engine) as s:
        shelves(s, selectinload(Shelf.books))
        s.commit()
    sqlaopt.install("log", unused_eager=True)
    with Session(shapes_engine) as s:
        shelves(s, joinedload(Shelf.books))
        s.commit()  # the Session's transaction ends: judged now
    sqlaopt.uninstall()
    logged = [(fields["kind"], f"{fields['model']}.{fields['relationship']}")
              for fields, _ in nplusone_records(caplog)]
    assert logged == [("unused_eager_load", "Shelf.tags"), ("unused_eager_load", "Shelf.books")]


@pytest.mark.nplusone(mode="off")  # the test's own scope would watch too
def test_nothing_is_kept_and_attributes_are_restored(shapes_engine: Engine) -> None:
    with Session(shapes_engine) as s, sqlaopt.detect("record") as report:
        rows = shelves(s, selectinload(Shelf.books))
        assert type(Shelf.__dict__["books"]) is _orm.WatchedAttribute
        refs = [weakref.ref(shelf) for shelf in rows]
        del rows
        s.expunge_all()
        gc.collect()
        assert all(ref() is None for ref in refs)  # not held by the watch registry
    assert found(report, "unused_eager_load") == [("Shelf.books", SHELVES)]
    assert _orm.watched == {}
    assert type(Shelf.__dict__["books"]) is _orm.InstrumentedAttribute


def test_a_nested_scope_judges_at_its_own_end(shapes_engine: Engine) -> None:
    with Session(shapes_engine) as s, sqlaopt.detect("record") as outer:
        with sqlaopt.detect("record") as inner:
            rows = shelves(s, selectinload(Shelf.books))
        rows[0].books  # noqa: B018  (read after the inner scope ended: too late for it)
    assert found(inner, "unused_eager_load") == [("Shelf.books", SHELVES)]
    assert outer.detections == []


def test_two_open_scopes_loading_one_instance_both_see_its_read(shapes_engine: Engine) -> None:
    """A request whose response is still open and the next one on the same Session load the
    same rows: each scope's eager load is its own, and one read serves both. (The second
    registration replaced the first, and the first scope's end dropped the second's watch:
    ihatemoney's bill list, which reads every bill's owers, was reported unread.)"""
    with Session(shapes_engine) as s, sqlaopt.detect("record") as first:
        rows = shelves(s, selectinload(Shelf.books))
        with sqlaopt.detect("record") as second:
            again = s.scalars(select(Shelf).options(selectinload(Shelf.books))
                              .execution_options(populate_existing=True)).all()
            assert again == rows
            [shelf.books for shelf in rows]
    assert first.detections == second.detections == []
    assert _orm.watched == {}


# Eager paths over the shapes: (parent path, option) where the parent path is how its
# instances are reached, with every collection non-empty in the data.
PATHS: dict[str, tuple[str, ...]] = {
    "Shelf.books": (), "Shelf.tags": (), "Book.notes": ("Shelf.books",),
    "Book.shelf": ("Shelf.books",),
}
LOADERS = {"selectinload": selectinload, "joinedload": joinedload,
           "subqueryload": subqueryload}


def _option(path: str, loaders: dict[str, str]) -> Any:
    steps = [*PATHS[path], path]
    option = None
    for step in steps:
        model, key = step.split(".")
        attribute = getattr({"Shelf": Shelf, "Book": Book}[model], key)
        loader = LOADERS[loaders[step]] if step in loaders else selectinload
        option = loader(attribute) if option is None else getattr(option, loader.__name__)(
            attribute)
    return option


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(eager=st.dictionaries(st.sampled_from(sorted(PATHS)), st.sampled_from(sorted(LOADERS)),
                             min_size=1),
       reads=st.dictionaries(st.sampled_from(sorted(PATHS)), st.integers(0, 2)))
def test_exactly_the_paths_never_read_are_reported(
    shapes_engine: Engine, eager: dict[str, str], reads: dict[str, int],
) -> None:
    """Random eager paths, random reads (on instance 0, 1 or 2 reached through the path):
    the report names exactly the eager paths nothing read."""
    loaded = set(eager) | {p for path in eager for p in PATHS[path]}
    with Session(shapes_engine) as s, sqlaopt.detect("record") as report:
        query = select(Shelf).where(Shelf.id <= 3).order_by(Shelf.id)
        rows = list(s.scalars(query.options(*(_option(p, eager) for p in eager))).unique())
        for path, index in reads.items():
            if path not in loaded:
                continue
            model, key = path.split(".")
            holders: list[Any] = rows if model == "Shelf" else [
                book for shelf in rows for book in shelf.__dict__["books"]]
            getattr(holders[index], key)
    read = {p for p in reads if p in loaded}
    # An implied parent hop (selectinload on the way to a nested option) is eager too.
    expected = sorted(p for p in loaded if p not in read)
    assert sorted(d.target for d in report.detections
                  if d.kind == "unused_eager_load") == expected
    assert {d.kind for d in report.detections} <= {"unused_eager_load", "row_explosion"}


# ---------------------------------------------------------------- row explosions


def test_two_joined_collections_on_one_parent_explode(shapes_engine: Engine) -> None:
    with Session(shapes_engine) as s, sqlaopt.detect("record") as report:
        rows = shelves(s, joinedload(Shelf.books), joinedload(Shelf.tags))
        assert sum(len(r.books) + len(r.tags) for r in rows) == SHELVES * 20
    rows_returned = SHELVES * BOOKS_PER_SHELF * TAGS_PER_SHELF
    assert found(report, "row_explosion") == [("Shelf", rows_returned)]
    [detection] = report.detections
    assert detection.suggestion == (
        f"{rows_returned:,} rows for {SHELVES} Shelf (100 per Shelf): load the collections "
        "with selectinload(Shelf.books), selectinload(Shelf.tags) in place of their joinedload")
    assert detection.location.endswith(" in shelves")


def test_a_joined_collection_under_a_collection_explodes(shapes_engine: Engine) -> None:
    with Session(shapes_engine) as s, pytest.raises(NPlusOneError) as raised, \
            sqlaopt.detect() as report:
        rows = shelves(s, joinedload(Shelf.books).joinedload(Book.notes))
        assert all(len(book.notes) == NOTES_PER_BOOK for r in rows for book in r.books)
    assert raised.value.detections == report.detections
    [detection] = report.detections
    assert (detection.kind, detection.count) == (
        "row_explosion", SHELVES * BOOKS_PER_SHELF * NOTES_PER_BOOK)
    assert "selectinload(Shelf.books).selectinload(Book.notes)" in detection.suggestion


@pytest.mark.parametrize("case", ["selectin", "one collection", "few rows", "factor",
                                  "allowed"])
def test_what_is_not_a_row_explosion(shapes_engine: Engine, case: str) -> None:
    factor = 101.0 if case == "factor" else 10.0
    allow = ["Shelf.*"] if case == "allowed" else []
    with Session(shapes_engine) as s, \
            sqlaopt.detect("record", explosion_factor=factor, allow=allow) as report:
        options: tuple[Any, ...] = (joinedload(Shelf.books), joinedload(Shelf.tags))
        if case == "selectin":
            options = (selectinload(Shelf.books), selectinload(Shelf.tags))
        elif case == "one collection":
            options = (joinedload(Shelf.books).joinedload(Book.shelf),)
        query = select(Shelf).options(*options)
        if case == "few rows":  # 9 shelves: 900 rows, under 1,000
            query = query.where(Shelf.id < 10)
        assert s.scalars(query).unique().all()
    assert found(report, "row_explosion") == []


# ---------------------------------------------------------------- row-by-row writes


def _update_each(s: Session) -> None:
    for i in range(1, 6):
        s.execute(update(Tag).where(Tag.id == i).values(label="x"))


def _insert_each(s: Session) -> None:
    for i in range(4):
        s.execute(insert(Tag).values(shelf_id=1, label=f"n{i}"))


def _delete_each(s: Session) -> None:
    for i in range(1, 4):
        s.execute(delete(Tag).where(Tag.id == i))


def _flush_each(s: Session) -> None:
    for tag in s.scalars(select(Tag).where(Tag.shelf_id == 1)).all():
        tag.label += "!"
        s.flush()


WRITES: dict[str, tuple[Callable[[Session], None], int, str]] = {
    "update": (_update_each, 5, "one statement for all rows: session.execute(update(Tag), "),
    "insert": (_insert_each, 4, "one statement for all rows: session.execute(insert(Tag), "),
    "delete": (_delete_each, 3, "one statement for all rows: session.execute(delete(Tag)"
                                ".where(Tag.id.in_(ids)))"),
    "flush": (_flush_each, TAGS_PER_SHELF, "flush once, after the loop"),
}


@pytest.mark.parametrize("write", sorted(WRITES))
def test_row_by_row_writes_are_reported(shapes_engine: Engine, write: str) -> None:
    run, count, fix = WRITES[write]
    with Session(shapes_engine) as s, sqlaopt.detect("record") as report:
        run(s)
        s.rollback()
    [detection] = report.detections
    assert (detection.kind, detection.target, detection.count) == ("row_by_row_write", "Tag",
                                                                   count)
    assert detection.suggestion.startswith(fix)
    assert f"in {run.__name__}" in detection.location
    assert str(report).startswith("1 finding(s), 0 of them N+1 (")  # not "1 N+1"


def _bulk_update(s: Session) -> None:
    s.execute(update(Tag), [{"id": i, "label": "y"} for i in range(1, 30)])


def _bulk_insert(s: Session) -> None:
    s.execute(insert(Tag), [{"shelf_id": 1, "label": f"b{i}"} for i in range(30)])


def _values_insert(s: Session) -> None:
    s.execute(insert(Tag).values([{"shelf_id": 1, "label": f"v{i}"} for i in range(30)]))


def _one_flush(s: Session) -> None:
    for tag in s.scalars(select(Tag)).all():
        tag.label += "?"  # different values: SQLAlchemy may send one UPDATE per row
    s.add_all(Tag(shelf_id=2, label=str(i)) for i in range(30))
    s.flush()


def _one_write_per_call(s: Session) -> None:
    s.execute(update(Tag).where(Tag.id == 1).values(label="once"))
    s.execute(update(Tag).where(Tag.id == 2).values(label="twice"))  # another line


@pytest.mark.parametrize("run", [_bulk_update, _bulk_insert, _values_insert, _one_flush,
                                 _one_write_per_call], ids=lambda f: f.__name__)
def test_bulk_forms_are_not_row_by_row(shapes_engine: Engine, run: Callable[[Session], None]
                                       ) -> None:
    with Session(shapes_engine) as s, sqlaopt.detect("raise") as report, s.no_autoflush:
        run(s)
        s.rollback()
    assert report.detections == []


LIBRARY_WRITER = """
from sqlalchemy import update


def stamp_each(session, table, ids):
    for i in ids:  # a library's loop: the application cannot batch it
        session.execute(update(table).where(table.c.id == i).values(label="stamped"))
"""


def test_a_loop_inside_a_library_is_not_the_applications_row_by_row_write(
    shapes_engine: Engine, tmp_path: Any
) -> None:
    """SQLAlchemy-Continuum writes version rows one by one from its flush listener: reported
    at the application's line, the fix was nobody's to make (17 of ihatemoney's tests)."""
    installed = tmp_path / "site-packages"
    installed.mkdir()
    (installed / "writer_lib.py").write_text(LIBRARY_WRITER)
    spec = importlib.util.spec_from_file_location("writer_lib", installed / "writer_lib.py")
    assert spec is not None and spec.loader is not None
    library = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(library)
    with Session(shapes_engine) as s, sqlaopt.detect("record") as report:
        library.stamp_each(s, Tag.__table__, range(1, 6))
        _update_each(s)  # the same kind of loop in the application is still reported
        s.rollback()
    assert [(d.kind, d.location.rsplit(" in ", 1)[1]) for d in report.detections] == [
        ("row_by_row_write", "_update_each")]


def test_allow_and_threshold_apply_to_writes(shapes_engine: Engine) -> None:
    with Session(shapes_engine) as s:
        with sqlaopt.detect("record", allow=["Tag.*"]) as allowed:
            _update_each(s)
        with sqlaopt.detect("record", threshold=6) as below:
            _update_each(s)
        s.rollback()
    assert allowed.detections == below.detections == []


# ---------------------------------------------------------------- N+1 verdicts unchanged


def test_the_new_kinds_never_change_an_n_plus_one(shapes_engine: Engine) -> None:
    def n_plus_one_loop(s: Session) -> None:
        for book in s.scalars(select(Book).where(Book.shelf_id <= 3).order_by(Book.id)):
            book.shelf.tags[0].label += "."
            s.flush()                          # and a write per book
            s.execute(update(Tag).where(Tag.id == book.id).values(label="w"))

    verdicts = []
    for unused_eager in (False, True):
        with Session(shapes_engine) as s, \
                sqlaopt.detect("record", unused_eager=unused_eager) as report:
            n_plus_one_loop(s)
            s.rollback()
        verdicts.append(sorted((d.kind, d.target, d.count) for d in report.detections
                               if d.kind in ("lazy_load", "column_load",
                                             "repeated_statement")))
    assert verdicts[0] == verdicts[1] == [("lazy_load", "Book.shelf", 3),
                                          ("lazy_load", "Shelf.tags", 3)]
    assert ("row_by_row_write", "Tag", 30) in kinds(report)


@pytest.mark.nplusone(mode="off")  # the middleware's own scope, as in production
def test_the_middlewares_judge_unused_eager_loads_only_when_asked(
    shapes_engine: Engine, caplog: pytest.LogCaptureFixture,
) -> None:
    from wsgiref.util import setup_testing_defaults

    from sqlaopt.wsgi import NPlusOneMiddleware

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        with Session(shapes_engine) as s:
            shelves(s, selectinload(Shelf.books))
        start_response("200 OK", [])
        return [b"ok"]

    caplog.set_level(logging.WARNING, "sqlaopt.nplusone")
    for unused_eager in (False, True):
        environ: dict[str, Any] = {"PATH_INFO": f"/{unused_eager}", "REQUEST_METHOD": "GET"}
        setup_testing_defaults(environ)
        body: Any = NPlusOneMiddleware(app, unused_eager=unused_eager)(
            environ, lambda status, headers: None)
        list(body)
        body.close()
    assert [(fields["kind"], fields["context"]) for fields, _ in nplusone_records(caplog)] == [
        ("unused_eager_load", "GET /True")]
