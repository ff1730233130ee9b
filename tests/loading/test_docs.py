"""docs/presets.md runs: every ```python block, in order, in one namespace; a ```text block
right after one is its exact output."""

from __future__ import annotations

import contextlib
import io
import itertools
import re
from pathlib import Path

PAGE = Path(__file__).resolve().parents[2] / "docs" / "presets.md"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```\n(\s*)", re.S | re.M)


def examples() -> list[tuple[str, str | None]]:
    """(code, expected output or None) for each python block of the page."""
    text = PAGE.read_text()
    blocks = list(FENCE.finditer(text))
    pairs: list[tuple[str, str | None]] = []
    for block, following in zip(blocks, [*blocks[1:], None], strict=True):
        if block.group(1) != "python":
            continue
        # The fence pattern swallows the blank lines after a block, so a text block that
        # starts where this one's match ends follows it directly.
        is_output = (
            following is not None
            and following.group(1) == "text"
            and following.start() == block.end()
        )
        pairs.append((block.group(2), following.group(2) if is_output and following else None))
    return pairs


def test_the_page_has_examples_with_outputs() -> None:
    pairs = examples()
    assert len(pairs) >= 10
    assert sum(output is not None for _, output in pairs) >= 10


def test_every_example_runs_and_prints_what_the_page_says() -> None:
    namespace: dict[str, object] = {"__name__": "docs_presets"}
    for number, (code, expected) in enumerate(examples(), 1):
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(code, f"{PAGE.name}:example {number}", "exec"), namespace)
        if expected is not None:
            assert printed.getvalue() == expected, f"example {number} of {PAGE.name}"


def test_text_blocks_only_follow_python_blocks() -> None:
    text = PAGE.read_text()
    languages = [m.group(1) for m in FENCE.finditer(text)]
    assert set(languages) <= {"python", "text"}
    for before, language in itertools.pairwise(languages):
        if language == "text":
            assert before == "python"
