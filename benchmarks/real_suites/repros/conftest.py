"""The reproductions' shared database: ``mini_app``'s schema and rows, one per module."""

from __future__ import annotations

import mini_app
import pytest


@pytest.fixture(scope="module")
def engine():
    return mini_app.make_engine()
