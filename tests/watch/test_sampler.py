"""PlanSampler: a plan without running the statement, on its own connection, rate-limited,
bounded, never raising."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from sqlalchemy import Engine, create_engine, event, text

from sqlaopt.watch import PlanSampler, WatchError


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def table(pg_engine: Engine) -> Iterator[Engine]:
    with pg_engine.begin() as conn:
        conn.execute(text("CREATE TABLE watch_sampled (id int PRIMARY KEY, n int)"))
        conn.execute(text("INSERT INTO watch_sampled SELECT g, g FROM generate_series(1, 50) g"))
    yield pg_engine
    with pg_engine.begin() as conn:
        conn.execute(text("DROP TABLE watch_sampled"))


def test_explains_without_running_on_its_own_connection(table: Engine) -> None:
    seen: list[str] = []

    def record(*args: object) -> None:
        seen.append(str(args[2]))

    event.listen(table, "before_cursor_execute", record)
    try:
        with PlanSampler(table) as sampler, table.connect() as conn:
            conn.execute(text("SELECT 1"))
            mine = conn.execute(text("SELECT pg_backend_pid()")).scalar()
            plan = sampler.plan("DELETE FROM watch_sampled WHERE n > %(n)s", {"n": 10})
            assert plan is not None and plan.startswith("Delete on watch_sampled")
            assert "Filter: (n > '10'::smallint)" in plan  # the value as psycopg sent it
            own = sampler._connection  # white box: the sampler's session is not ours
            assert own is not None
            cursor = own.cursor()
            cursor.execute("SELECT pg_backend_pid()")
            assert cursor.fetchone()[0] != mine
            cursor.close()
            assert conn.execute(text("SELECT count(*) FROM watch_sampled")).scalar() == 50
    finally:
        event.remove(table, "before_cursor_execute", record)
    # the sampler's EXPLAIN went through the DBAPI cursor: no SQLAlchemy event saw it
    assert not any(s.startswith("EXPLAIN") for s in seen)


def test_rate_limits(table: Engine) -> None:
    clock = Clock()
    with PlanSampler(table, per_minute=2, interval=300, clock=clock) as sampler:
        first = "SELECT * FROM watch_sampled WHERE id = %(id)s"
        assert sampler.plan(first, {"id": 1}) is not None
        assert sampler.plan(first, {"id": 2}) is None  # the same shape within the interval
        assert sampler.plan("SELECT n FROM watch_sampled") is not None
        assert sampler.plan("SELECT id FROM watch_sampled") is None  # 2 a minute
        clock.now = 61
        assert sampler.plan("SELECT id FROM watch_sampled") is not None
        assert sampler.plan(first, {"id": 3}) is None  # 61 s < 300 s
        clock.now = 400
        assert sampler.plan(first, {"id": 3}) is not None


def test_bounded_and_never_raising(table: Engine) -> None:
    clock = Clock()
    with PlanSampler(table, per_minute=1000, max_shapes=3, clock=clock) as sampler:
        for n in range(10):
            assert sampler.plan(f"SELECT id AS c{n} FROM watch_sampled") is not None
        assert len(sampler._shapes) == 3
        assert sampler.plan("SELECT broken FROM nowhere") is None
        assert sampler.plan("SELECT n FROM watch_sampled") is not None  # recovered
        assert sampler.plan("SET work_mem = '64MB'") is None  # not a query
        assert sampler.plan("SELECT pg_sleep(0.01) FROM watch_sampled") is not None


def test_busy_means_skip(table: Engine) -> None:
    with PlanSampler(table) as sampler:
        sampler._lock.acquire()
        try:
            result: list[object] = []
            worker = threading.Thread(target=lambda: result.append(
                sampler.plan("SELECT n FROM watch_sampled")))
            worker.start()
            worker.join(5)
            assert result == [None]  # never waits for another thread
        finally:
            sampler._lock.release()


def test_other_databases_and_bad_input(pg_engine: Engine) -> None:
    with PlanSampler(create_engine("sqlite://")) as sampler:
        assert sampler.plan("SELECT 1") is None
    with pytest.raises(WatchError, match="per_minute must be a positive int"):
        PlanSampler(pg_engine, per_minute=0)
    with pytest.raises(WatchError, match="takes an Engine"):
        PlanSampler("postgresql://")  # type: ignore[arg-type]


def test_rate_limits_hold_over_any_sequence_of_calls(pg_engine: Engine) -> None:
    """A state machine: whatever the calls and the clock do, no more than ``per_minute``
    plans in any minute, no shape twice within ``interval``, and a call that breaks neither
    rule gets its plan."""
    per_minute, interval = 3, 90.0

    class Sampling(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.clock = Clock()
            self.sampler = PlanSampler(pg_engine, per_minute=per_minute, interval=interval,
                                       clock=self.clock)
            self.planned: list[tuple[float, int]] = []  # (time, shape) of each plan given

        @rule(seconds=st.sampled_from([0.0, 1.0, 20.0, 45.0, 61.0, 100.0]))
        def wait(self, seconds: float) -> None:
            self.clock.now += seconds

        @rule(shape=st.integers(0, 4))
        def plan(self, shape: int) -> None:
            now = self.clock.now
            in_minute = sum(1 for t, _ in self.planned if now - t < 60)
            last = max((t for t, s in self.planned if s == shape), default=None)
            allowed = in_minute < per_minute and (last is None or now - last >= interval)
            result = self.sampler.plan(f"SELECT {shape} AS shape_{shape} FROM pg_class")
            assert (result is not None) == allowed
            if result is not None:
                assert "on pg_class" in result  # the plan of that statement
                self.planned.append((now, shape))

        @invariant()
        def bounded(self) -> None:
            assert len(self.sampler._recent) <= per_minute
            assert len(self.sampler._shapes) <= 5

        def teardown(self) -> None:
            self.sampler.close()

    run_state_machine_as_test(Sampling, settings=settings(
        max_examples=15, stateful_step_count=25, deadline=None))
