"""``Workload``: the statements an advice is about, from wherever they were seen.

- :meth:`Workload.capture`: every statement an Engine sends inside a block, with its
  parameters (the plans are then the ones for those values);
- :meth:`Workload.from_statements`: SQL strings, e.g. ``sqlaopt.count_queries().statements``
  (no values: plans are PostgreSQL's generic plans);
- :meth:`Workload.from_json` / :meth:`Workload.to_json`: a file;
- :meth:`Workload.from_pg_stat_statements`: the top statements the server counted.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, event
from sqlalchemy.engine import Connection

from .._bind import Bind
from .._names import did_you_mean
from ._errors import WatchError
from ._normalize import normalize

if TYPE_CHECKING:
    from ._statements import SlowStatements

__all__ = ["PARAMSTYLES", "Workload", "WorkloadStatement", "from_stats"]

#: The paramstyles a statement's SQL may be written in (PEP 249, plus PostgreSQL's ``$1``).
PARAMSTYLES = ("pyformat", "format", "qmark", "named", "numeric", "numeric_dollar")
#: At most this many distinct statements are kept (captures are bounded).
MAX_STATEMENTS = 10_000
_QUERY_WORDS = ("select", "with", "update", "delete", "insert", "values", "table")


@dataclass(frozen=True)
class WorkloadStatement:
    """One statement shape of a workload.

    ``sql`` is the text as the driver got it (or as pg_stat_statements reports it);
    ``parameters`` the values of one execution, or None when only the shape is known;
    ``paramstyle`` the placeholder style of ``sql`` (None: the advised database's driver's);
    ``calls`` how often it ran, which weighs its cost in the advice.
    """

    sql: str
    parameters: Any = None
    calls: int = 1
    paramstyle: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.sql, str) or not self.sql.strip():
            raise WatchError(f"a workload statement needs SQL text, not {self.sql!r}")
        if not isinstance(self.calls, int) or self.calls < 1:
            raise WatchError(f"calls must be a positive int, not {self.calls!r}")
        if self.paramstyle is not None and self.paramstyle not in PARAMSTYLES:
            hint = did_you_mean(self.paramstyle, PARAMSTYLES)
            raise WatchError(f"unknown paramstyle {self.paramstyle!r}{hint}; use one of "
                             f"{', '.join(PARAMSTYLES)}")

    @property
    def text(self) -> str:
        """The normalised statement (see :func:`sqlaopt.watch.normalize`)."""
        return normalize(self.sql)

    @property
    def is_query(self) -> bool:
        """True for statements EXPLAIN can plan (SELECT, WITH, UPDATE, DELETE, INSERT)."""
        first = self.text.lstrip("( ").split(" ", 1)[0].lower()
        return first in _QUERY_WORDS


@dataclass(frozen=True)
class Workload:
    """Distinct statements, each with how often it ran; build it with the class methods."""

    statements: tuple[WorkloadStatement, ...] = field(default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "statements", _merge(self.statements))

    def __len__(self) -> int:
        return len(self.statements)

    def __iter__(self) -> Iterator[WorkloadStatement]:
        return iter(self.statements)

    def __add__(self, other: Workload) -> Workload:
        if not isinstance(other, Workload):
            return NotImplemented
        return Workload(self.statements + other.statements)

    @classmethod
    def from_statements(
        cls, statements: Iterable[str], *, paramstyle: str | None = None
    ) -> Workload:
        """SQL strings as a driver got them, e.g. ``count_queries().statements``;
        ``paramstyle`` defaults to the advised database's driver's."""
        return cls(tuple(WorkloadStatement(sql, None, 1, paramstyle) for sql in statements))

    @classmethod
    @contextmanager
    def capture(cls, engine: Engine) -> Iterator[list[WorkloadStatement]]:
        """Record what ``engine`` sends inside the block, with the parameters of each
        statement's first execution; ``Workload(tuple(recorded))`` afterwards::

            with Workload.capture(engine) as recorded:
                run_the_flows()
            workload = Workload(tuple(recorded))

        ``executemany`` batches are left out (bulk writes need no read index). At most
        :data:`MAX_STATEMENTS` distinct statements are kept.
        """
        if not isinstance(engine, Engine):
            raise WatchError(f"Workload.capture() takes an Engine, not {engine!r}")
        recorded: list[WorkloadStatement] = []
        seen: dict[str, int] = {}
        paramstyle = engine.dialect.paramstyle

        def record(conn: Connection, cursor: Any, sql: str, parameters: Any, context: Any,
                   executemany: bool) -> None:
            if executemany:
                return
            if sql in seen:
                position = seen[sql]
                recorded[position] = replace(recorded[position],
                                             calls=recorded[position].calls + 1)
            elif len(recorded) < MAX_STATEMENTS:
                seen[sql] = len(recorded)
                recorded.append(WorkloadStatement(sql, _copy(parameters), 1, paramstyle))

        event.listen(engine, "before_cursor_execute", record)
        try:
            yield recorded
        finally:
            event.remove(engine, "before_cursor_execute", record)

    @classmethod
    def from_pg_stat_statements(cls, bind: Bind, *, limit: int = 50) -> Workload:
        """The ``limit`` statements of the current database with the most total time, as
        pg_stat_statements counted them (generic plans: it keeps no values)."""
        from ._statements import slow_statements

        return from_stats(slow_statements(bind, order_by="total", limit=limit))

    @classmethod
    def from_json(cls, source: str | Path | Mapping[str, Any]) -> Workload:
        """A workload from a file written by :meth:`to_json` (or the dict it holds)::

            {"statements": [{"sql": "SELECT ... WHERE id = %(id)s", "parameters": {"id": 7},
                             "calls": 3, "paramstyle": "pyformat"}]}

        ``parameters``, ``calls`` and ``paramstyle`` are optional; dates, times, decimals and
        UUIDs are written ``{"$type": "datetime", "value": "2024-06-01T09:00:00"}``.
        """
        if isinstance(source, Mapping):
            document: Any = source
        else:
            try:
                document = json.loads(Path(source).read_text())
            except (OSError, ValueError) as error:
                raise WatchError(f"cannot read workload file {source}: {error}") from error
        items = document.get("statements") if isinstance(document, Mapping) else None
        if not isinstance(items, list):
            raise WatchError('a workload file is {"statements": [{"sql": ...}, ...]}')
        return cls(tuple(_statement_from(item, n) for n, item in enumerate(items, 1)))

    def to_json(self, path: str | Path | None = None) -> str:
        """The workload as JSON text (written to ``path`` too when given)."""
        document = {"statements": [
            {"sql": s.sql, "parameters": _encode(s.parameters), "calls": s.calls,
             "paramstyle": s.paramstyle}
            for s in self.statements
        ]}
        text = json.dumps(document, indent=2)
        if path is not None:
            Path(path).write_text(text + "\n")
        return text


def from_stats(stats: SlowStatements) -> Workload:
    """The queries among ``stats`` (pg_stat_statements texts, with ``$n`` parameters)."""
    found = (WorkloadStatement(s.sql, None, max(s.calls, 1), "numeric_dollar")
             for s in stats.statements)
    return Workload(tuple(s for s in found if s.is_query))


def _merge(statements: Iterable[WorkloadStatement]) -> tuple[WorkloadStatement, ...]:
    """One entry per SQL text: calls added up, the first parameters kept."""
    merged: dict[str, WorkloadStatement] = {}
    for statement in statements:
        if not isinstance(statement, WorkloadStatement):
            raise WatchError(f"a Workload holds WorkloadStatement objects, not {statement!r}")
        known = merged.get(statement.sql)
        merged[statement.sql] = statement if known is None else replace(
            known, calls=known.calls + statement.calls)
    return tuple(merged.values())


def _copy(parameters: Any) -> Any:
    if isinstance(parameters, Mapping):
        return dict(parameters)
    if isinstance(parameters, (list, tuple)):
        return tuple(parameters)
    return parameters


def _statement_from(item: Any, number: int) -> WorkloadStatement:
    if not isinstance(item, Mapping) or "sql" not in item:
        raise WatchError(f"workload statement {number} needs an \"sql\" key, got {item!r}")
    unknown = set(item) - {"sql", "parameters", "calls", "paramstyle"}
    if unknown:
        name = sorted(unknown)[0]
        raise WatchError(f"workload statement {number}: unknown key {name!r}"
                         f"{did_you_mean(name, ('sql', 'parameters', 'calls', 'paramstyle'))}")
    return WorkloadStatement(item["sql"], _decode(item.get("parameters")),
                             item.get("calls", 1), item.get("paramstyle"))


_DECODERS: dict[str, Any] = {
    "datetime": dt.datetime.fromisoformat,
    "date": dt.date.fromisoformat,
    "time": dt.time.fromisoformat,
    "decimal": Decimal,
    "uuid": uuid.UUID,
}


def _encode(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    for name, kind in (("datetime", dt.datetime), ("date", dt.date), ("time", dt.time),
                       ("decimal", Decimal), ("uuid", uuid.UUID)):
        if isinstance(value, kind):
            text = value.isoformat() if hasattr(value, "isoformat") else str(value)
            return {"$type": name, "value": text}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, Mapping):
        if set(value) == {"$type", "value"}:
            decoder = _DECODERS.get(str(value["$type"]))
            if decoder is None:
                raise WatchError(f"unknown parameter type {value['$type']!r}; use one of "
                                 f"{', '.join(_DECODERS)}")
            return decoder(value["value"])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return tuple(_decode(v) for v in value)
    return value
