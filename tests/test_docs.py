"""Every ```python block in docs/*.md and README.md runs.

The blocks of one page share a namespace and run in order, in a fresh context (outside this
test's own N+1 scope, as application code outside a test suite would run). A page that
contains the marker ``<!-- docs-test: exact output -->`` promises more: a ```text block right
after an example is exactly what that example prints.
"""

from __future__ import annotations

import contextlib
import contextvars
import io
import itertools
import re
from pathlib import Path

import pytest

import sqlaopt

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted([*(ROOT / "docs").glob("*.md"), ROOT / "README.md"])
FENCE = re.compile(r"^```(\w+)\n(.*?)^```\n(\s*)", re.MULTILINE | re.DOTALL)
EXACT_OUTPUT = "<!-- docs-test: exact output -->"


def examples(page: Path) -> list[tuple[str, str | None]]:
    """(code, the text block right after it or None) for each python block of ``page``."""
    blocks = list(FENCE.finditer(page.read_text()))
    pairs: list[tuple[str, str | None]] = []
    for index, block in enumerate(blocks):
        following = blocks[index + 1] if index + 1 < len(blocks) else None
        if block.group(1) != "python":
            continue
        # The fence pattern swallows the blank lines after a block, so an output block starts
        # exactly where this one's match ends.
        output = (following.group(2) if following is not None and following.group(1) == "text"
                  and following.start() == block.end() else None)
        pairs.append((block.group(2), output))
    return pairs


def page_id(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


# The examples are application code outside a test suite: the plugin's test scope stays out.
@pytest.mark.nplusone(mode="off")
@pytest.mark.parametrize("page", [p for p in PAGES if examples(p)], ids=page_id)
def test_page_examples_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    exact = EXACT_OUTPUT in page.read_text()
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem}"}
    try:
        for number, (code, expected) in enumerate(examples(page), 1):
            printed = io.StringIO()
            compiled = compile(code, f"{page.name} (python block {number})", "exec")
            with contextlib.redirect_stdout(printed):
                contextvars.Context().run(exec, compiled, namespace)
            if exact and expected is not None:
                assert printed.getvalue() == expected, f"example {number} of {page_id(page)}"
    finally:
        sqlaopt.uninstall()


@pytest.mark.parametrize("page", [p for p in PAGES if EXACT_OUTPUT in p.read_text()],
                         ids=page_id)
def test_exact_output_pages_show_outputs_only_after_examples(page: Path) -> None:
    languages = [m.group(1) for m in FENCE.finditer(page.read_text())]
    for before, language in itertools.pairwise(languages):
        if language == "text":
            assert before == "python", f"{page_id(page)}: a text block must follow an example"
