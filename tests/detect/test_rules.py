"""The refined detection rule (docs/detection.md), one test per point, on SQLite and PostgreSQL
(MariaDB where its behaviour differs)."""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, column, func, select, text, update, values
from sqlalchemy.orm import Session, aliased

import sqlaopt
from sqlaopt import NPlusOneError
from sqlaopt.booking.models import Appointment, Client, User
from sqlaopt.detect._callsite import (
    _APP,
    _LIBRARY,
    _classify,
    _item_id,
    is_test_code,
    restore_test_code,
    set_test_code,
)
from sqlaopt.detect._suggest import entity_name

from .conftest import kinds
from .shapes import Category, Stamped, Team

# ---------------------------------------------------------------- helpers of the "application"


def client_of(appointment: Appointment) -> Any:
    return appointment.client  # the innermost application frame: a helper


def touch_clients(rows: list[Appointment]) -> None:
    for a in rows:
        client_of(a)


def caller_one(rows: list[Appointment]) -> None:
    touch_clients(rows)


def caller_two(rows: list[Appointment]) -> None:
    touch_clients(rows)


def walk(node: Category, seen: list[str]) -> None:
    seen.append(node.name)
    for child in node.children:
        walk(child, seen)


def appointments(session: Session, n: int = 6) -> list[Appointment]:
    return list(session.scalars(select(Appointment).order_by(Appointment.id).limit(n)))


# ---------------------------------------------------------------- 1. one report per loop location


def test_a_loop_reached_from_two_call_sites_is_one_detection(session: Session) -> None:
    rows = appointments(session, 12)
    with sqlaopt.detect("record") as report:
        caller_one(rows[:6])
        caller_two(rows[6:])
    [d] = report.detections
    assert d.target == "Appointment.client"
    assert d.count == report.statements > 6  # every load, from both call sites
    assert "in client_of" in d.location and "in touch_clients" in (d.loop or "")


def test_a_helper_called_once_from_two_places_is_not_a_loop(session: Session) -> None:
    a, b = appointments(session, 2)
    with sqlaopt.detect("record") as report:
        client_of(a)
        client_of(b)
    assert report.detections == []


def test_a_recursive_walk_is_one_loop_at_every_depth(shapes_engine: Engine) -> None:
    with Session(shapes_engine) as s:
        root = s.scalars(select(Category).where(Category.parent_id.is_(None))).one()
        with sqlaopt.detect("record") as report:
            seen: list[str] = []
            walk(root, seen)
    assert len(seen) == 15
    [d] = report.detections
    assert d.target == "Category.children" and d.count == 15
    assert d.suggestion == "selectinload(Category.children, recursion_depth=4)"
    assert "in walk" in d.location


def test_thread_pool_workers_running_the_loop_sum_into_one_detection(
    concurrent_engine: Engine,
) -> None:
    def worker(offset: int) -> None:
        with Session(concurrent_engine) as s:
            rows = s.scalars(select(Appointment).order_by(Appointment.id)
                             .offset(offset).limit(4)).all()
            touch_clients(list(rows))

    with sqlaopt.detect("record") as report, ThreadPoolExecutor(4) as pool:
        list(pool.map(worker, [0, 8, 16, 24]))  # the work carries the test's context
    [d] = report.detections
    assert d.target == "Appointment.client" and d.count >= 8  # each worker: 2+ loads


# ---------------------------------------------------------------- 2. lanes


def test_sequential_threads_and_tasks_never_add_up(booking_engine: Engine) -> None:
    def once(appointment_id: int) -> None:
        with Session(booking_engine) as s:
            s.get(Appointment, appointment_id).client  # type: ignore[union-attr]  # noqa: B018

    async def tasks() -> None:
        for i in range(1, 8):  # each task finishes (and is freed) before the next starts
            await asyncio.create_task(asyncio.to_thread(once, i))

    with sqlaopt.detect("record") as report:
        for i in range(1, 8):
            thread = threading.Thread(target=once, args=(i,))
            thread.start()
            thread.join()
        asyncio.run(tasks())
        with ThreadPoolExecutor(2) as pool:
            for i in range(1, 8):  # one work item after another on the same worker thread
                pool.submit(once, i).result()
    assert report.detections == []
    assert report.statements == 2 * 21


# ---------------------------------------------------------------- 3. a write's own SQL


def test_selects_a_flush_runs_are_never_an_n_plus_one(shapes_engine: Engine) -> None:
    # Raised when the scope ends, never inside flush().
    with pytest.raises(NPlusOneError) as raised, Session(shapes_engine) as s, \
            sqlaopt.detect("raise") as report:
        for i in range(5):  # one by one: each flush fetches the server defaults back
            s.add(Stamped(label=f"row {i}"))
            s.flush()
        assert all(row.version == 1 for row in s.scalars(select(Stamped)))
        s.rollback()
    # The flush per iteration is a row-by-row write (issue 13); its SELECTs are no N+1.
    assert [(d.kind, d.count) for d in report.detections] == [("row_by_row_write", 5)]
    assert raised.value.detections == report.detections


def test_synchronize_session_fetch_on_mariadb(mariadb_booking: Engine) -> None:
    with Session(mariadb_booking) as s, sqlaopt.detect("record") as report:
        s.scalars(select(Appointment).limit(5)).all()
        for i in range(1, 5):  # MariaDB has no UPDATE ... RETURNING: a SELECT comes first
            s.execute(update(Appointment).where(Appointment.id == i).values(status="x"),
                      execution_options={"synchronize_session": "fetch"})
        s.rollback()
    # The UPDATEs one by one are a row-by-row write (issue 13); their SELECTs are no N+1.
    assert [(d.kind, d.count) for d in report.detections] == [("row_by_row_write", 4)]


def test_cascade_lazy_loads_of_delete_stay_reportable(shapes_engine: Engine) -> None:
    with Session(shapes_engine) as s, sqlaopt.detect("record") as report, s.no_autoflush:
        for team in s.scalars(select(Team)).all():
            s.delete(team)  # the delete cascade loads each team's members
        s.rollback()
    [d] = [d for d in report.detections if d.target == "Team.members"]
    assert d.suggestion.startswith(
        "relationship(..., passive_deletes=True) on Team.members with ON DELETE CASCADE")
    assert d.suggestion.endswith("or load it with the query: selectinload(Team.members)")


# ---------------------------------------------------------------- 4. reads, whatever precedes them


PREFIXES = ["", "  \n\t", "-- a comment\n", "/* block */ ", "/*traceparent='00-1-2-01'*/ ",
            "-- one\n/* two */\n"]


@pytest.mark.parametrize("prefix", PREFIXES)
def test_reads_are_recognised_after_comments(session: Session, prefix: str) -> None:
    parenthesised = session.bind.dialect.name == "postgresql"  # type: ignore[union-attr]
    with sqlaopt.detect("record") as report:
        for i in range(1, 4):
            session.execute(text(f"{prefix}SELECT name FROM clients WHERE id = :i"),
                            {"i": i}).all()
            session.execute(text(f"{prefix}WITH c AS (SELECT id FROM clients) "
                                 "SELECT id FROM c WHERE id = :i"), {"i": i}).all()
            session.execute(text(f"{prefix}VALUES (1)")).all()
            if parenthesised:  # SQLite does not accept a parenthesised top-level SELECT
                session.execute(text(f"{prefix}(SELECT phone FROM clients WHERE id = :i)"),
                                {"i": i}).all()
    assert [d.count for d in report.detections] == [3] * (4 if parenthesised else 3)


def test_a_data_modifying_with_is_a_write(session: Session) -> None:
    with sqlaopt.detect("record") as report:
        for i in range(1, 4):
            session.execute(text("WITH moved AS (SELECT id FROM clients WHERE id = :i) "
                                 "UPDATE clients SET phone = 'x' WHERE id IN "
                                 "(SELECT id FROM moved)"), {"i": i})
    assert report.detections == []


# ---------------------------------------------------------------- 5. shapes are fingerprints


def test_literal_values_make_the_same_shape(session: Session) -> None:
    with sqlaopt.detect("record") as report:
        for i in range(1, 5):
            session.execute(text(f"SELECT name FROM clients WHERE id = {i} AND name <> 'x{i}'"))
        for column in ("name", "phone"):  # a different structure each time
            session.execute(text(f"SELECT {column} FROM clients WHERE id = 1"))
    assert kinds(report) == [("repeated_statement", "Client", 4)]


# ---------------------------------------------------------------- 6. batching


def test_batches_and_pages_are_not_n_plus_ones(session: Session) -> None:
    ids = [a.id for a in appointments(session, 40)]
    with sqlaopt.detect("record") as report:
        for start in range(0, len(ids), 7):  # IN lists, the last one with a single value
            chunk = ids[start:start + 7] if start + 7 < len(ids) else ids[-1:]
            session.scalars(select(Appointment).where(Appointment.id.in_(chunk))).all()
        for page in range(3):  # LIMIT/OFFSET
            session.scalars(select(Client).order_by(Client.id).limit(4).offset(4 * page)).all()
        last = 0
        while True:  # keyset
            rows = session.scalars(select(User).where(User.id > last).order_by(User.id)
                                   .limit(5)).all()
            if not rows:
                break
            last = rows[-1].id
    assert report.detections == []


def test_single_key_fetches_are_still_an_n_plus_one(session: Session) -> None:
    with sqlaopt.detect("record") as report:
        for i in range(1, 5):
            session.scalars(select(Client).where(Client.id.in_([i]))).all()
    assert kinds(report) == [("repeated_statement", "Client", 4)]


# ---------------------------------------------------------------- 8. where the loop is


def test_the_loop_of_a_helper_is_named_and_two_loops_are_two_detections(
    session: Session,
) -> None:
    rows = appointments(session)
    with sqlaopt.detect("record") as report:
        for a in rows[:3]:
            client_of(a)
        for a in rows[3:]:
            client_of(a)
    loops = sorted(d.loop or "" for d in report.detections)
    assert len(report.detections) == 2 and all("in test_the_loop_of_a_helper" in lp
                                               for lp in loops)
    assert all("in client_of" in d.location for d in report.detections)
    assert loops[0] != loops[1]


def test_reading_a_loops_item_keeps_no_local_alive_and_spares_locals_dicts() -> None:
    # The item a frame's loop is at is read through f_locals, a snapshot dict kept on the
    # frame before Python 3.13: emptied unless the application holds it (locals()).
    class Row:
        pass

    def walk(keep: bool) -> tuple[list[int], list[int], bool, dict[str, Any] | None]:
        held = locals() if keep else None
        rows = [Row(), Row()]
        ids = [id(r) for r in rows]
        refs = [weakref.ref(r) for r in rows]
        items = []
        for row in rows:  # noqa: B007  (read through the frame)
            items.append(_item_id(sys._getframe()))
        del rows, row
        gc.collect()  # this frame still runs: only a snapshot of its locals could hold them
        return items, ids, all(r() is None for r in refs), held

    items, ids, freed, _ = walk(keep=False)
    assert items == ids and freed
    items, ids, _, held = walk(keep=True)
    assert items == ids and held is not None and "keep" in held  # the application's dict


def test_test_directories_are_found_below_the_rootdir_only(tmp_path: Path) -> None:
    root = tmp_path / "test" / "project"  # a checkout that happens to live under test/
    (root / "tests" / "unit").mkdir(parents=True)
    previous = set_test_code([str(root / "tests" / "unit" / "test_a.py"),
                              str(root / "app" / "test_views.py")], str(root))
    try:
        assert is_test_code(str(root / "tests" / "helpers.py"))
        assert is_test_code(str(root / "tests" / "unit" / "factories.py"))
        assert not is_test_code(str(tmp_path / "test" / "elsewhere.py"))  # above the rootdir
        assert not is_test_code(str(root / "app" / "views.py"))  # Django-style app/tests
        assert not is_test_code(str(root / "app" / "models.py"))
    finally:
        restore_test_code(previous)


def test_a_column_load_names_the_attribute_read(session: Session) -> None:
    rows = appointments(session, 4)
    session.commit()
    with sqlaopt.detect("record") as report:
        for a in rows:
            getattr(a, "status")  # noqa: B009  (read by name: no LOAD_ATTR at the line)
    [d] = report.detections
    assert (d.kind, d.relationship) == ("column_load", "status")


def test_the_same_statement_with_the_same_parameters_is_hoisted(session: Session) -> None:
    with sqlaopt.detect("record") as report:
        for _ in range(3):
            session.execute(select(User.name).where(User.id == 1)).one()
    [d] = report.detections
    assert "run it once before the loop" in d.suggestion


# ---------------------------------------------------------------- 9. the application's names


def test_count_aliases_and_subqueries_report_the_mapped_class(session: Session) -> None:
    alias = aliased(Client)
    sub = select(Appointment.id, Appointment.client_id).subquery()
    with sqlaopt.detect("record") as report:
        for i in range(1, 4):
            session.query(Appointment).filter(Appointment.id > i).count()
            session.scalars(select(alias).where(alias.id == i)).all()
            session.execute(select(sub.c.id).where(sub.c.client_id == i)).all()
    assert sorted(d.model for d in report.detections) == ["Appointment", "Appointment", "Client"]


def test_an_anonymous_from_clause_is_never_a_name(session: Session) -> None:
    # An anonymous FROM's name is a template ("%(140036088630352 anon)s", seen on mealie's
    # pagination) that changes every run: a baseline could never match it.
    union = select(Appointment.id).union(select(Appointment.id)).subquery()
    with sqlaopt.detect("record") as report:
        for i in range(1, 4):
            session.execute(select(func.count()).select_from(union).where(union.c.id > i)).one()
    assert [d.model for d in report.detections] == ["Appointment"]
    rows = values(column("n")).data([(1,), (2,)])
    assert entity_name(select(func.count()).select_from(rows)) is None


def test_a_lazy_load_inside_commit_is_reported_at_the_application_line(
    session: Session,
) -> None:
    from sqlalchemy import event

    rows = appointments(session, 4)

    def audit(s: Session) -> None:
        for a in rows:
            a.service  # noqa: B018  (an application listener, run by commit())

    event.listen(session, "before_commit", audit)
    with sqlaopt.detect("record") as report:
        session.commit()
    [d] = report.detections
    assert "test_rules.py" in d.location and "in audit" in d.location


@pytest.mark.parametrize(("path", "kind"), [
    ("/venv/lib/python3.12/site-packages/pkg/mod.py", _LIBRARY),
    ("/home/u/.local/lib/python3.11/site-packages/pkg/mod.py", _LIBRARY),
    ("/root/.cache/uv/archive-v0/abc/lib/python3.11/site-packages/pkg/m.py", _LIBRARY),
    ("/usr/lib/python3/dist-packages/pkg/mod.py", _LIBRARY),
    ("/srv/app.pyz/pkg/mod.py", _LIBRARY),
    ("/srv/app/models.py", _APP),
])
def test_library_frames_wherever_packages_are_installed(path: str, kind: int) -> None:
    assert _classify(path) == kind


def test_users_can_name_their_own_library_places(tmp_path: Any) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    assert _classify(str(shared / "util.py")) == _APP
    sqlaopt.treat_as_library(str(shared))
    assert _classify(str(shared / "util.py")) == _LIBRARY
    with pytest.raises(ValueError, match="neither a directory nor an importable package"):
        sqlaopt.treat_as_library("no_such_package_here")


def test_sqlaopts_own_tooling_is_not_the_applications_sql(session: Session) -> None:
    from sqlaopt import explain

    with sqlaopt.detect("raise") as report:
        for i in range(1, 4):  # EXPLAIN, like index checks and monitoring, is tooling
            explain.explain(session, select(Appointment).where(Appointment.id == i))
    assert report.detections == [] and report.statements >= 3


def test_a_loop_stays_one_place_while_python_specialises_it(booking_engine: Engine) -> None:
    """CPython 3.11 specialises a call after a few runs, and a frame calling a builtin such as
    ``getattr`` then reports another instruction offset: keyed by offsets, the first loads of
    a fresh loop and the rest were two places, each under the threshold. Keys use lines."""
    fresh: dict[str, Any] = {}  # compiled now, so no run has specialised it yet
    exec(compile("def touch(rows):\n    for row in rows:\n        getattr(row, 'payment')\n",
                 __file__, "exec"), fresh)
    with Session(booking_engine) as session:
        rows = session.scalars(select(Appointment).order_by(Appointment.id).limit(12)).all()
        with sqlaopt.detect("record", threshold=12) as report:
            fresh["touch"](rows)
    [d] = report.detections
    assert (d.target, d.count) == ("Appointment.payment", 12)
