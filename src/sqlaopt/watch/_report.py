"""``report()``: slow statements, index health, index advice and the pool check in one
result, each section independent (one the server cannot give says why; the rest still runs)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from ._advice import Advice
from ._advisor import advise
from ._errors import NotEnabledError
from ._health import IndexHealth, index_health
from ._pool import PoolCheck, PoolSettings, check_pool, pool_settings
from ._server import kind
from ._statements import SlowStatements, slow_statements
from ._tooling import tooling
from ._workload import from_stats

__all__ = ["DatabaseReport", "report"]


@dataclass(frozen=True)
class DatabaseReport:
    """The outcome of :func:`report`; a section is None when the server cannot give it, and
    ``unavailable`` then says why and how to enable it."""

    slow: SlowStatements | None
    health: IndexHealth | None
    advice: Advice | None
    pool: PoolCheck | None
    settings: PoolSettings | None
    unavailable: dict[str, str] = field(default_factory=dict)

    def text(self) -> str:
        """The readable terminal report."""
        parts = []
        for name, section in (("slow statements", self.slow), ("index health", self.health),
                              ("index advice", self.advice), ("pool", self.pool)):
            if section is not None:
                parts.append(section.table())
            elif name in self.unavailable:
                parts.append(f"{name}: unavailable: {self.unavailable[name]}")
        if self.settings is not None:
            parts.append("recommended engine arguments (sqlaopt.watch.pool_settings):\n  "
                         + repr(dict(self.settings.kwargs)))
        return "\n\n".join(parts) + "\n"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, one key per section."""
        def section(value: Any) -> Any:
            return None if value is None else value.to_dict()

        settings = None if self.settings is None else dataclasses.asdict(self.settings)
        return {"slow_statements": section(self.slow), "index_health": section(self.health),
                "index_advice": section(self.advice), "pool_check": section(self.pool),
                "pool_settings": settings, "unavailable": dict(self.unavailable)}


@tooling
def report(
    engine: Engine,
    *,
    processes: int = 1,
    threads: int = 4,
    limit: int = 10,
    include_advice: bool = True,
    min_window: dt.timedelta = dt.timedelta(days=7),
) -> DatabaseReport:
    """Everything :mod:`sqlaopt.watch` can tell about the database behind ``engine``: the
    ``limit`` slowest statements, index health, index advice for the statements
    pg_stat_statements counted (when ``include_advice``), and the pool that
    :func:`pool_settings` recommends for ``processes`` x ``threads``, checked live.
    ``min_window``: see :func:`index_health`."""
    unavailable: dict[str, str] = {}
    with engine.connect() as conn:
        server = kind(conn)  # a mysql+pymysql URL may well be MariaDB

    def attempt(name: str, build: Any) -> Any:
        try:
            return build()
        except NotEnabledError as error:
            unavailable[name] = str(error)
            return None

    # the advice's workload is the top of the same pg_stat_statements read
    top = attempt("slow statements", lambda: slow_statements(engine, limit=max(limit, 20)))
    slow = None if top is None else dataclasses.replace(top, statements=top.statements[:limit])
    health = attempt("index health", lambda: index_health(engine, min_window=min_window))
    advice = None
    if include_advice and top is not None and server == "postgresql":
        advice = attempt("index advice", lambda: advise(engine, from_stats(top)))
    settings = pool_settings(engine.url, processes=processes, threads=threads,
                             mariadb=server == "mariadb")
    pool = check_pool(engine, settings.kwargs, processes=processes)
    if health is not None and advice is not None:
        health = _with_advice(health, advice)
    return DatabaseReport(slow, health, advice, pool, settings, unavailable)


def _with_advice(health: IndexHealth, advice: Advice) -> IndexHealth:
    """Give each sequential-scan flag the advised DDL for its table."""
    findings = []
    for finding in health.findings:
        ddl = tuple(r.ddl for r in advice.recommendations if r.table == finding.table)
        if finding.kind == "seq_scans" and ddl:
            finding = dataclasses.replace(finding, ddl=ddl)
        findings.append(finding)
    return dataclasses.replace(health, findings=tuple(findings))
