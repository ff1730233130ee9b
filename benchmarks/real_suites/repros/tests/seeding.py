"""A helper module of the test package, not itself a test module: pytest collects nothing
here (like mealie's tests/multitenant_tests/case_tools.py, tests/utils/*.py and
tests/fixtures/*.py). Its loops are the test suite's own."""

from __future__ import annotations

import mini_app
from sqlalchemy.orm import Session


def seed_and_read(session: Session, ids: list[int]) -> list[str]:
    """One application call per item, as ``ToolsTestCase.seed_action`` calls
    ``self.database.tools.create(...)`` ten times."""
    names = []
    for parent_id in ids:                             # the test suite's loop
        names.append(mini_app.parent_name(session, parent_id))
    return names
