"""sqlaopt: keep SQLAlchemy 2.x applications fast.

- :func:`detect`, :func:`install`: runtime N+1 detection (raise in tests, log in production);
- :func:`batch`: automatic batch loading (a loop of lazy loads becomes 1 + depth statements);
- :func:`eager`, :class:`Preset`, :mod:`sqlaopt.presets`: loader-option presets;
- :mod:`sqlaopt.indexes`, :mod:`sqlaopt.explain`: the report's indexes, checked and proven used;
- :mod:`sqlaopt.sql`, :mod:`sqlaopt.booking`: the report's query patterns done right;
- :mod:`sqlaopt.watch`: slow statements, index health, an index advisor, pools that fit;
- :mod:`sqlaopt.structure`: materialized views, monthly partitions, maintained aggregates;
- :mod:`sqlaopt.report`: findings as JSON, SARIF (GitHub code scanning) and HTML files.
"""

from ._errors import (
    BatchError,
    NPlusOneError,
    NPlusOneWarning,
    PresetError,
    QueryBudgetError,
    SqlaoptError,
)
from .batching import batch
from .detect import (
    Detection,
    QueryCount,
    Report,
    allow,
    assert_max_queries,
    count_queries,
    detect,
    flush_log_summaries,
    install,
    treat_as_library,
    uninstall,
)
from .explain import assert_uses_index
from .loading import Preset, assert_loaded, eager

__version__ = "0.1.0"

__all__ = [
    "BatchError",
    "Detection",
    "NPlusOneError",
    "NPlusOneWarning",
    "Preset",
    "PresetError",
    "QueryBudgetError",
    "QueryCount",
    "Report",
    "SqlaoptError",
    "allow",
    "assert_loaded",
    "assert_max_queries",
    "assert_uses_index",
    "batch",
    "count_queries",
    "detect",
    "eager",
    "flush_log_summaries",
    "install",
    "treat_as_library",
    "uninstall",
]
