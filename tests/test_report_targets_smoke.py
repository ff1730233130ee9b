"""Smoke test of benchmarks/report_targets.py: its main path runs on a small SQLite file.

No timings are checked (benchmarks are not tests): only that the Markdown names every flow and
reports a throughput line.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from sqlaopt.booking import FLOWS

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "report_targets.py"


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("report_targets", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.nplusone(mode="off")  # the naive flows are N+1 on purpose
def test_report_targets_runs_on_sqlite(tmp_path: Path) -> None:
    script = _load_script()
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
