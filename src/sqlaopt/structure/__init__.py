"""Database structure (report section 6), declarative and proven on PostgreSQL.

- :class:`MaterializedView`: a view declared from a ``select()``, with its unique index,
  refreshed concurrently, its staleness recorded; a table filled by ``INSERT ... SELECT`` on
  SQLite and MySQL/MariaDB. :data:`BARBER_MONTHLY_STATS` and :func:`monthly_dashboard`: the
  report's view, corrected, and the dashboard served from it.

See docs/structure.md.
"""

from ._errors import MigrationError, ReadOnlyViewError, StructureError
from ._report import BARBER_MONTHLY_STATS, BARBER_ROLES, monthly_dashboard
from ._views import MaterializedView, Refresh

__all__ = [
    "BARBER_MONTHLY_STATS",
    "BARBER_ROLES",
    "MaterializedView",
    "MigrationError",
    "ReadOnlyViewError",
    "Refresh",
    "StructureError",
    "monthly_dashboard",
]
