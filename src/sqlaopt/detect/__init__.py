"""Runtime N+1 detection through one SQLAlchemy event.

See docs/detection.md for the rule and docs/design.md for why it is built this way.
"""

from ._api import allow, assert_max_queries, count_queries, detect, install, uninstall
from ._callsite import treat_as_library
from ._emit import flush_log_summaries
from ._hook import QueryCount
from ._report import Detection, Report
from ._scope import MODES

__all__ = [
    "MODES",
    "Detection",
    "QueryCount",
    "Report",
    "allow",
    "assert_max_queries",
    "count_queries",
    "detect",
    "flush_log_summaries",
    "install",
    "treat_as_library",
    "uninstall",
]
