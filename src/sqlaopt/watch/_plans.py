"""Explaining workload statements on PostgreSQL: custom plans for statements with values,
generic plans for statements without; and reading the JSON plan tree."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from ._normalize import numbered_placeholders
from ._workload import WorkloadStatement

__all__ = ["Explainer", "Node", "PlanTree", "nodes"]

Node = dict[str, Any]
_names = itertools.count()
_PERCENT_ESCAPING = ("format", "pyformat")


@dataclass(frozen=True)
class PlanTree:
    """A plan: its root node, total cost, and the index names it uses."""

    root: Node

    @property
    def cost(self) -> float:
        return float(self.root["Total Cost"])

    @property
    def indexes(self) -> frozenset[str]:
        return frozenset(str(n["Index Name"]) for n in nodes(self.root) if "Index Name" in n)

    def relations(self) -> frozenset[tuple[str, str]]:
        """(schema, table) of every relation the plan scans."""
        return frozenset((str(n.get("Schema", "")), str(n["Relation Name"]))
                         for n in nodes(self.root) if "Relation Name" in n)

    def outline(self) -> str:
        """One line a node, indented: type, relation or index, cost."""
        lines = []

        def walk(node: Node, depth: int) -> None:
            target = node.get("Index Name") or node.get("Relation Name") or ""
            lines.append(f"{'  ' * depth}{node['Node Type']} {target}".rstrip()
                         + f"  (cost {float(node['Total Cost']):.1f})")
            for child in node.get("Plans", ()):
                walk(child, depth + 1)

        walk(self.root, 0)
        return "\n".join(lines)


def nodes(root: Node) -> Iterator[Node]:
    """Every node of a plan tree, parents first."""
    yield root
    for child in root.get("Plans", ()):
        yield from nodes(child)


class ExplainError(Exception):
    """The database could not plan a statement (the message is the database's)."""


class Explainer:
    """Explains statements on one connection, each the way its workload entry allows.

    With parameters: ``EXPLAIN (VERBOSE, FORMAT JSON) <sql>`` with those values (the custom
    plan). Without: ``PREPARE`` with ``$n`` placeholders and ``EXPLAIN EXECUTE`` under
    ``plan_cache_mode = force_generic_plan`` (the generic plan, as PostgreSQL 16's
    ``EXPLAIN (GENERIC_PLAN)`` gives). ``generic=True`` asks for the generic plan of a
    statement with values too. After hypothetical indexes change, :meth:`forget_plans`
    must run: cached generic plans do not notice them (and fail once they are gone).
    """

    def __init__(self, conn: Connection, default_paramstyle: str, savepoints: bool) -> None:
        self.conn = conn
        self.default_paramstyle = default_paramstyle
        self.savepoints = savepoints
        self.prepared: dict[str, str] = {}
        self.previous_mode = str(self._run("SHOW plan_cache_mode", None)[0][0])
        self._run("SET plan_cache_mode = force_generic_plan", None, fetch=False)
        self._untracked()

    def _untracked(self) -> None:
        """Keep the advisor's own EXPLAINs out of pg_stat_statements where allowed (the
        setting is superuser-only; without it they are counted, as utility statements)."""
        try:
            self._run("SET pg_stat_statements.track = 'none'", None, fetch=False)
            self.untracked = True
        except DBAPIError:
            self.untracked = False

    def plan(self, statement: WorkloadStatement, *, generic: bool = False) -> PlanTree:
        """The plan of ``statement``; :class:`ExplainError` when the database refuses."""
        try:
            if statement.parameters is not None and not generic:
                rows = self._run("EXPLAIN (VERBOSE, FORMAT JSON) " + statement.sql,
                                 statement.parameters)
            else:
                rows = self._run(self._execute(statement), None)
        except DBAPIError as error:
            message = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
            raise ExplainError(message) from error
        document = rows[0][0]
        tree = json.loads(document) if isinstance(document, (str, bytes)) else document
        return PlanTree(tree[0]["Plan"])

    def _execute(self, statement: WorkloadStatement) -> str:
        name = self.prepared.get(statement.sql)
        style = statement.paramstyle or self.default_paramstyle
        sql, count = numbered_placeholders(statement.sql,
                                           escaped_percent=style in _PERCENT_ESCAPING)
        if name is None:
            name = f"sqlaopt_advise_{next(_names)}"
            self._run(f"PREPARE {name} AS {sql}", None, fetch=False)
            self.prepared[statement.sql] = name
        arguments = f"({', '.join(['NULL'] * count)})" if count else ""
        return f"EXPLAIN (VERBOSE, FORMAT JSON) EXECUTE {name}{arguments}"

    def _run(self, sql: str, parameters: Any, *, fetch: bool = True) -> list[Any]:
        if self.savepoints:
            with self.conn.begin_nested():
                return self._send(sql, parameters, fetch)
        return self._send(sql, parameters, fetch)

    def _send(self, sql: str, parameters: Any, fetch: bool) -> list[Any]:
        # Without values the driver must not read placeholders or %% in the text.
        options = {"no_parameters": True} if parameters is None else {}
        result = self.conn.exec_driver_sql(sql, parameters, execution_options=options)
        return list(result) if fetch else []

    def forget_plans(self) -> None:
        """Drop cached plans (hypothetical indexes changed)."""
        self._run("DISCARD PLANS", None, fetch=False)

    def close(self) -> None:
        """Deallocate the prepared statements and restore the plan mode."""
        for name in self.prepared.values():
            self._run(f"DEALLOCATE {name}", None, fetch=False)
        self.prepared.clear()
        self._run(f"SET plan_cache_mode = {self.previous_mode}", None, fetch=False)
        if self.untracked:  # a pooled connection goes back to the application
            self._run("RESET pg_stat_statements.track", None, fetch=False)
