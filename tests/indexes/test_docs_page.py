"""docs/indexes.md: the REPORT table is generated from REPORT (tests/test_docs.py runs the
page's examples)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from sqlaopt.indexes._docs import BEGIN, END, report_table

PAGE = Path(__file__).resolve().parents[2] / "docs" / "indexes.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def test_the_report_table_is_current() -> None:
    """Regenerate with SQLAOPT_UPDATE_DOCS=1 (or ``python -m sqlaopt.indexes._docs``)."""
    page = PAGE.read_text()
    start, end = page.index(BEGIN), page.index(END) + len(END)
    current = report_table()
    if os.environ.get("SQLAOPT_UPDATE_DOCS") == "1":
        PAGE.write_text(page[:start] + current + page[end:])
        page = PAGE.read_text()
    assert page[start:end] == current, "docs/indexes.md is stale: SQLAOPT_UPDATE_DOCS=1 pytest ..."
