"""Database structure (report section 6): declarative, correct, proven on PostgreSQL.

- :class:`MaterializedView`: a view declared from a ``select()`` with its unique index,
  refreshed concurrently, its last refresh recorded (:meth:`~MaterializedView.refresh_if_older`);
  a table filled by ``INSERT ... SELECT`` on SQLite and MySQL/MariaDB; a read-only ORM class;
  Alembic operations in :mod:`sqlaopt.structure.alembic`. :data:`BARBER_MONTHLY_STATS` and
  :func:`monthly_dashboard`: the report's view, corrected, and the dashboard served from it.
- :class:`MonthlyPartitions`: a table range-partitioned by month (PostgreSQL) with per-partition
  indexes from an index spec, a default partition, :meth:`~MonthlyPartitions.ensure_partitions`,
  retention, an online resumable :meth:`~MonthlyPartitions.migrate`, and the double-booking
  guarantee kept across month boundaries; :func:`scanned_partitions` proves pruning.
  :data:`APPOINTMENT_PARTITIONS`: the reference ``appointments`` by month of ``start_time``.
- :class:`MaintainedAggregates` (:class:`DistinctCount`, :class:`Latest`,
  :class:`MonthlyTotal`): denormalised aggregates kept exact by triggers, with
  :meth:`~MaintainedAggregates.verify` and :meth:`~MaintainedAggregates.rebuild`.
  :data:`USER_AGGREGATES`: the report's ``users`` columns, corrected.

See docs/structure.md.
"""

from ._aggregates import (
    AggregateCheck,
    DistinctCount,
    Latest,
    MaintainedAggregates,
    MonthlyTotal,
    Verification,
)
from ._errors import MigrationError, ReadOnlyViewError, StructureError
from ._migrate import MigrationProgress, MigrationResult
from ._months import Partition
from ._partitions import MonthlyPartitions, scanned_partitions
from ._report import (
    APPOINTMENT_PARTITIONS,
    BARBER_MONTHLY_STATS,
    BARBER_ROLES,
    BOOKED_STATUSES,
    USER_AGGREGATES,
    monthly_dashboard,
)
from ._views import MaterializedView, Refresh

__all__ = [
    "APPOINTMENT_PARTITIONS",
    "BARBER_MONTHLY_STATS",
    "BARBER_ROLES",
    "BOOKED_STATUSES",
    "USER_AGGREGATES",
    "AggregateCheck",
    "DistinctCount",
    "Latest",
    "MaintainedAggregates",
    "MaterializedView",
    "MigrationError",
    "MigrationProgress",
    "MigrationResult",
    "MonthlyPartitions",
    "MonthlyTotal",
    "Partition",
    "ReadOnlyViewError",
    "Refresh",
    "StructureError",
    "Verification",
    "monthly_dashboard",
    "scanned_partitions",
]
