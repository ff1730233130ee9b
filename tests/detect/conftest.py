from __future__ import annotations

from collections.abc import Iterator

import pytest

import sqlaopt


@pytest.fixture(autouse=True)
def _no_process_defaults() -> Iterator[None]:
    """Every detector test starts and ends without install() in force."""
    sqlaopt.uninstall()
    yield
    sqlaopt.uninstall()


def kinds(report: sqlaopt.Report) -> list[tuple[str, str | None, int]]:
    """(kind, "Model.attr" or "Model", count) of each detection, sorted."""
    return sorted((d.kind, d.target, d.count) for d in report.detections)
