"""Every ```python block in docs/*.md and README.md runs.

The blocks of one page share a namespace and run in order, in a fresh context (outside this
test's own N+1 scope, as application code outside a test suite would run).
"""

from __future__ import annotations

import contextvars
import re
from pathlib import Path

import pytest

import sqlaopt

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted([*(ROOT / "docs").glob("*.md"), ROOT / "README.md"])
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def python_blocks(page: Path) -> list[str]:
    return BLOCK.findall(page.read_text())


@pytest.mark.parametrize("page", [p for p in PAGES if python_blocks(p)],
                         ids=lambda p: p.relative_to(ROOT).as_posix())
def test_page_examples_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem}"}
    try:
        for number, block in enumerate(python_blocks(page), 1):
            code = compile(block, f"{page.name} (python block {number})", "exec")
            contextvars.Context().run(exec, code, namespace)
    finally:
        sqlaopt.uninstall()
