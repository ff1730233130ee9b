"""sqlaopt's detector against the other SQLAlchemy N+1 tools, in one run.

1. Detection: a shared set of scenarios, each either an N+1 (must be found) or not (must stay
   silent); per tool: true positives, false positives, misses.
2. Overhead: the workloads of ``detector_overhead.py``, conditions interleaved, each tool's
   time as the median per-repetition ratio to no detector.

The peers are installed for this run only, never as project dependencies:

    uv run --with queryspy --with pytest-queryguard --with nplusone \\
        python benchmarks/peers.py [--url postgresql+psycopg://postgres@127.0.0.1/test]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from sqlalchemy import Engine, ForeignKey, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    joinedload,
    mapped_column,
    relationship,
    selectinload,
)

import sqlaopt
from detector_overhead import WORKLOADS, measure, prepare, ratio_table
from sqlaopt.booking.models import Appointment, Base, Client, Service, User

# ---------------------------------------------------------------- scenarios


def _appointments(s: Session, n: int = 6) -> list[Appointment]:
    return list(s.scalars(select(Appointment).order_by(Appointment.id).limit(n)))


def many_to_one_loop(engine: Engine) -> None:
    with Session(engine) as s:
        for a in _appointments(s):
            a.payment  # noqa: B018


def one_to_many_loop(engine: Engine) -> None:
    with Session(engine) as s:
        for u in s.scalars(select(User).limit(5)).all():
            u.appointments  # noqa: B018


def many_to_many_loop(engine: Engine) -> None:
    with Session(engine) as s:
        for service in s.scalars(select(Service)).all():
            service.barbers  # noqa: B018


def model_method_loop(engine: Engine) -> None:
    with Session(engine) as s:
        for u in s.scalars(select(User).limit(5)).all():
            u.get_role_in_organization(1)


def repeated_get(engine: Engine) -> None:
    with Session(engine) as s:
        for i in range(1, 6):
            s.get(Client, i)


def repeated_select(engine: Engine) -> None:
    with Session(engine) as s:
        for i in range(1, 6):
            s.execute(select(Appointment.price).where(Appointment.id == i)).one()


def column_loads_after_commit(engine: Engine) -> None:
    with Session(engine) as s:
        rows = _appointments(s)
        s.commit()
        for a in rows:
            a.status  # noqa: B018


def async_loop(engine: Engine) -> None:
    async def run() -> None:
        url = engine.url.render_as_string(hide_password=False)
        async_url = url.replace("sqlite://", "sqlite+aiosqlite://").replace(
            "postgresql+psycopg://", "postgresql+psycopg_async://")
        async_engine = create_async_engine(async_url)
        async with AsyncSession(async_engine) as s:
            for a in (await s.scalars(select(Appointment).limit(5))).all():
                await a.awaitable_attrs.payment
        await async_engine.dispose()

    asyncio.run(run())


def one_lazy_load(engine: Engine) -> None:
    with Session(engine) as s:
        _appointments(s)[0].client  # noqa: B018


def eager_loaded(engine: Engine) -> None:
    with Session(engine) as s:
        for u in s.scalars(select(User).options(selectinload(User.appointments))).all():
            u.appointments  # noqa: B018
        for a in s.scalars(select(Appointment).options(joinedload(Appointment.client))):
            a.client  # noqa: B018


def identity_map_hits(engine: Engine) -> None:
    with Session(engine) as s:
        services = s.scalars(select(Service)).all()
        for a in _appointments(s):
            assert a.service in services


def first_then_one_load(engine: Engine) -> None:
    with Session(engine) as s:
        first = s.scalars(select(Appointment)).first()
        assert first is not None
        first.client  # noqa: B018


def two_relationships_once(engine: Engine) -> None:
    with Session(engine) as s:
        a = _appointments(s, 1)[0]
        a.client  # noqa: B018
        a.service  # noqa: B018


def core_query_once(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT count(*) FROM appointments")).scalar()


def flush_many_rows(engine: Engine) -> None:
    with Session(engine) as s:
        s.add_all(Client(name=f"walk-in {i}") for i in range(10))
        s.flush()
        s.rollback()


def schema_work(engine: Engine) -> None:
    Base.metadata.create_all(engine)  # checkfirst: one has_table per table


def two_threads_same_line(engine: Engine) -> None:
    def lookup(appointment_id: int) -> None:
        with Session(engine) as s:
            a = s.get(Appointment, appointment_id)
            assert a is not None
            a.payment  # noqa: B018

    threads = [threading.Thread(target=lookup, args=(i,)) for i in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


# ---------------------------------------------------------------- issue 9's shapes


class ShapesBase(DeclarativeBase):
    pass


class Node(ShapesBase):
    """A self-referential tree."""

    __tablename__ = "peers_nodes"
    id: Mapped[int] = mapped_column(primary_key=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("peers_nodes.id"))
    children: Mapped[list[Node]] = relationship()


class Stamped(ShapesBase):
    """Server defaults fetched back by a SELECT inside the flush (no RETURNING)."""

    __tablename__ = "peers_stamped"
    __table_args__: ClassVar[dict[str, Any]] = {"implicit_returning": False}
    __mapper_args__: ClassVar[dict[str, Any]] = {"eager_defaults": True}
    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(server_default=text("1"))


def prepare_shapes(engine: Engine) -> None:
    ShapesBase.metadata.drop_all(engine)
    ShapesBase.metadata.create_all(engine)
    with Session(engine) as s:
        root = Node()
        level = [root]
        for _ in range(3):
            following: list[Node] = []
            for node in level:
                node.children.extend([Node(), Node()])
                following.extend(node.children)
            level = following
        s.add(root)
        s.commit()


def recursive_walk(engine: Engine) -> None:
    def walk(node: Node) -> int:
        return 1 + sum(walk(child) for child in node.children)

    with Session(engine) as s:
        walk(s.scalars(select(Node).where(Node.parent_id.is_(None))).one())


def helper_in_two_loops(engine: Engine) -> None:
    def client_of(a: Appointment) -> object:
        return a.client

    with Session(engine) as s:
        rows = _appointments(s, 12)
        for a in rows[:6]:
            client_of(a)
        for a in rows[6:]:
            client_of(a)


def single_key_in_lists(engine: Engine) -> None:
    with Session(engine) as s:
        for i in range(1, 6):
            s.scalars(select(Client).where(Client.id.in_([i]))).all()


def commented_text_reads(engine: Engine) -> None:
    with Session(engine) as s:
        for i in range(1, 6):
            s.execute(text(f"/* app */ SELECT name FROM clients WHERE id = {i}")).all()


def sequential_threads(engine: Engine) -> None:
    def once(appointment_id: int) -> None:
        with Session(engine) as s:
            a = s.get(Appointment, appointment_id)
            assert a is not None
            a.payment  # noqa: B018

    for i in range(1, 6):
        thread = threading.Thread(target=once, args=(i,))
        thread.start()
        thread.join()


def sequential_tasks(engine: Engine) -> None:
    def once(appointment_id: int) -> None:
        with Session(engine) as s:
            s.get(Appointment, appointment_id)

    async def run() -> None:
        for i in range(1, 6):
            await asyncio.create_task(asyncio.to_thread(once, i))

    asyncio.run(run())


def flush_one_by_one(engine: Engine) -> None:
    with Session(engine) as s:
        for _ in range(5):
            s.add(Stamped())
            s.flush()
        s.rollback()


def chunked_in_lists(engine: Engine) -> None:
    with Session(engine) as s:
        ids = list(range(1, 41))
        for start in range(0, len(ids), 8):
            s.scalars(select(Appointment).where(Appointment.id.in_(ids[start:start + 8]))).all()


def offset_pages(engine: Engine) -> None:
    with Session(engine) as s:
        for page in range(4):
            s.scalars(select(Appointment).order_by(Appointment.id).limit(10)
                      .offset(10 * page)).all()


def keyset_pages(engine: Engine) -> None:
    with Session(engine) as s:
        last = 0
        for _ in range(4):
            rows = s.scalars(select(Appointment).where(Appointment.id > last)
                             .order_by(Appointment.id).limit(10)).all()
            last = rows[-1].id


def requests_in_a_loop(engine: Engine) -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    app = FastAPI()

    @app.get("/payment/{appointment_id}")
    def payment(appointment_id: int) -> bool:
        with Session(engine) as s:
            a = s.get(Appointment, appointment_id)
            return a is not None and a.payment is not None

    with TestClient(app) as client:
        for i in range(1, 6):
            client.get(f"/payment/{i}")


def _status_failing_once(s: Session, appointment_id: int, failures: list[int]) -> str:
    status = s.execute(select(Appointment.status).where(Appointment.id == appointment_id))
    if not failures:  # the first attempt fails after its query, as a deadlock would
        failures.append(appointment_id)
        raise OperationalError("SELECT ...", {}, Exception("deadlock detected"))
    return str(status.scalar_one())


def _status_with_retry(s: Session, appointment_id: int, failures: list[int]) -> str:
    for _attempt in range(3):  # a retry loop: it goes round only when the call failed
        try:
            return _status_failing_once(s, appointment_id, failures)
        except OperationalError:
            s.rollback()
    raise RuntimeError("no attempt succeeded")


def retry_after_a_failure(engine: Engine) -> None:
    with Session(engine) as s:
        _status_with_retry(s, 1, [])


def retries_in_a_loop(engine: Engine) -> None:
    with Session(engine) as s:
        for i in range(1, 6):  # the loop: one call per appointment, none of them failing
            _status_with_retry(s, i, [i])


SCENARIOS: dict[str, tuple[bool, Callable[[Engine], None]]] = {
    "many-to-one loop": (True, many_to_one_loop),
    "one-to-many loop": (True, one_to_many_loop),
    "many-to-many loop": (True, many_to_many_loop),
    "model method in a loop": (True, model_method_loop),
    "session.get() in a loop": (True, repeated_get),
    "select by id in a loop": (True, repeated_select),
    "expired columns after commit": (True, column_loads_after_commit),
    "asyncio awaitable_attrs loop": (True, async_loop),
    "one lazy load after .all()": (False, one_lazy_load),
    "joinedload / selectinload": (False, eager_loaded),
    "many-to-one in identity map": (False, identity_map_hits),
    ".first() then one lazy load": (False, first_then_one_load),
    "two relationships once each": (False, two_relationships_once),
    "Core query once": (False, core_query_once),
    "flush of 10 new rows": (False, flush_many_rows),
    "create_all (schema checks)": (False, schema_work),
    "same line in two threads": (False, two_threads_same_line),
    # issue 9's shapes
    "recursive tree walk": (True, recursive_walk),
    "helper called from two loops": (True, helper_in_two_loops),
    "single-key IN lists in a loop": (True, single_key_in_lists),
    "commented f-string SQL in a loop": (True, commented_text_reads),
    "sequential threads, once each": (False, sequential_threads),
    "sequential tasks, once each": (False, sequential_tasks),
    "flush per row fetching defaults": (False, flush_one_by_one),
    "chunked IN lists (batching)": (False, chunked_in_lists),
    "LIMIT/OFFSET pages": (False, offset_pages),
    "keyset pages": (False, keyset_pages),
    "one request per loop iteration": (False, requests_in_a_loop),
    "a retry that runs its query again": (False, retry_after_a_failure),
    "a loop over a retrying helper": (True, retries_in_a_loop),
}

# ---------------------------------------------------------------- tools


@dataclass
class Tool:
    name: str
    scope: Callable[[], contextlib.AbstractContextManager[Any]]
    found: Callable[[Any], bool]  # given what the scope yielded, after it closed
    limits: str


# The peers report N+1s only; sqlaopt's other finding kinds (a flush per row is also a
# row-by-row write, issue 13) are not N+1 verdicts.
N_PLUS_ONE_KINDS = frozenset({"lazy_load", "column_load", "repeated_statement"})


def sqlaopt_tool() -> Tool:
    return Tool("sqlaopt", lambda: sqlaopt.detect("record"),
                lambda report: any(d.kind in N_PLUS_ONE_KINDS for d in report.detections), "")


def queryspy_tool() -> Tool | None:
    try:
        queryspy = importlib.import_module("queryspy")
    except ImportError:
        return None

    return Tool("queryspy", lambda: queryspy.record(),
                lambda rec: bool(rec.findings(threshold=2)),
                "test-focused: no production log mode or per-request middleware for logging")


def queryguard_tool() -> Tool | None:
    try:
        api = importlib.import_module("pytest_queryguard.api")
    except ImportError:
        return None

    def found(log: Any) -> bool:
        try:
            log.assert_no_nplusone(relationship_threshold=2, repeat_threshold=2,
                                   column_load_threshold=2)
        except AssertionError:
            return True
        return False

    return Tool("pytest-queryguard", api.record_queries, found,
                "pytest only; thresholds are at least 2 and repeats default to 5")


UNAVAILABLE: list[str] = []


def nplusone_tool() -> Tool | None:
    try:
        importlib.import_module("nplusone.ext.sqlalchemy")
        profiler = importlib.import_module("nplusone.core.profiler")
        exceptions = importlib.import_module("nplusone.core.exceptions")
    except ImportError:
        return None
    except AttributeError as error:  # it patches SQLAlchemy internals that 2.1 renamed
        UNAVAILABLE.append(f"nplusone 1.0: cannot even be imported on this SQLAlchemy ({error})")
        return None

    @contextlib.contextmanager
    def scope() -> Iterator[list[bool]]:
        raised: list[bool] = []
        try:
            with profiler.Profiler():
                yield raised
        except exceptions.NPlusOneError:
            raised.append(True)

    return Tool("nplusone 1.0", scope, lambda raised: bool(raised),
                "patches Query.__iter__, which 2.0-style session.execute() never calls")


def detection_matrix(engine: Engine, tools: list[Tool]) -> str:
    lines = ["| scenario | N+1? | " + " | ".join(t.name for t in tools) + " |",
             "|---|---|" + "---|" * len(tools)]
    totals = {t.name: {"tp": 0, "fp": 0, "miss": 0, "error": 0} for t in tools}
    for name, (expected, scenario) in SCENARIOS.items():
        cells = []
        for tool in tools:
            try:
                with tool.scope() as handle:
                    scenario(engine)
                found = tool.found(handle)
            except Exception as error:  # a tool that breaks the scenario: reported as such
                cells.append(f"error ({type(error).__name__})")
                totals[tool.name]["error"] += 1
                continue
            verdict = {(True, True): "found", (True, False): "**missed**",
                       (False, True): "**false alarm**", (False, False): "silent"}[expected, found]
            key = {"found": "tp", "**missed**": "miss", "**false alarm**": "fp"}.get(verdict)
            if key:
                totals[tool.name][key] += 1
            cells.append(verdict)
        lines.append(f"| {name} | {'yes' if expected else 'no'} | " + " | ".join(cells) + " |")
    n_plus_ones = sum(expected for expected, _ in SCENARIOS.values())
    lines.append("")
    lines.append("| tool | true positives | false positives | misses | errors |")
    lines.append("|---|---|---|---|---|")
    for tool in tools:
        t = totals[tool.name]
        lines.append(f"| {tool.name} | {t['tp']}/{n_plus_ones} | {t['fp']} | {t['miss']} | "
                     f"{t['error']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=None,
                        help="database URL (default: a temporary SQLite file)")
    parser.add_argument("--reps", type=int, default=9, help="interleaved repetitions for overhead")
    args = parser.parse_args()
    logging.getLogger("sqlaopt").addHandler(logging.NullHandler())
    logging.getLogger("sqlaopt").propagate = False
    with tempfile.TemporaryDirectory() as folder:
        url = args.url or f"sqlite:///{os.path.join(folder, 'peers.db')}"
        engine = prepare(url)
        prepare_shapes(engine)
        tools = [t for t in (sqlaopt_tool(), queryspy_tool(), queryguard_tool(), nplusone_tool())
                 if t is not None]
        print(f"database: {engine.dialect.name}; tools: {', '.join(t.name for t in tools)}\n")
        print("## Detection\n")
        print(detection_matrix(engine, tools))
        conditions: dict[str, Callable[[], Any]] = {"none": contextlib.nullcontext}
        for tool in tools:
            if tool.name != "nplusone 1.0":  # detects nothing on 2.x: its cost says nothing
                conditions[tool.name] = _timed_scope(tool)
        for workload in WORKLOADS.values():
            workload(engine)
        print(f"\n## Overhead ({args.reps} interleaved repetitions)\n")
        print(ratio_table(measure(engine, conditions, args.reps)))
        print("\n## What each peer cannot do\n")
        for tool in tools:
            if tool.limits:
                print(f"- {tool.name}: {tool.limits}")
        for reason in UNAVAILABLE:
            print(f"- {reason}")
        Base.metadata.drop_all(engine)
        ShapesBase.metadata.drop_all(engine)
        engine.dispose()


def _timed_scope(tool: Tool) -> Callable[[], contextlib.AbstractContextManager[Any]]:
    """The tool's scope including its end-of-scope analysis, which is part of its cost."""

    @contextlib.contextmanager
    def scope() -> Iterator[None]:
        with tool.scope() as handle:
            yield
        tool.found(handle)

    return scope


if __name__ == "__main__":
    main()
