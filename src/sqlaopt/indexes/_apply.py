"""``apply()``: attach the spec's indexes and constraints to a model's tables, and the plan that
:func:`~sqlaopt.indexes.ddl`, :func:`~sqlaopt.indexes.check`, :func:`~sqlaopt.indexes.create` and
:func:`~sqlaopt.indexes.alembic_migration` work from."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import MetaData, Table

from ._build import MARK, SchemaObject, build, owned_entry, private_copy, schema_items
from ._dialects import DIALECTS, DialectStatus, dialect_status
from ._errors import IndexSpecError, IndexSpecWarning
from ._named import NamedSequence
from ._report import REPORT
from ._resolve import OnMissing, Renames, Resolution, find_table, resolve
from ._spec import Entry, ExclusionSpec, Spec, as_spec

__all__ = ["ApplyResult", "EntryResult", "Plan", "PlanItem", "apply", "metadata_of", "plan"]

EntryStatus = Literal["applied", "adapted", "skipped"]


@dataclass(frozen=True)
class EntryResult:
    """What :func:`apply` did with one entry.

    ``status`` is ``applied`` (attached as declared), ``adapted`` (attached with the
    ``changes`` listed: renames, a key cut to its prefix) or ``skipped`` (``reason`` says
    why). ``definition`` is the entry as attached, in the target's names. ``dialects`` maps
    each of ``postgresql``, ``sqlite``, ``mysql``, ``mariadb`` to what that database gets.
    """

    name: str
    kind: Literal["index", "exclusion"]
    table: str
    status: EntryStatus
    changes: tuple[str, ...] = ()
    reason: str | None = None
    definition: Entry | None = None
    section: str = ""
    dialects: Mapping[str, DialectStatus] = field(default_factory=dict, hash=False)

    def on(self, dialect: str) -> DialectStatus:
        """The status on ``dialect`` (one of ``postgresql sqlite mysql mariadb``)."""
        return self.dialects[dialect]

    def __str__(self) -> str:
        detail = "; ".join(self.changes) if self.status == "adapted" else (self.reason or "")
        return f"{self.name}: {self.status}" + (f" ({detail})" if detail else "")


@dataclass(frozen=True)
class ApplyResult(NamedSequence[EntryResult]):
    """The outcome of :func:`apply`, one :class:`EntryResult` per spec entry, in spec order;
    index it by position or entry name."""

    entries: tuple[EntryResult, ...]

    def _items(self) -> tuple[EntryResult, ...]:
        return self.entries


    def with_status(self, status: EntryStatus) -> tuple[str, ...]:
        """Names of the entries with this schema-level status."""
        return tuple(e.name for e in self.entries if e.status == status)

    def table(self, dialect: str | None = None) -> str:
        """A plain-text table: one line per entry, with the status on ``dialect`` if given."""
        rows = [("entry", "table", "status", "detail")]
        for e in self.entries:
            if dialect is None:
                detail = "; ".join(e.changes) if e.status == "adapted" else (e.reason or "")
                rows.append((e.name, e.table, e.status, detail))
            else:
                on = e.on(dialect)
                rows.append((e.name, e.table, on.status, on.detail))
        return format_table(rows)

    def __str__(self) -> str:
        return self.table()


def format_table(rows: Sequence[tuple[str, ...]]) -> str:
    """Left-aligned columns, the last one free-width."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)]
        cells.append(row[-1])
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def metadata_of(target: object) -> MetaData:
    """The MetaData of ``target``: a MetaData, or anything with one in ``.metadata`` (a
    declarative base, a ``registry``)."""
    if isinstance(target, MetaData):
        return target
    metadata = getattr(target, "metadata", None)
    if isinstance(metadata, MetaData):
        return metadata
    raise IndexSpecError(
        f"target must be a MetaData or a declarative base with .metadata, not {target!r}"
    )


def _reference_metadata() -> MetaData:
    from ..booking.models import Base

    return Base.metadata


def apply(
    target: object,
    spec: Spec | Iterable[Entry] = REPORT,
    *,
    on_missing: OnMissing = "error",
    rename: Mapping[str, str] | None = None,
) -> ApplyResult:
    """Attach ``spec``'s indexes and constraints to the matching tables of ``target``.

    ``target`` is a ``MetaData`` or a declarative base. Real ``sqlalchemy.Index`` and
    ``ExcludeConstraint`` objects are attached, so ``metadata.create_all()`` and Alembic
    autogenerate see them; each carries a dialect gate, so ``create_all()`` builds on every
    database exactly what :attr:`EntryResult.dialects` says (a GiST index is never handed to
    SQLite). ``rename`` maps the spec's names to the target's: ``{"ai_insight_cache":
    "ai_insights_cache", "clients.last_visit": "last_visit_date"}``.

    ``on_missing="error"`` raises :class:`IndexSpecError` naming each missing table or column
    and what does exist; ``"warn"`` (an :class:`IndexSpecWarning` per entry) and ``"skip"``
    attach what fits instead: an index missing a later key column keeps the prefix before it
    (``adapted``), anything else is ``skipped``. Every check runs before the first change, so
    an error leaves ``target`` untouched. Applying the same spec again is a no-op; applying a
    different definition under an applied name is an error.
    """
    metadata = metadata_of(target)
    entries = as_spec(spec)
    if on_missing not in ("error", "warn", "skip"):
        raise IndexSpecError(f"on_missing must be 'error', 'warn' or 'skip', not {on_missing!r}")
    renames = Renames.parse(rename, entries)
    resolutions = [resolve(entry, metadata, renames, on_missing) for entry in entries]
    _raise_problems(resolutions, on_missing)
    _check_conflicts(metadata, resolutions)
    results = [_attach(resolution) for resolution in resolutions]
    metadata.info.setdefault(MARK, {}).update({r.name: r for r in results})
    if on_missing == "warn":
        for resolution, result in zip(resolutions, results, strict=True):
            if resolution.problems:
                warnings.warn(IndexSpecWarning(str(result)), stacklevel=2)
    return ApplyResult(tuple(results))


def _raise_problems(resolutions: Sequence[Resolution], on_missing: OnMissing) -> None:
    if on_missing != "error":
        return
    lines = [f"  {r.original.name}: {p}" for r in resolutions for p in r.problems]
    if lines:
        problems = "the spec does not fit the target schema:\n" + "\n".join(lines)
        raise IndexSpecError(
            f"{problems}\nMap the names with rename={{'table.column': 'real_name', 'table': "
            "'real_table'}, or pass on_missing='warn' to attach what fits. Nothing was "
            "attached.",
            cli_message=f"{problems}\nMap the names with --rename table.column=real_name "
            "--rename table=real_table, or pass --on-missing warn to build what fits. "
            "Nothing was built.",
        )


def _existing(metadata: MetaData) -> dict[str, tuple[Table, Any]]:
    found: dict[str, tuple[Table, Any]] = {}
    for table in metadata.tables.values():
        for item in schema_items(table):
            if item.name is not None:
                found[str(item.name)] = (table, item)
    return found


def _check_conflicts(metadata: MetaData, resolutions: Sequence[Resolution]) -> None:
    """Refuse a name that is already taken, unless it is this very entry applied before."""
    existing = _existing(metadata)
    table_names = {t.name for t in metadata.tables.values()}
    for resolution in resolutions:
        entry = resolution.entry
        if entry is None:
            continue
        if entry.name in table_names:
            raise IndexSpecError(f"{entry.name} is also a table name; names share one namespace")
        if entry.name not in existing:
            continue
        table, item = existing[entry.name]
        previous = owned_entry(item)
        if previous is None:
            declared = (
                f"table {table.name!r} already declares {entry.name!r} (not from "
                "sqlaopt.indexes): remove it from the model, or leave the entry out"
            )
            raise IndexSpecError(
                f"{declared} with spec.without({entry.name!r}). Nothing was attached.",
                cli_message=f"{declared} with a spec of your own: --spec app.indexes:SPEC, "
                f"where SPEC = REPORT.without({entry.name!r}). Nothing was built.",
            )
        if previous != entry:
            raise IndexSpecError(
                f"{entry.name} was applied before as {previous.describe()}; now it would be "
                f"{entry.describe()}. Apply to a fresh MetaData to change a definition. "
                "Nothing was attached."
            )


def _attach(resolution: Resolution, *, concurrently: bool = False) -> EntryResult:
    entry, table = resolution.entry, resolution.table
    if entry is None or table is None:
        return _skipped(resolution)
    if entry.name not in {str(i.name) for i in schema_items(table)}:
        build(entry, table, concurrently=concurrently)
    return EntryResult(
        name=entry.name,
        kind="exclusion" if isinstance(entry, ExclusionSpec) else "index",
        table=table.name,
        status="adapted" if resolution.changes else "applied",
        changes=resolution.changes,
        definition=entry,
        section=resolution.original.section,
        dialects={d: dialect_status(entry, table, d) for d in DIALECTS},
    )


def _skipped(resolution: Resolution) -> EntryResult:
    original = resolution.original
    reason = resolution.reason or "does not fit the target"
    return EntryResult(
        name=original.name,
        kind="exclusion" if isinstance(original, ExclusionSpec) else "index",
        table=resolution.table.name if resolution.table is not None else original.table,
        status="skipped",
        changes=resolution.changes,
        reason=reason,
        section=original.section,
        dialects={d: DialectStatus("skipped", reason) for d in DIALECTS},
    )


# --- the plan the other operations work from -----------------------------------------------


@dataclass(frozen=True)
class PlanItem:
    """One entry as the other operations see it: the apply result and, unless skipped, the
    table and the schema object built on the private copy."""

    result: EntryResult
    table: Table | None
    obj: SchemaObject | None

    def status_on(self, dialect: str) -> DialectStatus:
        """The entry's status on ``dialect`` (a schema-level skip is a skip everywhere)."""
        if self.result.definition is None or self.table is None:
            return DialectStatus("skipped", self.result.reason or "")
        return dialect_status(self.result.definition, self.table, dialect)


@dataclass(frozen=True)
class Plan:
    """The spec fitted to a private copy of the target's tables."""

    metadata: MetaData
    items: tuple[PlanItem, ...]


def plan(
    spec: Spec | Iterable[Entry], target: object | None, *, concurrently: bool = False
) -> Plan:
    """Fit ``spec`` to a private copy of ``target`` (the reference schema when None).

    Entries that :func:`apply` already fitted to ``target`` keep that outcome (renames,
    skips); the others are resolved strictly (``on_missing="error"``). Nothing of ``target``
    is changed.
    """
    entries = as_spec(spec)
    source = metadata_of(target) if target is not None else _reference_metadata()
    copy = private_copy(source)
    recorded: dict[str, EntryResult] = source.info.get(MARK, {})
    resolutions = [
        _recorded(recorded[e.name], e, copy)
        if e.name in recorded
        else resolve(e, copy, Renames(), "error")
        for e in entries
    ]
    _raise_problems(resolutions, "error")
    items = []
    for resolution in resolutions:
        result = _attach(resolution, concurrently=concurrently)
        table = resolution.table if result.definition is not None else None
        obj = _find_object(table, result.name) if table is not None else None
        items.append(PlanItem(result, table, obj))
    return Plan(copy, tuple(items))


def _recorded(result: EntryResult, original: Entry, copy: MetaData) -> Resolution:
    table = find_table(copy, result.table)
    if result.definition is None or table is None:
        return Resolution(original, table, None, result.changes, reason=result.reason)
    return Resolution(original, table, result.definition, result.changes)


def _find_object(table: Table, name: str) -> SchemaObject | None:
    for item in schema_items(table):
        if item.name == name and owned_entry(item) is not None:
            return item  # type: ignore[return-value]
    return None
