"""Findings written to files that CI and code review read: JSON, SARIF 2.1.0 and HTML.

``sqlaopt.report.write(report, "sqlaopt.sarif")`` writes a :class:`~sqlaopt.Report` (or
detections, or the findings of a JSON report) in the format the suffix names. The pytest
plugin's ``--sqlaopt-report PATH`` writes the same files for a whole test run. See
docs/reports.md.
"""

from .._errors import ReportError
from ._json import SCHEMA_VERSION
from ._sarif import rule_description
from ._write import SUFFIXES, write

__all__ = ["SCHEMA_VERSION", "SUFFIXES", "ReportError", "rule_description", "write"]
