"""Which indexes a statement's plan uses, read from the database's own EXPLAIN.

- SQLite: ``EXPLAIN QUERY PLAN``; index names from ``USING [COVERING] INDEX name`` details
  (automatic indexes and the integer primary key are not named indexes).
- PostgreSQL: ``EXPLAIN (FORMAT JSON)``; every ``"Index Name"`` in the plan tree, walked
  recursively (Index Scan, Index Only Scan, Bitmap Index Scan; sub-plans and CTEs included).
- MySQL/MariaDB: ``EXPLAIN FORMAT=JSON``; every ``"key"`` in the plan tree.

The statement is explained with its parameter values inlined when they can be rendered as
literals: that is the plan the database chooses for those values (a custom plan). A
server-side prepared statement that has switched to a generic plan can choose differently,
notably for partial indexes, whose predicate a ``$1`` parameter cannot prove.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, text
from sqlalchemy.exc import CompileError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.base import Executable

from ._bind import Bind, connection_for
from ._errors import SqlaoptError
from ._names import did_you_mean

__all__ = [
    "IndexNotUsedError",
    "Plan",
    "assert_uses_index",
    "explain",
    "explain_executed",
    "indexes_used",
]

Statement = ClauseElement | str

_SQLITE_INDEX = re.compile(r"\bUSING (?:COVERING )?INDEX (\S+)")
# SQLite caches prepared statements by SQL text; a cached plan can outlive a dropped index.
_fresh = itertools.count()


class IndexNotUsedError(SqlaoptError, AssertionError):
    """Raised by :func:`assert_uses_index`; the message holds the SQL and the plan."""


@dataclass(frozen=True)
class Plan:
    """An explained statement: the SQL sent, the plan as text, the index names it uses."""

    sql: str
    text: str
    indexes: frozenset[str]


class _Explain(Executable, ClauseElement):
    """``<prefix> <statement><suffix>``, with the statement's parameters bound as usual."""

    inherit_cache = False

    def __init__(self, statement: ClauseElement, prefix: str, suffix: str) -> None:
        self.statement = statement
        self.prefix = prefix
        self.suffix = suffix


@compiles(_Explain)
def _compile_explain(element: _Explain, compiler: Any, **kw: Any) -> str:
    return f"{element.prefix} {compiler.process(element.statement, **kw)}{element.suffix}"


def _run(
    conn: Connection, statement: Statement, prefix: str, suffix: str = ""
) -> tuple[str, list[Any]]:
    """Explain ``statement``: with its values inlined when they render as literals (the plan
    for those values), else with bound parameters. Returns the SQL and the plan rows."""
    element = text(statement) if isinstance(statement, str) else statement
    try:
        sql = str(element.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    except (CompileError, NotImplementedError, TypeError):
        sql = str(element.compile(dialect=conn.dialect))
        return sql, list(conn.execute(_Explain(element, prefix, suffix)))
    # exec_driver_sql, unlike text(), does not take colons in literals for parameters; the
    # compiled text already escapes percent signs the way this driver expects.
    rows = list(conn.exec_driver_sql(f"{prefix} {sql}{suffix}"))
    if conn.dialect.paramstyle in ("format", "pyformat"):
        sql = sql.replace("%%", "%")  # show the SQL the database ran, not the driver's escape
    return sql, rows


def explain(bind: Bind, statement: Statement) -> Plan:
    """Explain ``statement`` (a SQLAlchemy statement or SQL text) on ``bind``.

    ``bind`` is an Engine, a Connection (session settings such as ``SET enable_seqscan =
    off`` apply) or a Session.
    """
    with connection_for(bind) as conn:
        prefix, suffix, read = _reader(conn)
        sql, rows = _run(conn, statement, prefix, suffix)
        return read(sql, rows)


def explain_executed(bind: Bind, sql: str, parameters: Any = None) -> Plan:
    """Explain a statement exactly as it reached the driver: its SQL in the driver's
    paramstyle and its parameters, e.g. as a ``before_cursor_execute`` listener saw them.

    Use it for the statements a piece of code actually ran; use :func:`explain` for a
    statement object you hold.
    """
    with connection_for(bind) as conn:
        prefix, suffix, read = _reader(conn)
        rows = list(conn.exec_driver_sql(f"{prefix} {sql}{suffix}", parameters or ()))
        return read(sql, rows)


def _reader(conn: Connection) -> tuple[str, str, Callable[[str, list[Any]], Plan]]:
    """The EXPLAIN prefix, suffix and plan reader for ``conn``'s database."""
    name = conn.dialect.name
    if name == "sqlite":
        return "EXPLAIN QUERY PLAN", f" /* {next(_fresh)} */", _sqlite_plan
    if name == "postgresql":
        return "EXPLAIN (FORMAT JSON)", "", lambda sql, rows: _json_plan(
            sql, rows[0][0], "Index Name")
    if name in ("mysql", "mariadb"):
        return "EXPLAIN FORMAT=JSON", "", lambda sql, rows: _json_plan(sql, rows[0][0], "key")
    raise SqlaoptError(f"explain() has no reader for the {name} dialect")


def _sqlite_plan(sql: str, rows: list[Any]) -> Plan:
    lines = [str(row[3]) for row in rows]
    names = {match.group(1) for line in lines for match in _SQLITE_INDEX.finditer(line)}
    return Plan(sql, "\n".join(lines), frozenset(names))


def _json_plan(sql: str, document: Any, key: str) -> Plan:
    tree = json.loads(document) if isinstance(document, (str, bytes)) else document
    return Plan(sql, json.dumps(tree, indent=2), frozenset(_walk(tree, key)))


def _walk(node: Any, key: str) -> Iterator[str]:
    """Every string value stored under ``key`` anywhere in a JSON tree."""
    if isinstance(node, dict):
        for name, value in node.items():
            if name == key and isinstance(value, str):
                yield value
            else:
                yield from _walk(value, key)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value, key)


def indexes_used(bind: Bind, statement: Statement) -> set[str]:
    """The names of the indexes the database's plan for ``statement`` uses.

    ``statement`` is a SQLAlchemy statement (compiled for ``bind``'s dialect) or SQL text.
    PostgreSQL prefers sequential scans on small tables: to ask "can this index serve this
    query", run ``SET enable_seqscan = off`` on the Connection first.
    """
    return set(explain(bind, statement).indexes)


def assert_uses_index(bind: Bind, statement: Statement, name: str) -> None:
    """Fail with :class:`IndexNotUsedError` (an AssertionError) unless the plan for
    ``statement`` uses the index ``name``; the message shows the SQL, the indexes used and
    the plan, and says so when no index of that name exists on the statement's tables."""
    plan = explain(bind, statement)
    if name in plan.indexes:
        return
    used = ", ".join(sorted(plan.indexes)) or "none"
    message = f"the plan does not use index {name!r} (it uses: {used})"
    message += _existence_hint(bind, statement, name)
    raise IndexNotUsedError(f"{message}\nSQL:\n  {plan.sql}\nplan:\n{plan.text}")


def _existence_hint(bind: Bind, statement: Statement, name: str) -> str:
    """Say so when no index called ``name`` exists on the statement's tables (a typo, or an
    index never built on this database)."""
    from .indexes._introspect import read_live

    froms: list[Any] = getattr(statement, "get_final_froms", lambda: [])()
    tables = [t for t in froms if isinstance(t, Table)]
    if not tables:
        return ""
    with connection_for(bind) as conn:
        known = set(read_live(conn, tables).indexes)
    if name in known:
        return ""
    where = ", ".join(sorted(t.name for t in tables))
    return f"; no index {name!r} exists on {where}{did_you_mean(name, known)}"
