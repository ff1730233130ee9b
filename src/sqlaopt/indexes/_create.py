"""``create()``: build what the database lacks, safely, and repair INVALID leftovers."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Connection, Engine
from sqlalchemy.dialects.postgresql import ExcludeConstraint
from sqlalchemy.orm import Session

from ._apply import PlanItem, format_table, plan
from ._check import EntryCheck, check_plan
from ._dialects import dialect_key, needs_btree_gist
from ._errors import IndexBuildError, IndexSpecError
from ._named import NamedSequence
from ._render import BTREE_GIST, create_statement, drop_statement
from ._report import REPORT
from ._spec import Entry, Spec

__all__ = ["CreateAction", "CreateResult", "create"]

Action = Literal["created", "rebuilt", "present", "skipped", "different", "failed"]


@dataclass(frozen=True)
class CreateAction:
    """What :func:`create` did for one entry: ``created``, ``rebuilt`` (an INVALID leftover was
    dropped first), ``present`` (nothing to do), ``skipped`` (not built on this dialect),
    ``different`` (an index of that name exists with another definition: left alone, see
    ``detail``) or ``failed`` (``detail`` holds the database's error). ``statements`` are the
    statements executed for it."""

    name: str
    action: Action
    detail: str = ""
    statements: tuple[str, ...] = ()


@dataclass(frozen=True)
class CreateResult(NamedSequence[CreateAction]):
    """The outcome of :func:`create`: one :class:`CreateAction` per entry, in spec order."""

    dialect: str
    actions: tuple[CreateAction, ...]
    #: Statements run before the entries (``CREATE EXTENSION IF NOT EXISTS btree_gist``).
    preamble: tuple[str, ...] = ()

    def _items(self) -> tuple[CreateAction, ...]:
        return self.actions

    @property
    def statements(self) -> tuple[str, ...]:
        """Every statement executed, in order."""
        return self.preamble + tuple(s for a in self.actions for s in a.statements)

    @property
    def ok(self) -> bool:
        """True when nothing failed."""
        return all(a.action != "failed" for a in self.actions)

    def table(self) -> str:
        """A plain-text report, one line per entry."""
        rows = [("entry", "action", "detail")]
        rows += [(a.name, a.action, a.detail) for a in self.actions]
        return format_table(rows)

    def __str__(self) -> str:
        return self.table()


def create(
    bind: Engine | Connection | Session,
    spec: Spec | Iterable[Entry] = REPORT,
    target: object | None = None,
) -> CreateResult:
    """Build on the database behind ``bind`` whatever of ``spec`` is missing.

    PostgreSQL: ``CREATE EXTENSION IF NOT EXISTS btree_gist`` first when a GiST entry needs
    it, then each index with ``CREATE INDEX CONCURRENTLY``, one statement per execution on an
    autocommit connection (CONCURRENTLY cannot run inside a transaction block; pass an Engine,
    or a Connection with no transaction begun). An INVALID index left by a failed or
    interrupted build is dropped (``DROP INDEX CONCURRENTLY``) and rebuilt, never kept.
    Exclusion constraints come last: adding one locks the table while its index builds.
    Other dialects: plain ``CREATE INDEX``, each committed on its own (inside the caller's
    transaction when ``bind`` is a Connection that has one: the caller commits).

    Present entries are left alone, so it is safe to run twice and after an interruption.
    An index with the spec's name but another definition is reported ``different`` and left
    alone. A failing entry does not stop the others; :class:`IndexBuildError` is raised at
    the end, carrying the :class:`CreateResult`.
    """
    with _maintenance_connection(bind) as (conn, owned):
        key = dialect_key(conn.dialect)
        fitted = plan(spec, target, concurrently=key == "postgresql")
        checked = check_plan(conn, fitted)
        run = _runner(conn, key, owned)
        todo = [
            (item, state)
            for item, state in zip(fitted.items, checked, strict=True)
            if state.status in ("missing", "invalid")
        ]
        preamble: tuple[str, ...] = ()
        if key == "postgresql" and any(needs_btree_gist(_definition(i)) for i, _ in todo):
            run(BTREE_GIST)
            preamble = (BTREE_GIST,)
        # Indexes first, exclusion constraints (which lock the table) last.
        order = sorted(
            range(len(fitted.items)),
            key=lambda i: isinstance(fitted.items[i].obj, ExcludeConstraint),
        )
        actions: dict[int, CreateAction] = {}
        for position in order:
            item, state = fitted.items[position], checked[position]
            actions[position] = _act(item, state, conn, key, run)
    result = CreateResult(key, tuple(actions[i] for i in range(len(fitted.items))), preamble)
    if not result.ok:
        failed = [f"  {a.name}: {a.detail}" for a in result if a.action == "failed"]
        raise IndexBuildError("some entries could not be built:\n" + "\n".join(failed), result)
    return result


def _definition(item: PlanItem) -> Entry:
    assert item.result.definition is not None
    return item.result.definition


def _act(
    item: PlanItem, state: EntryCheck, conn: Connection, key: str, run: Callable[[str], None]
) -> CreateAction:
    if state.status in ("present", "skipped", "different"):
        return CreateAction(item.result.name, state.status, state.detail)
    statements = []
    if state.status == "invalid":
        statements.append(drop_statement(item, conn.dialect, key))
    statements.append(create_statement(item, conn.dialect, key))
    done: list[str] = []
    try:
        for statement in statements:
            run(statement)
            done.append(statement)
    except Exception as error:  # reported per entry, raised together at the end
        message = str(getattr(error, "orig", error)).strip().splitlines()[0]
        return CreateAction(item.result.name, "failed", message, tuple(done))
    action: Action = "rebuilt" if state.status == "invalid" else "created"
    return CreateAction(item.result.name, action, state.detail, tuple(done))


def _runner(conn: Connection, key: str, owned: bool) -> Callable[[str], None]:
    """Execute one statement per call: autocommit on PostgreSQL; elsewhere committed one by
    one on our own connection, or inside the caller's transaction on theirs."""

    def run(statement: str) -> None:
        conn.exec_driver_sql(statement)
        if owned and key != "postgresql":
            conn.commit()

    return run


@contextmanager
def _maintenance_connection(
    bind: Engine | Connection | Session,
) -> Iterator[tuple[Connection, bool]]:
    """A connection fit for DDL (autocommit on PostgreSQL, outside any transaction), and
    whether it is ours to commit."""
    if isinstance(bind, Session):
        engine = bind.get_bind()
        if not isinstance(engine, Engine):
            raise IndexSpecError("create() needs an Engine; this Session is bound to a Connection")
        bind = engine
    if isinstance(bind, Engine):
        with bind.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn.execution_options(isolation_level="AUTOCOMMIT")
            yield conn, True
        return
    if not isinstance(bind, Connection):
        raise IndexSpecError(f"bind must be an Engine, Connection or Session, not {bind!r}")
    if bind.dialect.name != "postgresql":
        # Inside the caller's transaction the caller commits; otherwise each statement is.
        yield bind, not bind.in_transaction()
        return
    if bind.in_transaction():
        raise IndexSpecError(
            "create() needs a connection outside any transaction: CREATE INDEX CONCURRENTLY "
            "cannot run inside a transaction block. Pass the Engine, or commit first."
        )
    bind.execution_options(isolation_level="AUTOCOMMIT")
    try:
        yield bind, True
    finally:
        bind.rollback()  # end the autocommit "transaction" SQLAlchemy began: the level may change
        bind.execution_options(isolation_level=bind.default_isolation_level)
