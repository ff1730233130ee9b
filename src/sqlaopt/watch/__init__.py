"""Watch the live database and advise (the performance report's sections 4.1 and 8, done
right).

- :func:`slow_statements`: the top statements from ``pg_stat_statements`` (columns read from
  the extension's version, PostgreSQL 12-17) or MariaDB/MySQL ``performance_schema``
  digests, their text :func:`normalize`-d.
- :func:`index_health`: every index with size and scans, flagged invalid, duplicate,
  redundant, unused, and tables read by sequential scans, each with its reason and DDL.
- :func:`advise`: indexes for a :class:`Workload`, each proven with HypoPG hypothetical
  indexes, as IndexSpec code, DDL and an Alembic migration; :func:`compare` judges an
  existing spec against the same workload.
- :func:`pool_settings` / :func:`check_pool`: engine arguments per driver and deployment,
  and a live check against ``max_connections``.
- :class:`PlanSampler`: EXPLAIN (never ANALYZE) for a slow-statement log, rate-limited.
- :func:`report`: all of it at once (``sqlaopt db report``).

See docs/monitoring.md.
"""

from ._advice import DEFAULT_FACTOR, Advice, Recommendation, StatementAdvice
from ._advisor import advise
from ._coverage import Coverage, EntryCoverage, compare
from ._errors import NotEnabledError, WatchError
from ._health import IndexFinding, IndexHealth, IndexUsage, index_health
from ._normalize import normalize
from ._pool import PoolCheck, PoolProblem, PoolSettings, check_pool, pool_settings
from ._report import DatabaseReport, report
from ._sampler import PlanSampler
from ._statements import SlowStatements, StatementStat, slow_statements
from ._workload import Workload, WorkloadStatement

__all__ = [
    "DEFAULT_FACTOR",
    "Advice",
    "Coverage",
    "DatabaseReport",
    "EntryCoverage",
    "IndexFinding",
    "IndexHealth",
    "IndexUsage",
    "NotEnabledError",
    "PlanSampler",
    "PoolCheck",
    "PoolProblem",
    "PoolSettings",
    "Recommendation",
    "SlowStatements",
    "StatementAdvice",
    "StatementStat",
    "WatchError",
    "Workload",
    "WorkloadStatement",
    "advise",
    "check_pool",
    "compare",
    "index_health",
    "normalize",
    "pool_settings",
    "report",
    "slow_statements",
]
