"""What the report tests share: made-up detections, the SARIF schema, a headless browser."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest

import sqlaopt

from ..conftest import IN_CI

SCHEMA = Path(__file__).parent / "data" / "sarif-schema-2.1.0.json"
HOSTILE_SQL = ("SELECT '</pre><script>document.title=\"pwned\"</script>"
               "<img src=x onerror=\"document.title='pwned'\">'")


def detection(target: str = "Appointment.client", count: int = 5,
              location: str = "app/schedule.py:31 in schedule_entry", **fields: Any,
              ) -> sqlaopt.Detection:
    model, _, relationship = target.partition(".")
    values: dict[str, Any] = {
        "kind": "lazy_load", "model": model, "relationship": relationship or None,
        "count": count, "location": location,
        "suggestion": f"joinedload({target})" if relationship else "run it once",
        "statement": f"SELECT * FROM {model.lower()} WHERE id = ?",
    }
    values.update(fields)
    return sqlaopt.Detection(**values)


@cache
def _validator() -> jsonschema.Draft4Validator:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft4Validator.check_schema(schema)
    return jsonschema.Draft4Validator(schema)


def assert_valid_sarif(path: Path) -> dict[str, Any]:
    """The SARIF log at ``path``, after checking it against the official 2.1.0 schema."""
    log: dict[str, Any] = json.loads(path.read_text())
    errors = sorted(_validator().iter_errors(log), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:5])
    return log


def browser() -> str:
    """The headless Chromium to render pages in; skipped (failed with CI=true) without one."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    message = "no chromium on PATH (apt-get install chromium)"
    if IN_CI:
        pytest.fail(f"{message}; CI requires it", pytrace=False)
    pytest.skip(message)


def rendered_dom(page: Path) -> str:
    """The DOM of ``page`` after its scripts ran, as headless Chromium serialises it."""
    done = subprocess.run(
        [browser(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={page.parent / 'chromium-profile'}", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "HOME": str(page.parent)},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout
