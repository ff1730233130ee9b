"""Property: random loop programs are flagged exactly when a relationship is lazily loaded
``threshold`` or more times from one call stack.

The oracle counts lazy loads independently, through SQLAlchemy's public ``do_orm_execute``
event (the detector reads the cursor-level context instead), keyed by the site function the
program ran the load from.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, event, select
from sqlalchemy.orm import ORMExecuteState, Session, selectinload

import sqlaopt
from sqlaopt.booking.models import Appointment, Client, Service, User

RELATIONSHIPS: dict[str, tuple[type[Any], str]] = {
    "Appointment.client": (Appointment, "client"),
    "Appointment.service": (Appointment, "service"),
    "Appointment.payment": (Appointment, "payment"),
    "User.appointments": (User, "appointments"),
    "User.user_organizations": (User, "user_organizations"),
    "Client.appointments": (Client, "appointments"),
    "Service.barbers": (Service, "barbers"),
}
current_site: list[str] = []


def _touch(rows: list[Any], attribute: str) -> None:
    for row in rows:
        getattr(row, attribute)


# Three sites with the same body: the same relationship touched from two different sites is
# two different places in the code.
def site_a(rows: list[Any], attribute: str) -> None:
    _touch(rows, attribute)


def site_b(rows: list[Any], attribute: str) -> None:
    _touch(rows, attribute)


def site_c(rows: list[Any], attribute: str) -> None:
    _touch(rows, attribute)


SITES: dict[str, Callable[[list[Any], str], None]] = {
    "site_a": site_a, "site_b": site_b, "site_c": site_c,
}

loop = st.tuples(
    st.sampled_from(sorted(RELATIONSHIPS)),
    st.sampled_from(sorted(SITES)),
    st.lists(st.integers(1, 12), max_size=5, unique=True),
    st.booleans(),  # eager-load the relationship in the query
)


@pytest.fixture
def oracle(booking_engine: Engine) -> Iterator[Counter[tuple[str, str]]]:
    counts: Counter[tuple[str, str]] = Counter()

    def count_lazy_loads(state: ORMExecuteState) -> None:
        if state.is_relationship_load and state.lazy_loaded_from is not None \
                and "sa_top_level_orm_context" not in state.execution_options:
            prop = state.loader_strategy_path[-1]  # type: ignore[index]
            counts[f"{prop.parent.class_.__name__}.{prop.key}", current_site[-1]] += 1

    event.listen(Session, "do_orm_execute", count_lazy_loads)
    yield counts
    event.remove(Session, "do_orm_execute", count_lazy_loads)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(program=st.lists(loop, min_size=1, max_size=6), threshold=st.integers(1, 3))
def test_flagged_exactly_when_a_relationship_repeats_from_one_stack(
    booking_engine: Engine, oracle: Counter[tuple[str, str]],
    program: list[tuple[str, str, list[int], bool]], threshold: int,
) -> None:
    oracle.clear()
    with Session(booking_engine) as session, \
            sqlaopt.detect("record", threshold=threshold) as report:
        for name, site, ids, eager in program:
            model, attribute = RELATIONSHIPS[name]
            query = select(model).where(model.id.in_(ids))
            if eager:
                query = query.options(selectinload(getattr(model, attribute)))
            rows = list(session.scalars(query))
            current_site.append(site)
            SITES[site](rows, attribute)
            current_site.pop()
    expected = {(target, site): n for (target, site), n in oracle.items() if n >= threshold}
    lazy = [d for d in report.detections if d.kind == "lazy_load"]
    assert len(lazy) == len(expected)
    assert sorted((d.target, d.count) for d in lazy) == sorted(
        (target, n) for (target, _), n in expected.items()
    )
    assert all("in _touch" in d.location for d in lazy)
