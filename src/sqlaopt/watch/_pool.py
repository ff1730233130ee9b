"""Connection pools that fit the server: ``pool_settings()`` builds the engine keyword
arguments for a driver and a deployment, ``check_pool()`` checks any such arguments against
a live server.

Per driver, the same three settings are spelled differently (each verified live):

=========== ================== ======================================== =====================
driver      connect timeout    statement timeout                        application name
=========== ================== ======================================== =====================
psycopg 3   ``connect_timeout`` ``options="-c statement_timeout=<ms>"``  ``application_name``
psycopg2    ``connect_timeout`` ``options="-c statement_timeout=<ms>"``  ``application_name``
asyncpg     ``timeout``         ``server_settings["statement_timeout"]`` ``server_settings[...]``
pymysql     ``connect_timeout`` ``init_command`` (MariaDB                ``program_name`` (a
                                ``max_statement_time`` s, MySQL          connection attribute)
                                ``max_execution_time`` ms, SELECT only)
aiosqlite,  ``timeout`` (the    none                                     none
pysqlite    busy timeout)
=========== ================== ======================================== =====================
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from .._bind import Bind, connection_for
from .._names import did_you_mean
from ._errors import WatchError
from ._format import Tabular, rows_table
from ._server import kind, settings
from ._tooling import tooling

__all__ = ["DRIVERS", "PoolCheck", "PoolProblem", "PoolSettings", "check_pool", "pool_settings"]

#: The drivers :func:`pool_settings` knows the spellings of.
DRIVERS = ("psycopg", "psycopg2", "asyncpg", "pymysql", "aiosqlite", "pysqlite")
#: ``pool_recycle`` when the server's idle timeout is unknown: well below MySQL's 8 hours
#: and the 10-60 minutes of common proxies and load balancers.
DEFAULT_RECYCLE = 1800
# Recycle this share of the idle timeout: a connection is replaced before the server drops it.
_RECYCLE_SHARE = 0.9
_LIBPQ = ("psycopg", "psycopg2")


@dataclass(frozen=True)
class PoolSettings:
    """Engine keyword arguments for one driver and deployment, and what they mean.

    ``kwargs`` go to ``create_engine(url, **kwargs)``; ``per_process`` is the most
    connections one process opens, ``total`` across the deployment; ``notes`` say what a
    driver cannot do and why each value is what it is.
    """

    driver: str
    kwargs: Mapping[str, Any]
    per_process: int
    processes: int
    notes: tuple[str, ...] = ()

    @property
    def total(self) -> int:
        """Connections across every process at most."""
        return self.per_process * self.processes


def _driver(url: URL) -> tuple[str, str]:
    backend = url.get_backend_name()
    driver = url.get_driver_name()
    if backend == "sqlite" and driver == "pysqlite":
        return backend, "pysqlite"
    if driver not in DRIVERS:
        raise WatchError(
            f"pool_settings() knows the drivers {', '.join(DRIVERS)}, not {driver!r}"
            f"{did_you_mean(driver, DRIVERS)} (URL {url.render_as_string()})"
        )
    return backend, driver


def pool_settings(
    url: str | URL,
    *,
    processes: int = 1,
    threads: int = 1,
    overflow: int = 0,
    connect_timeout: float = 10,
    statement_timeout: float | None = 30,
    application_name: str | None = None,
    idle_timeout: float | None = None,
    pool_timeout: float = 30,
    mariadb: bool | None = None,
) -> PoolSettings:
    """Engine keyword arguments for ``url``'s driver and a deployment of ``processes``
    processes (workers) of ``threads`` threads (or concurrent tasks) each.

    Each process gets ``pool_size=threads`` (a thread holds at most one connection) plus
    ``overflow``; ``pool_pre_ping=True`` (a connection the server dropped is replaced, not
    handed to a request); ``pool_reset_on_return="rollback"`` (what a request left open is
    undone, never committed); ``pool_recycle`` under the server's (or a proxy's)
    ``idle_timeout`` in seconds (90% of it; :data:`DEFAULT_RECYCLE` when unknown).
    Timeouts are in seconds; ``statement_timeout=None`` leaves the server's. ``mariadb``:
    for a ``mysql+pymysql`` URL, whether the server is MariaDB (``max_statement_time``) or
    MySQL (``max_execution_time``); a ``mariadb+pymysql`` URL says so itself.
    """
    for name, value in (("processes", processes), ("threads", threads)):
        if not isinstance(value, int) or value < 1:
            raise WatchError(f"{name} must be a positive int, not {value!r}")
    if not isinstance(overflow, int) or overflow < 0:
        raise WatchError(f"overflow must be a non-negative int, not {overflow!r}")
    url = make_url(url)
    backend, driver = _driver(url)
    name = application_name or "sqlaopt-app"
    notes: list[str] = []
    connect_args = _connect_args(driver, backend, connect_timeout, statement_timeout, name,
                                 mariadb, notes)
    recycle = DEFAULT_RECYCLE if idle_timeout is None else max(
        1, int(idle_timeout * _RECYCLE_SHARE))
    kwargs: dict[str, Any] = {"connect_args": connect_args}
    if backend != "sqlite":
        kwargs.update(pool_size=threads, max_overflow=overflow, pool_timeout=pool_timeout,
                      pool_recycle=recycle, pool_pre_ping=True,
                      pool_reset_on_return="rollback")
        notes.append(f"pool_recycle={recycle}: " + (
            f"90% of the {idle_timeout:g} s idle timeout" if idle_timeout is not None else
            "the idle timeout is unknown; pass idle_timeout= (the server's or a proxy's)"))
    else:
        notes.append("SQLite: SQLAlchemy picks the pool class (one file, no server): only "
                     "the busy timeout is set")
    per_process = threads + overflow
    return PoolSettings(driver, kwargs, per_process, processes, tuple(notes))


def _connect_args(driver: str, backend: str, connect_timeout: float,
                  statement_timeout: float | None, name: str, mariadb: bool | None,
                  notes: list[str]) -> dict[str, Any]:
    if driver in _LIBPQ:
        args: dict[str, Any] = {"connect_timeout": max(2, math.ceil(connect_timeout)),
                                "application_name": name}
        if statement_timeout is not None:
            args["options"] = f"-c statement_timeout={int(statement_timeout * 1000)}"
        notes.append("libpq takes whole seconds for connect_timeout, at least 2")
        return args
    if driver == "asyncpg":
        settings = {"application_name": name}
        if statement_timeout is not None:
            settings["statement_timeout"] = str(int(statement_timeout * 1000))
        notes.append("asyncpg's command_timeout is a client-side timer; statement_timeout in "
                     "server_settings makes the server cancel the statement itself")
        return {"timeout": connect_timeout, "server_settings": settings}
    if driver == "pymysql":
        args = {"connect_timeout": max(1, math.ceil(connect_timeout)), "program_name": name}
        is_mariadb = backend == "mariadb" if mariadb is None else mariadb
        if statement_timeout is not None:
            args["init_command"] = (
                f"SET SESSION max_statement_time={statement_timeout:g}" if is_mariadb else
                f"SET SESSION max_execution_time={int(statement_timeout * 1000)}")
        notes.append("MySQL/MariaDB have no application_name: program_name is a connection "
                     "attribute, visible in performance_schema.session_connect_attrs")
        if not is_mariadb and statement_timeout is not None:
            notes.append("MySQL's max_execution_time limits SELECT statements only")
        return args
    notes.append(f"{driver}: no statement timeout or application name exist for SQLite")
    return {"timeout": connect_timeout}


# --- the live check --------------------------------------------------------------------------


@dataclass(frozen=True)
class PoolProblem:
    """One problem of a pool configuration: the setting, what is wrong, what to do."""

    setting: str
    problem: str
    fix: str


@dataclass(frozen=True)
class PoolCheck(Tabular):
    """The outcome of :func:`check_pool`: the numbers and the problems."""

    server: str
    max_connections: int
    reserved: int
    per_process: int
    processes: int
    problems: tuple[PoolProblem, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def available(self) -> int:
        """Connections the application may open: max_connections minus reserved slots."""
        return self.max_connections - self.reserved

    @property
    def total(self) -> int:
        return self.per_process * self.processes

    @property
    def ok(self) -> bool:
        return not self.problems

    def table(self) -> str:
        """Plain text: the numbers, then each problem with its fix."""
        lines = [f"pool check ({self.server}): {self.processes} process(es) x "
                 f"{self.per_process} connections = {self.total}; the server allows "
                 f"{self.max_connections} - {self.reserved} reserved = {self.available}"]
        rows = [(p.setting, p.problem, p.fix) for p in self.problems]
        lines.append(rows_table(("setting", "problem", "fix"), rows) if rows else "  no problems")
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, with the derived numbers."""
        document = super().to_dict()
        document.update(available=self.available, total=self.total, ok=self.ok)
        return document


# SQLAlchemy's own defaults, when the configuration leaves a setting out.
_DEFAULT_POOL_SIZE, _DEFAULT_OVERFLOW = 5, 10


@tooling
def check_pool(
    bind: Bind, engine_kwargs: Mapping[str, Any], *, processes: int = 1,
    url: str | URL | None = None,
) -> PoolCheck:
    """Check ``engine_kwargs`` (what the application passes to ``create_engine``) for a
    deployment of ``processes`` processes against the server behind ``bind``.

    Problems found: the pool across all processes exceeding ``max_connections`` minus the
    reserved slots; keyword arguments ``create_engine`` rejects; connect arguments the
    driver rejects (one real connection is tried, with ``url`` or ``bind``'s URL); a
    connect argument another driver's; ``pool_reset_on_return`` other than rollback;
    ``pool_pre_ping`` off; ``pool_recycle`` not below the server's idle timeout; no
    statement timeout; no application name.
    """
    if not isinstance(processes, int) or processes < 1:
        raise WatchError(f"processes must be a positive int, not {processes!r}")
    kwargs = dict(engine_kwargs)
    with connection_for(bind) as conn:
        server = kind(conn)
        target = make_url(url) if url is not None else conn.engine.url
        limits = _server_limits(conn, server)
        problems = _static_problems(kwargs, conn.engine.url.get_driver_name(), server, limits)
        problems += _statement_timeout_problem(kwargs, limits)
    problems += _live_problems(target, kwargs, explained=problems)
    size = _int(kwargs.get("pool_size"), _DEFAULT_POOL_SIZE)
    overflow = _int(kwargs.get("max_overflow"), _DEFAULT_OVERFLOW)
    check = PoolCheck(server, limits["max_connections"], limits["reserved"],
                      size + max(overflow, 0), processes, tuple(problems), limits["notes"])
    if check.total > check.available:
        size_problem = PoolProblem(
            "pool_size/max_overflow",
            f"{processes} process(es) x ({size} + {overflow}) = {check.total} connections, "
            f"the server allows {check.max_connections} - {check.reserved} reserved = "
            f"{check.available}",
            f"at most {check.available // processes} per process (pool_size = threads per "
            "process, max_overflow=0), or put PgBouncer/ProxySQL in front",
        )
        check = PoolCheck(check.server, check.max_connections, check.reserved, check.per_process,
                          processes, (size_problem, *problems), check.notes)
    return check


def _int(value: Any, default: int) -> int:
    return default if value is None else int(value)


_PG_LIMITS = ("max_connections", "superuser_reserved_connections", "reserved_connections",
              "idle_session_timeout", "statement_timeout")
_MY_LIMITS = ("max_connections", "wait_timeout", "max_statement_time", "max_execution_time")


def _server_limits(conn: Connection, server: str) -> dict[str, Any]:
    """max_connections, reserved slots, the idle timeout (s) and the default statement
    timeout (0 = none), from one query."""
    if server == "postgresql":
        found = {k: float(v or 0) for k, v in settings(conn, *_PG_LIMITS).items()}
        return {"max_connections": int(found["max_connections"]),
                "reserved": int(found["superuser_reserved_connections"]
                                + found["reserved_connections"]),
                "idle": found["idle_session_timeout"] / 1000 or None,
                "statement_timeout": found["statement_timeout"],
                "notes": ("reserved: superuser_reserved_connections (+ reserved_connections "
                          "on PostgreSQL 16+)",)}
    if server in ("mysql", "mariadb"):
        found = {k: float(v or 0) for k, v in settings(conn, *_MY_LIMITS).items()}
        timeout = "max_statement_time" if server == "mariadb" else "max_execution_time"
        return {"max_connections": int(found["max_connections"]), "reserved": 0,
                "idle": found["wait_timeout"] or None, "statement_timeout": found[timeout],
                "notes": ("MySQL/MariaDB keep one connection beyond max_connections for "
                          "an administrator",)}
    return {"max_connections": 0, "reserved": 0, "idle": None, "statement_timeout": 1.0,
            "notes": (f"{server} has no connection limit to check",)}


def _static_problems(kwargs: dict[str, Any], driver: str, server: str,
                     limits: dict[str, Any]) -> list[PoolProblem]:
    problems = []
    connect_args = dict(kwargs.get("connect_args") or {})
    if "statement_cache_size" in kwargs:
        problems.append(PoolProblem(
            "statement_cache_size",
            "not an engine setting: create_engine() raises TypeError (asyncpg takes it as a "
            "connect argument, SQLAlchemy's asyncpg dialect as prepared_statement_cache_size)",
            "drop it; SQLAlchemy caches compiled statements itself (query_cache_size)"))
    if "command_timeout" in connect_args and driver != "asyncpg":
        problems.append(PoolProblem(
            "connect_args.command_timeout",
            f"an asyncpg argument (a client-side timer); {driver} rejects it",
            "a server-side statement timeout in the driver's spelling: "
            "sqlaopt.watch.pool_settings() writes it"))
    reset = kwargs.get("pool_reset_on_return", "rollback")
    if reset not in ("rollback", True):
        problems.append(PoolProblem(
            "pool_reset_on_return",
            f"{reset!r} " + ("commits whatever a request left open: half-done work becomes "
                             "permanent" if reset == "commit" else
                             "leaves a request's open transaction to the next one"),
            'pool_reset_on_return="rollback"'))
    if server != "sqlite" and not kwargs.get("pool_pre_ping", False):
        problems.append(PoolProblem(
            "pool_pre_ping", "off: a connection the server dropped fails a request",
            "pool_pre_ping=True"))
    idle, recycle = limits["idle"], kwargs.get("pool_recycle", -1)
    if idle and (recycle is None or recycle < 0 or recycle >= idle):
        problems.append(PoolProblem(
            "pool_recycle",
            f"{recycle} is not below the server's idle timeout of {idle:g} s: connections "
            "die in the pool", f"pool_recycle={int(idle * _RECYCLE_SHARE)}"))
    if server == "postgresql" and not _has_application_name(connect_args):
        problems.append(PoolProblem(
            "connect_args.application_name",
            "not set: pg_stat_activity cannot tell this application's connections apart",
            "an application_name in the driver's spelling"))
    return problems


def _has_application_name(connect_args: Mapping[str, Any]) -> bool:
    settings = connect_args.get("server_settings") or {}
    return "application_name" in connect_args or "application_name" in settings


def _statement_timeout_problem(kwargs: Mapping[str, Any],
                               limits: dict[str, Any]) -> list[PoolProblem]:
    args = dict(kwargs.get("connect_args") or {})
    spelled = " ".join(str(v) for v in (args.get("options"), args.get("init_command"),
                                        (args.get("server_settings") or {}).get(
                                            "statement_timeout")) if v)
    if any(word in spelled for word in ("statement_timeout", "max_statement_time",
                                        "max_execution_time")) or spelled.strip().isdigit():
        return []
    if limits["statement_timeout"]:
        return []
    return [PoolProblem(
        "statement timeout",
        "none (the server's default is 0, no limit): a runaway statement holds its "
        "connection, and the pool, until it ends",
        "a statement timeout in the driver's spelling (sqlaopt.watch.pool_settings())")]


def _live_problems(url: URL, kwargs: dict[str, Any],
                   explained: list[PoolProblem]) -> list[PoolProblem]:
    """What create_engine() and one real connection say about ``kwargs``, leaving out the
    arguments already ``explained``."""
    known = {p.setting for p in explained}
    trial = {k: v for k, v in kwargs.items() if k not in ("pool_size", "max_overflow")
             and k not in known}
    connect_args = {k: v for k, v in dict(trial.get("connect_args") or {}).items()
                    if f"connect_args.{k}" not in known}
    trial["connect_args"] = connect_args
    try:
        engine = create_engine(url, **trial)
    except (TypeError, ArgumentError) as error:
        return [PoolProblem("create_engine()", str(error).splitlines()[0],
                            "remove the arguments it names")]
    except SQLAlchemyError as error:
        return [PoolProblem("create_engine()", str(error).splitlines()[0], "fix the URL")]
    return _try_connect(engine)


def _try_connect(engine: Engine) -> list[PoolProblem]:
    if engine.dialect.is_async:
        engine.dispose()
        return []  # an async driver needs an event loop; the static checks cover it
    try:
        with engine.connect():
            return []
    except Exception as error:  # whatever the driver raises is the finding
        message = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        return [PoolProblem("connect_args", f"the driver refuses to connect: {message}",
                            "use the driver's own argument names")]
    finally:
        engine.dispose()
