from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session

import sqlaopt
from sqlaopt.detect import _emit

from ..conftest import sqlite_engine
from . import shapes


@pytest.fixture(autouse=True)
def _no_process_defaults() -> Iterator[None]:
    """Every detector test starts and ends without install() in force, and with no log
    aggregation carried over from another test."""
    sqlaopt.uninstall()
    _emit._aggregator.entries.clear()
    yield
    sqlaopt.uninstall()
    _emit._aggregator.entries.clear()


def kinds(report: sqlaopt.Report) -> list[tuple[str, str | None, int]]:
    """(kind, "Model.attr" or "Model", count) of each detection, sorted."""
    return sorted((d.kind, d.target, d.count) for d in report.detections)


Record = tuple[dict[str, Any], logging.LogRecord]


def nplusone_records(caplog: pytest.LogCaptureFixture) -> list[Record]:
    """(the structured fields, the record) of each record on the ``sqlaopt.nplusone`` logger."""
    return [(r.sqlaopt, r) for r in caplog.records  # type: ignore[attr-defined]
            if r.name == "sqlaopt.nplusone"]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def shapes_engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """The shapes schema with its data, on SQLite and PostgreSQL."""
    engine = sqlite_engine() if request.param == "sqlite" else create_engine(
        request.getfixturevalue("pg_url"))
    shapes.Base.metadata.create_all(engine)
    with Session(engine) as session:
        shapes.populate(session)
    yield engine
    shapes.Base.metadata.drop_all(engine)
    engine.dispose()
