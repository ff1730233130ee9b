"""Small facts about the server behind a connection: its kind, settings and extensions."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, text

from ..indexes._dialects import dialect_key
from ._errors import NotEnabledError

__all__ = [
    "Extension",
    "kind",
    "mysql_variable",
    "pg_extension",
    "pg_setting",
    "require_pg_extension",
    "settings",
]


def kind(conn: Connection) -> str:
    """``postgresql``, ``mariadb``, ``mysql``, ``sqlite`` or the dialect's own name."""
    return dialect_key(conn.dialect)


_PG_SETTINGS = text("SELECT name, setting FROM pg_settings WHERE name IN :names").bindparams(
    bindparam("names", expanding=True))
_MYSQL_VARIABLES = text("SHOW GLOBAL VARIABLES WHERE Variable_name IN :names").bindparams(
    bindparam("names", expanding=True))


def settings(conn: Connection, *names: str) -> dict[str, str | None]:
    """Server settings in one query: PostgreSQL's ``pg_settings`` (raw values in the
    setting's base unit: ms, not "30s"), MySQL/MariaDB global variables; None for a name
    this server does not have."""
    query = _PG_SETTINGS if kind(conn) == "postgresql" else _MYSQL_VARIABLES
    found = {str(row[0]).lower(): str(row[1]) for row in conn.execute(query, {"names": names})}
    return {name: found.get(name.lower()) for name in names}


def pg_setting(conn: Connection, name: str) -> str | None:
    """One PostgreSQL setting (see :func:`settings`)."""
    return settings(conn, name)[name]


def mysql_variable(conn: Connection, name: str) -> str | None:
    """One MySQL/MariaDB global variable (see :func:`settings`)."""
    return settings(conn, name)[name]


@dataclass(frozen=True)
class Extension:
    """An extension created in the current PostgreSQL database."""

    name: str
    schema: str
    version: str

    def qualified(self, conn: Connection, relation: str) -> str:
        """``schema.relation``, quoted as needed."""
        return f"{conn.dialect.identifier_preparer.quote(self.schema)}.{relation}"


_EXTENSION = text(
    "SELECT n.nspname, e.extversion FROM pg_extension e "
    "JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = :name"
)


def pg_extension(conn: Connection, name: str) -> Extension | None:
    """The extension ``name`` if it is created in the current database."""
    row = conn.execute(_EXTENSION, {"name": name}).first()
    return None if row is None else Extension(name, str(row[0]), str(row[1]))


def _available(conn: Connection, name: str) -> bool:
    query = text("SELECT 1 FROM pg_available_extensions WHERE name = :name")
    return conn.execute(query, {"name": name}).first() is not None


def _preloaded(conn: Connection, library: str) -> bool:
    setting = pg_setting(conn, "shared_preload_libraries") or ""
    return library in [part.strip().strip('"') for part in setting.split(",")]


_PACKAGES = {
    "pg_stat_statements": "the contrib package (Debian/Ubuntu: postgresql-contrib)",
    "hypopg": "HypoPG (Debian/Ubuntu: apt-get install postgresql-<major>-hypopg; or build "
    "it from https://github.com/HypoPG/hypopg)",
}


def enable_steps(conn: Connection, name: str, *, preload: bool) -> str:
    """What to do, in order, to make extension ``name`` usable in this database."""
    database = conn.execute(text("SELECT current_database()")).scalar()
    steps = []
    if not _available(conn, name):
        steps.append(f"install {_PACKAGES.get(name, name)} on the database server")
    if preload and not _preloaded(conn, name):
        steps.append(
            f"add {name} to shared_preload_libraries in postgresql.conf "
            f"(shared_preload_libraries = '{name}') and restart PostgreSQL"
        )
    steps.append(f"run CREATE EXTENSION {name}; in database {database}")
    numbered = "; ".join(f"({i}) {step}" for i, step in enumerate(steps, 1))
    return f"To enable it: {numbered}"


def require_pg_extension(conn: Connection, name: str, *, preload: bool, purpose: str) -> Extension:
    """The extension, or :class:`NotEnabledError` saying how to enable it."""
    found = pg_extension(conn, name)
    if found is not None and (not preload or _preloaded(conn, name)):
        return found
    state = "is not created in this database" if found is None else "is not preloaded"
    raise NotEnabledError(f"{purpose} needs the {name} extension, which {state}",
                          enable_steps(conn, name, preload=preload))
