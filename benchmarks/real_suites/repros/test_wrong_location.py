"""Shape `wrong-location`: the reported line is SQLAlchemy's generated code, not the app's.

1. ``<string>`` frames are application frames to ``_callsite._classify`` (only ``<frozen`` and
   ``<sqlalchemy`` are special-cased), but on SQLAlchemy 2.0.x the ``<string>`` frames on the
   ORM's paths are its own generated wrappers: the deprecation wrapper of ``Query.get`` and the
   ``state_changes`` wrappers of ``Session.commit`` / ``_prepare_impl``. In ihatemoney:
   ``column_load Project.id at <string>:2 in get`` (api/common.py:27 calls
   ``Project.query.get``), and ``column_load ... at <string>:2 in _prepare_impl`` in the flush
   repro (test_select_during_flush.py) on 2.0.45.
2. The depth hints of ``_callsite._innermost_user_frame`` can skip application frames: see
   depth_hint_skips_frames.py, run here in a fresh process.

Run these under SQLAlchemy 2.0.x (``uv run --with 'sqlalchemy==2.0.45' pytest ...``); on 2.1
Query.get and commit are no longer wrapped in generated code.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import mini_app
import pytest
from sqlalchemy.orm import Session

import sqlaopt


def names_by_legacy_get(session: Session, ids: list[int]) -> list[str]:
    names = []
    for parent_id in ids:                            # the application's loop
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")          # Query.get is legacy in 2.0
            names.append(session.query(mini_app.Parent).get(parent_id).name)
    return names


def test_a_loop_of_legacy_query_get_is_reported_at_the_loop():
    engine = mini_app.make_engine()
    with Session(engine) as session, sqlaopt.detect("record") as report:
        names_by_legacy_get(session, [1, 2, 3])
    [detection] = report.detections
    assert "names_by_legacy_get" in detection.location, detection.location


def test_depth_hints_never_skip_application_frames():
    script = Path(__file__).with_name("depth_hint_skips_frames.py")
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))
