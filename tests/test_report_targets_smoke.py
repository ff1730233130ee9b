"""Smoke test of benchmarks/report_targets.py: its main path runs on a small SQLite file.

No timings are checked (benchmarks are not tests): only that the Markdown names every flow and
reports a throughput line.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sqlaopt.booking import FLOWS
from tests.scripts import load_benchmark


@pytest.mark.nplusone(mode="off")  # the naive flows are N+1 on purpose
def test_report_targets_runs_on_sqlite(tmp_path: Path) -> None:
    script = load_benchmark("report_targets")
    written = tmp_path / "report.md"
    printed: list[str] = []
    text = script.main(
        [
            "--url", f"sqlite:///{tmp_path / 'bench.db'}",
            "--appointments", "300",
            "--runs", "3",
            "--duration", "0.5",
            "--max-load", "1000",
            "--markdown", str(written),
        ],
        out=printed.append,
    )
    assert printed == [text]
    assert written.read_text() == text
    for flow in FLOWS:
        assert f"| {flow.title} |" in text
    assert "| clients | seconds | transactions | TPS |" in text
    assert "| 1 | " in text  # SQLite: one throughput client
    assert "TPS with 1 client" in text
