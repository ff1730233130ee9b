"""Reading the indexes a live database has, from its own catalog (not SQLAlchemy reflection,
which does not report validity, access methods or exclusion operators everywhere)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, bindparam, text
from sqlalchemy.engine import Dialect

from ._dialects import dialect_key

__all__ = [
    "LiveIndex",
    "LiveSchema",
    "qualified_index",
    "read_live",
    "read_validity",
    "split_index_sql",
]


@dataclass(frozen=True)
class LiveIndex:
    """One index as the database reports it.

    ``parts`` are the key parts as the database spells them; ``plain`` says which are plain
    columns; ``constraint`` is ``p`` (primary key), ``u`` (unique constraint), ``x``
    (exclusion) or None; ``valid`` is False for PostgreSQL's INVALID leftovers.
    """

    name: str
    table: str
    method: str
    parts: tuple[str, ...]
    plain: tuple[bool, ...]
    include: tuple[str, ...] = ()
    predicate: str | None = None
    unique: bool = False
    valid: bool = True
    constraint: str | None = None
    operators: tuple[str, ...] = ()


@dataclass(frozen=True)
class LiveSchema:
    """The indexes of some tables, and which of those tables exist."""

    indexes: dict[str, LiveIndex]
    tables: frozenset[str]


def read_live(conn: Connection, tables: Sequence[Table]) -> LiveSchema:
    """The indexes on ``tables`` in the database behind ``conn``."""
    key = dialect_key(conn.dialect)
    if key == "postgresql":
        return _postgresql(conn, tables)
    if key == "sqlite":
        return _sqlite(conn, tables)
    return _mysql(conn, tables, key == "mariadb")


_PG_INDEXES = text(
    """
    SELECT c.relname AS name, t.relname AS table_name, am.amname AS method,
           i.indisunique AS is_unique, i.indisvalid AS is_valid, i.indnkeyatts AS nkey,
           pg_get_expr(i.indpred, i.indrelid, true) AS predicate,
           con.contype AS constraint_type,
           ARRAY(SELECT pg_get_indexdef(i.indexrelid, k, true)
                 FROM generate_series(1, i.indnatts) AS k ORDER BY k) AS parts,
           ARRAY(SELECT i.indkey[k - 1] <> 0
                 FROM generate_series(1, i.indnatts) AS k ORDER BY k) AS plain,
           ARRAY(SELECT o.op::regoper::text
                 FROM unnest(con.conexclop) WITH ORDINALITY AS o(op, n) ORDER BY o.n) AS operators
    FROM pg_index i
    JOIN pg_class c ON c.oid = i.indexrelid
    JOIN pg_class t ON t.oid = i.indrelid
    JOIN pg_am am ON am.oid = c.relam
    LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid
    WHERE i.indrelid = ANY (SELECT to_regclass(q) FROM unnest(CAST(:tables AS text[])) AS q)
    """
)
_PG_TABLES = text(
    "SELECT q FROM unnest(CAST(:tables AS text[])) AS q WHERE to_regclass(q) IS NOT NULL"
)


def _qualified(conn: Connection, tables: Sequence[Table]) -> dict[str, str]:
    preparer = conn.dialect.identifier_preparer
    return {preparer.format_table(table): table.name for table in tables}


def _postgresql(conn: Connection, tables: Sequence[Table]) -> LiveSchema:
    names = _qualified(conn, tables)
    params = {"tables": list(names)}
    indexes = {}
    for row in conn.execute(_PG_INDEXES, params).mappings():
        nkey = int(row["nkey"])
        parts = tuple(str(p) for p in row["parts"])
        indexes[row["name"]] = LiveIndex(
            name=row["name"],
            table=row["table_name"],
            method=row["method"],
            parts=parts[:nkey],
            plain=tuple(bool(p) for p in row["plain"])[:nkey],
            include=parts[nkey:],
            predicate=row["predicate"],
            unique=bool(row["is_unique"]),
            valid=bool(row["is_valid"]),
            constraint=row["constraint_type"],
            # regoper renders as pg_catalog.= when the name is ambiguous; keep the operator.
            operators=tuple(str(op).rsplit(".", 1)[-1] for op in row["operators"] or ()),
        )
    existing = {names[q] for q in conn.execute(_PG_TABLES, params).scalars()}
    return LiveSchema(indexes, frozenset(existing))


_PG_VALIDITY = text(
    "SELECT q, i.indisvalid FROM unnest(CAST(:indexes AS text[])) AS q "
    "JOIN pg_index i ON i.indexrelid = to_regclass(q)"
)
_SQLITE_PRESENT = text(
    "SELECT name FROM sqlite_master WHERE type = 'index' AND name IN :names"
).bindparams(bindparam("names", expanding=True))
_MYSQL_PRESENT = text(
    "SELECT DISTINCT INDEX_NAME FROM information_schema.STATISTICS "
    "WHERE TABLE_SCHEMA = DATABASE() AND INDEX_NAME IN :names"
).bindparams(bindparam("names", expanding=True))


def read_validity(conn: Connection, indexes: Sequence[tuple[str, Table]]) -> dict[str, bool]:
    """``{name: valid}`` for the named indexes (each with its table) that exist: one small
    query, for confirming builds (only PostgreSQL has INVALID indexes)."""
    key = dialect_key(conn.dialect)
    names = [name for name, _ in indexes]
    if key != "postgresql":
        query = _SQLITE_PRESENT if key == "sqlite" else _MYSQL_PRESENT
        return {name: True for name in conn.execute(query, {"names": names}).scalars()}
    qualified = {qualified_index(conn.dialect, name, table): name for name, table in indexes}
    rows = conn.execute(_PG_VALIDITY, {"indexes": list(qualified)})
    return {qualified[q]: bool(valid) for q, valid in rows}


def qualified_index(dialect: Dialect, name: str, table: Table) -> str:
    """An index name as PostgreSQL resolves it: quoted, in the schema of its table."""
    preparer = dialect.identifier_preparer
    schema = f"{preparer.quote_schema(table.schema)}." if table.schema else ""
    return f"{schema}{preparer.quote(name)}"


_SQLITE_INDEXES = text(
    """
    SELECT m.tbl_name, m.name, m.sql, l."unique", l.origin, x.cid, x.name
    FROM sqlite_master AS m
    JOIN pragma_index_list(m.tbl_name) AS l ON l.name = m.name
    JOIN pragma_index_xinfo(m.name) AS x
    WHERE m.type = 'index' AND m.tbl_name IN :tables AND x.key = 1
    ORDER BY m.name, x.seqno
    """
).bindparams(bindparam("tables", expanding=True))
_SQLITE_TABLES = text(
    "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN :tables"
).bindparams(bindparam("tables", expanding=True))


def _sqlite(conn: Connection, tables: Sequence[Table]) -> LiveSchema:
    # One query for every index (table-valued PRAGMA functions), not one per index.
    params = {"tables": [table.name for table in tables]}
    grouped: dict[str, list[Any]] = {}
    for row in conn.execute(_SQLITE_INDEXES, params):
        grouped.setdefault(row[1], []).append(row)
    indexes = {name: _sqlite_index(rows) for name, rows in grouped.items()}
    existing = frozenset(conn.execute(_SQLITE_TABLES, params).scalars())
    return LiveSchema(indexes, existing)


def _sqlite_index(rows: list[Any]) -> LiveIndex:
    table, name, sql, unique, origin = rows[0][:5]
    spelled, predicate = split_index_sql(sql) if sql else ([], None)
    parts = []
    for position, row in enumerate(rows):
        cid, column = row[5], row[6]
        # cid -2 marks an expression: its text is only in the CREATE INDEX statement.
        parts.append(column if cid >= 0 else spelled[position] if position < len(spelled) else "?")
    return LiveIndex(
        name=name,
        table=table,
        method="btree",
        parts=tuple(parts),
        plain=tuple(row[5] >= 0 for row in rows),
        predicate=predicate,
        unique=bool(unique),
        constraint={"pk": "p", "u": "u"}.get(origin),
    )


def split_index_sql(sql: str) -> tuple[list[str], str | None]:
    """The key parts and the WHERE text of a ``CREATE INDEX`` statement (SQLite keeps the
    statement as written)."""
    depth, start, parts, quote = 0, -1, [], ""
    end = len(sql)
    for position, char in enumerate(sql):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"`[":
            quote = "]" if char == "[" else char
        elif char == "(":
            depth += 1
            if depth == 1:
                start = position + 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                parts.append(sql[start:position].strip())
                end = position + 1
                break
        elif char == "," and depth == 1:
            parts.append(sql[start:position].strip())
            start = position + 1
    rest = sql[end:].strip()
    predicate = rest[len("where") :].strip() if rest[:5].lower() == "where" else None
    return parts, predicate or None


def _mysql(conn: Connection, tables: Sequence[Table], mariadb: bool) -> LiveSchema:
    # information_schema.STATISTICS.EXPRESSION exists on MySQL 8.0.13+ only.
    expression = "NULL" if mariadb else "EXPRESSION"
    query = text(
        "SELECT TABLE_NAME, INDEX_NAME, COLUMN_NAME, NON_UNIQUE, INDEX_TYPE, "
        f"{expression} AS EXPR FROM information_schema.STATISTICS "
        "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN :names "
        "ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX"
    ).bindparams(bindparam("names", expanding=True))
    names = [table.name for table in tables]
    grouped: dict[str, list[Any]] = {}
    for row in conn.execute(query, {"names": names}):
        grouped.setdefault(row[1], []).append(row)
    indexes = {name: _mysql_index(name, rows) for name, rows in grouped.items()}
    found = conn.execute(
        text(
            "SELECT TABLE_NAME FROM information_schema.TABLES "
            "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN :names"
        ).bindparams(bindparam("names", expanding=True)),
        {"names": names},
    ).scalars()
    return LiveSchema(indexes, frozenset(found))


def _mysql_index(name: str, rows: list[Any]) -> LiveIndex:
    unique = not bool(rows[0][3])
    return LiveIndex(
        name=name,
        table=rows[0][0],
        method=str(rows[0][4]).lower(),
        parts=tuple(str(r[2]) if r[2] is not None else f"({r[5]})" for r in rows),
        plain=tuple(r[2] is not None for r in rows),
        unique=unique,
        constraint="p" if name == "PRIMARY" else "u" if unique else None,
    )
