"""The performance report's indexes as a declarative, portable, validated spec.

- :data:`REPORT`: every index of the report, deduplicated and corrected, plus the
  ``no_double_booking`` exclusion constraint.
- :class:`IndexSpec` / :class:`ExclusionSpec` entries, with key parts that are column names or
  :func:`date`, :func:`date_trunc`, :func:`tsrange`, and predicates built with :func:`eq`,
  :func:`in_`, :func:`is_null`, ... (or ``{"status": "completed"}``).
- :func:`apply` attaches real ``Index``/``ExcludeConstraint`` objects to a model's tables;
  :func:`ddl` renders per dialect; :func:`check` compares with a live database; :func:`create`
  builds what is missing (CONCURRENTLY on PostgreSQL, repairing INVALID leftovers, one run
  at a time per table);
  :func:`alembic_migration` writes an Alembic revision body.
- :func:`is_exclusion_conflict`: whether a database error is ``no_double_booking`` (or another
  exclusion constraint) refusing an overlapping row.
- :class:`indexed_date` / :class:`indexed_date_trunc` / :class:`indexed_tsrange`: the exact
  expressions the spec indexes, for queries that must hit those indexes.

See docs/indexes.md.
"""

from ._alembic import alembic_include_object, alembic_migration
from ._apply import ApplyResult, EntryResult, apply
from ._check import CheckResult, EntryCheck, RedundantIndex, check
from ._conflicts import is_exclusion_conflict
from ._create import CreateAction, CreateResult, create
from ._dialects import DIALECTS, DialectStatus
from ._errors import IndexBuildError, IndexLockError, IndexSpecError, IndexSpecWarning
from ._expressions import DATE_TRUNC_UNITS, indexed_date, indexed_date_trunc, indexed_tsrange
from ._predicates import Condition, eq, ge, gt, in_, is_null, le, lt, ne, not_null
from ._render import ddl
from ._report import REPORT, REPORT_ORIGINS, SUPPLEMENT
from ._spec import (
    MAX_NAME_LENGTH,
    DateOf,
    DateTrunc,
    ExclusionSpec,
    IndexSpec,
    Spec,
    TsRange,
    date,
    date_trunc,
    tsrange,
)

__all__ = [
    "DATE_TRUNC_UNITS",
    "DIALECTS",
    "MAX_NAME_LENGTH",
    "REPORT",
    "REPORT_ORIGINS",
    "SUPPLEMENT",
    "ApplyResult",
    "CheckResult",
    "Condition",
    "CreateAction",
    "CreateResult",
    "DateOf",
    "DateTrunc",
    "DialectStatus",
    "EntryCheck",
    "EntryResult",
    "ExclusionSpec",
    "IndexBuildError",
    "IndexLockError",
    "IndexSpec",
    "IndexSpecError",
    "IndexSpecWarning",
    "RedundantIndex",
    "Spec",
    "TsRange",
    "alembic_include_object",
    "alembic_migration",
    "apply",
    "check",
    "create",
    "date",
    "date_trunc",
    "ddl",
    "eq",
    "ge",
    "gt",
    "in_",
    "indexed_date",
    "indexed_date_trunc",
    "indexed_tsrange",
    "is_exclusion_conflict",
    "is_null",
    "le",
    "lt",
    "ne",
    "not_null",
    "tsrange",
]
