"""Shape `sequential-requests-same-lane`: separate requests, no loop anywhere, one detection.

Starlette's TestClient serves a ``def`` endpoint on an anyio worker thread and an
``async def`` endpoint as a task on the portal's event loop. The detector keys a statement by
(kind, target, lane, call site) where the lane is ``threading.get_ident()`` or ``id(task)``
(``sqlaopt.detect._hook._lane``) and the call site is the stack walked from the statement
(``_callsite._walk_user_frames``). On the worker thread that stack never reaches the test
function (the anchor): it is the endpoint's frames plus anyio's worker loop, the same for
every request. The worker thread is reused (same ident), and a finished task's id is reused
by the next task, so two requests from two different lines of a test add up to an N+1.

Issue 9 rules 2 and 7: sequential threads/tasks and separate requests are never an N+1.
Each test fails on sqlaopt 2e01b7d.
"""

from __future__ import annotations

import asyncio

import mini_app
import pytest

import sqlaopt

fastapi = pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402


@pytest.fixture(scope="module")
def client():
    with TestClient(mini_app.fastapi_app(mini_app.make_engine())) as client:
        yield client


@pytest.mark.nplusone(mode="record")
def test_two_requests_to_a_sync_endpoint(client, nplusone):
    assert client.get("/sync/1").json() == {"name": "parent 1"}
    assert client.get("/sync/2").json() == {"name": "parent 2"}   # another line, no loop
    assert nplusone.detections == [], str(nplusone)


async def _handle(engine, parent_id):
    """An async request handler: one SELECT."""
    with mini_app.Session(engine) as session:
        return mini_app.parent_name(session, parent_id)


async def _serve_three_requests(engine):
    await asyncio.create_task(_handle(engine, 1))    # each request its own task, awaited
    await asyncio.create_task(_handle(engine, 2))    # before the next starts: nothing
    await asyncio.create_task(_handle(engine, 3))    # runs twice in any one task


def test_sequential_tasks_whose_ids_are_reused():
    """A finished, unreferenced Task is freed and the next one often gets its id: then two
    requests share a lane. Allocator-dependent, so tried 100 times."""
    engine = mini_app.make_engine()
    counts = []
    for _ in range(100):
        with sqlaopt.detect("record") as report:
            asyncio.run(_serve_three_requests(engine))
        counts.append([d.count for d in report.detections])
    assert all(c == [] for c in counts), counts
