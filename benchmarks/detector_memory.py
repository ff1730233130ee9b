"""Memory over a long life: the detector's structures are bounded.

1. One long-lived Session under ``sqlaopt.install("log")`` runs 1,000,000 statements, each a
   new SQL string, each twice from one line (so every one is a loop and its detection is
   made): traced memory (tracemalloc) and RSS every 100,000 statements, with and without
   sqlaopt. SQLAlchemy's own statement cache is turned off (``query_cache_size=0``), so the
   memory measured is sqlaopt's.
2. 100,000 requests through the ASGI middleware in log mode, every 100th with an N+1.

    uv run python benchmarks/detector_memory.py --statements 1000000 --requests 100000
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import resource
import time
import tracemalloc
from typing import Any

from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

import sqlaopt
from sqlaopt.asgi import NPlusOneMiddleware
from sqlaopt.booking import build_sample
from sqlaopt.booking.models import Appointment, Base


def rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def long_lived_session(statements: int, every: int, detector: bool,
                       ) -> list[tuple[int, float, float]]:
    engine = create_engine("sqlite://", query_cache_size=0)
    if detector:
        sqlaopt.install("log")
    rows: list[tuple[int, float, float]] = []
    try:
        with Session(engine) as s:
            tracemalloc.start()
            for i in range(statements // 2):
                statement = text(f"SELECT {i} AS v{i}")
                for _ in range(2):
                    s.execute(statement).all()
                if (2 * (i + 1)) % every == 0:
                    gc.collect()
                    rows.append((2 * (i + 1), tracemalloc.get_traced_memory()[0] / 2**20,
                                 rss_mib()))
            tracemalloc.stop()
    finally:
        sqlaopt.uninstall()
        engine.dispose()
    return rows


def requests(n: int, every: int) -> list[tuple[int, float]]:
    engine = create_engine("sqlite://", poolclass=StaticPool)
    Base.metadata.create_all(engine)
    with Session(engine) as s:
        build_sample(s)
    counter = {"n": 0}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        counter["n"] += 1
        if counter["n"] % 100 == 0:  # one request in a hundred has an N+1
            with Session(engine) as s:
                for a in s.scalars(select(Appointment).limit(3)).all():
                    a.client  # noqa: B018

    middleware = NPlusOneMiddleware(app, mode="log")
    http = {"type": "http", "method": "GET", "path": "/"}
    rows: list[tuple[int, float]] = []

    async def run() -> None:
        tracemalloc.start()
        for i in range(1, n + 1):
            await middleware(http, None, None)  # type: ignore[arg-type]
            if i % every == 0:
                gc.collect()
                rows.append((i, tracemalloc.get_traced_memory()[0] / 2**20))
        tracemalloc.stop()

    asyncio.run(run())
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--statements", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=100_000)
    args = parser.parse_args()
    logging.getLogger("sqlaopt").addHandler(logging.NullHandler())
    logging.getLogger("sqlaopt").propagate = False
    every = max(args.statements // 10, 2)
    started = time.perf_counter()
    with_detector = long_lived_session(args.statements, every, detector=True)
    without = long_lived_session(args.statements, every, detector=False)
    print(f"## One Session, {args.statements:,} statements of new SQL "
          f"({time.perf_counter() - started:.0f} s)\n")
    print("| statements | traced MiB, sqlaopt | traced MiB, none | RSS MiB, sqlaopt | "
          "RSS MiB, none |")
    print("|---|---|---|---|---|")
    for (n, traced, rss), (_, traced0, rss0) in zip(with_detector, without, strict=True):
        print(f"| {n:,} | {traced:.2f} | {traced0:.2f} | {rss:.1f} | {rss0:.1f} |")
    rows = requests(args.requests, max(args.requests // 10, 1))
    print(f"\n## {args.requests:,} requests through the ASGI middleware (log mode)\n")
    print("| requests | traced MiB |")
    print("|---|---|")
    for n, traced in rows:
        print(f"| {n:,} | {traced:.3f} |")


if __name__ == "__main__":
    main()
