"""``create()``: build what the database lacks, safely, and repair INVALID leftovers."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace
from typing import Literal

from sqlalchemy import Connection, Engine, text
from sqlalchemy.dialects.postgresql import ExcludeConstraint
from sqlalchemy.orm import Session

from ._apply import Plan, PlanItem, format_table, plan
from ._check import EntryCheck, check_plan
from ._dialects import dialect_key, needs_btree_gist
from ._errors import IndexBuildError, IndexSpecError
from ._introspect import qualified_index, read_validity
from ._locks import build_lock, lock_timeout
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
    *,
    lock_timeout: float | None = None,
) -> CreateResult:
    """Build on the database behind ``bind`` whatever of ``spec`` is missing.

    Safe to run from several processes at once: each run holds a build lock on the spec's
    tables while it checks, builds and re-checks (PostgreSQL advisory locks, MySQL/MariaDB
    ``GET_LOCK``, SQLite ``BEGIN IMMEDIATE``), so a second run waits and then finds the
    indexes present. ``lock_timeout`` (seconds) bounds that wait, and on PostgreSQL also the
    wait of ``ALTER TABLE ... ADD CONSTRAINT`` for its table lock (which blocks every query on
    the table while it waits); past it :class:`IndexLockError` is raised (nothing built) or
    the entry fails. None waits as the connection's settings say.

    PostgreSQL: ``CREATE EXTENSION IF NOT EXISTS btree_gist`` first when a GiST entry needs
    it, then each index with ``CREATE INDEX CONCURRENTLY``, one statement per execution on an
    autocommit connection (CONCURRENTLY cannot run inside a transaction block; pass an Engine,
    or a Connection with no transaction begun). An INVALID index left by a failed or
    interrupted build is dropped (``DROP INDEX CONCURRENTLY``) and rebuilt, never kept, unless
    another session is building it right now (``pg_stat_progress_create_index``): then the
    entry fails and is left alone. Exclusion constraints come last: adding one locks the table
    while its index builds. MySQL/MariaDB: plain ``CREATE INDEX``, each committed on its own;
    DDL commits implicitly there, so a Connection inside a transaction is refused. SQLite: one
    transaction, or the caller's transaction when ``bind`` is a Connection that has one (the
    caller commits).

    Every entry is checked again after the build: ``created``/``rebuilt`` means the index is
    there, valid and as declared. Present entries are left alone, so it is safe to run twice
    and after an interruption. An index with the spec's name but another definition is
    reported ``different`` and left alone. A failing entry does not stop the others;
    :class:`IndexBuildError` is raised at the end (also while any entry is INVALID), carrying
    the :class:`CreateResult`.
    """
    with _maintenance_connection(bind) as (conn, owned):
        key = dialect_key(conn.dialect)
        fitted = plan(spec, target, concurrently=key == "postgresql")
        tables = list({id(i.table): i.table for i in fitted.items if i.table is not None}.values())
        lock = build_lock(conn, key, tables, lock_timeout) if owned else nullcontext()
        with lock:
            preamble, actions = _build(conn, key, fitted, _runner(conn, key, owned), lock_timeout)
            verified = _verified(conn, key, fitted, actions)
    result = CreateResult(key, verified, preamble)
    if not result.ok:
        failed = [f"  {a.name}: {a.detail}" for a in result if a.action == "failed"]
        raise IndexBuildError("some entries could not be built:\n" + "\n".join(failed), result)
    return result


def _build(
    conn: Connection, key: str, fitted: Plan, run: Callable[[str], None], timeout: float | None
) -> tuple[tuple[str, ...], list[CreateAction]]:
    """Check, then build what is missing or INVALID: the preamble run and one action each."""
    items = fitted.items
    states = check_plan(conn, fitted).entries
    todo = [i for i, state in enumerate(states) if state.status in ("missing", "invalid")]
    preamble: tuple[str, ...] = ()
    if key == "postgresql" and any(needs_btree_gist(_definition(items[i])) for i in todo):
        run(BTREE_GIST)
        preamble = (BTREE_GIST,)
    busy = _being_built(conn, [items[i] for i in todo if states[i].status == "invalid"], key)
    actions: dict[int, CreateAction] = {}
    for i, item in enumerate(items):
        if not isinstance(item.obj, ExcludeConstraint):
            actions[i] = _act(item, states[i], conn, key, run, busy)
    # Exclusion constraints last: ALTER TABLE waits for a lock that blocks every query on the
    # table while it waits, so on PostgreSQL the wait is bounded by the lock timeout.
    with lock_timeout(conn, timeout) if key == "postgresql" else nullcontext():
        for i, item in enumerate(items):
            if i not in actions:
                actions[i] = _act(item, states[i], conn, key, run, busy)
    return preamble, [actions[i] for i in range(len(items))]


def _definition(item: PlanItem) -> Entry:
    assert item.result.definition is not None
    return item.result.definition


def _act(
    item: PlanItem,
    state: EntryCheck,
    conn: Connection,
    key: str,
    run: Callable[[str], None],
    busy: set[str],
) -> CreateAction:
    if state.status in ("present", "skipped", "different"):
        return CreateAction(item.result.name, state.status, state.detail)
    if item.result.name in busy:
        return CreateAction(
            item.result.name,
            "failed",
            "INVALID while another session builds it (pg_stat_progress_create_index): left "
            "alone; run create again when that build has finished",
        )
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


_BEING_BUILT = text(
    "SELECT q FROM unnest(CAST(:indexes AS text[])) AS q WHERE to_regclass(q) IN ("
    "SELECT index_relid FROM pg_stat_progress_create_index WHERE pid <> pg_backend_pid())"
)


def _being_built(conn: Connection, invalid: list[PlanItem], key: str) -> set[str]:
    """The names of the INVALID entries whose index another session is building now (a
    concurrent build is INVALID until it finishes): never dropped."""
    if key != "postgresql" or not invalid:
        return set()
    names = {
        qualified_index(conn.dialect, item.result.name, item.table): item.result.name
        for item in invalid
        if item.table is not None
    }
    found = conn.execute(_BEING_BUILT, {"indexes": list(names)}).scalars()
    return {names[q] for q in found}


def _verified(
    conn: Connection, key: str, fitted: Plan, actions: list[CreateAction]
) -> tuple[CreateAction, ...]:
    """The actions as the database confirms them: a build that left no valid index
    (``IF NOT EXISTS`` met another session's unfinished build, say) is a failure."""
    built = [
        (item, action)
        for item, action in zip(fitted.items, actions, strict=True)
        if action.action in ("created", "rebuilt")
    ]
    named = [(item.result.name, item.table) for item, _ in built if item.table is not None]
    valid = read_validity(conn, named) if named else {}
    confirmed = {
        id(action): replace(
            action,
            action="failed",
            detail="after the build the index is "
            + ("INVALID" if valid.get(item.result.name) is False else "missing"),
        )
        for item, action in built
        if valid.get(item.result.name) is not True
    }
    return tuple(confirmed.get(id(action), action) for action in actions)


def _runner(conn: Connection, key: str, owned: bool) -> Callable[[str], None]:
    """Execute one statement per call: autocommit on PostgreSQL; MySQL/MariaDB commit each DDL
    statement anyway (the explicit commit ends SQLAlchemy's transaction with it); SQLite runs
    inside the build lock's transaction, or the caller's."""

    def run(statement: str) -> None:
        conn.exec_driver_sql(statement)
        if owned and key in ("mysql", "mariadb"):
            conn.commit()

    return run


@contextmanager
def _maintenance_connection(
    bind: Engine | Connection | Session,
) -> Iterator[tuple[Connection, bool]]:
    """A connection fit for DDL, and whether it is outside any caller's transaction (then
    ``create`` takes the build lock and manages transactions itself).

    PostgreSQL and SQLite run in the driver's autocommit mode (CONCURRENTLY needs it; SQLite's
    build lock issues ``BEGIN IMMEDIATE`` itself). A caller's Connection keeps its isolation
    level afterwards.
    """
    if isinstance(bind, Session):
        engine = bind.get_bind()
        if not isinstance(engine, Engine):
            raise IndexSpecError("create() needs an Engine; this Session is bound to a Connection")
        bind = engine
    if isinstance(bind, Engine):
        with bind.connect() as conn:
            if conn.dialect.name in ("postgresql", "sqlite"):
                conn.execution_options(isolation_level="AUTOCOMMIT")
            yield conn, True
        return
    if not isinstance(bind, Connection):
        raise IndexSpecError(f"bind must be an Engine, Connection or Session, not {bind!r}")
    if bind.in_transaction():
        _refuse_open_transaction(bind)
        yield bind, False  # SQLite: inside the caller's transaction; the caller commits
        return
    if bind.dialect.name not in ("postgresql", "sqlite"):
        yield bind, True
        return
    bind.execution_options(isolation_level="AUTOCOMMIT")
    try:
        yield bind, True
    finally:
        bind.rollback()  # end the autocommit "transaction" SQLAlchemy began: the level may change
        bind.execution_options(isolation_level=bind.default_isolation_level)


def _refuse_open_transaction(bind: Connection) -> None:
    if bind.dialect.name == "postgresql":
        raise IndexSpecError(
            "create() needs a connection outside any transaction: CREATE INDEX CONCURRENTLY "
            "cannot run inside a transaction block. Pass the Engine, or commit first."
        )
    if bind.dialect.name in ("mysql", "mariadb"):
        raise IndexSpecError(
            "create() needs a connection outside any transaction on MySQL/MariaDB: each "
            "CREATE INDEX commits implicitly, which would commit your transaction's work "
            "half-way. Pass the Engine, or commit first."
        )
