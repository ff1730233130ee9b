"""docs/indexes.md: the REPORT table is generated from REPORT, and every example runs."""

from __future__ import annotations

import contextvars
import os
import re
from pathlib import Path

import pytest

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


@pytest.mark.nplusone(mode="off")  # the page's examples are application code, not this test's
def test_every_python_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "docs_indexes"}
    blocks = BLOCK.findall(PAGE.read_text())
    assert len(blocks) >= 5
    for number, block in enumerate(blocks, 1):
        code = compile(block, f"indexes.md (python block {number})", "exec")
        contextvars.Context().run(exec, code, namespace)
