"""The reference booking backend's naive flows under batching: the report's loops (§1.3) run
one statement per relationship hop and return exactly what the optimized flows return."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

import sqlaopt
from sqlaopt.booking import FLOWS, flow_arguments
from sqlaopt.booking.models import Appointment, User

pytestmark = pytest.mark.nplusone(mode="off")  # the naive flows are N+1s on purpose

# Statements of each naive flow with batching on (2,000 generated appointments):
BATCHED = {
    "analytics_dashboard": 7,  # one per metric: no lazy loads to batch
    "has_conflict": 1,
    "daily_schedule": 3,  # the day's appointments; their clients; their payments
    "revenue_report": 1,
    # get(user); its appointments, payments and memberships, and its one membership's
    # organization (one instance each: nothing to batch); the upcoming appointments' barber,
    # service and payment
    "user_dashboard": 1 + 3 + 1 + 3,
}


def busiest_user(session: Session) -> int | None:
    return session.scalar(
        select(Appointment.user_id).where(Appointment.status.in_(("confirmed", "pending")))
        .group_by(Appointment.user_id).order_by(func.count().desc(), Appointment.user_id)
        .limit(1))


def run(engine: Engine, function: Any, arguments: dict[str, Any], *,
        batch: bool) -> tuple[int, Any]:
    with Session(engine) as session, sqlaopt.batch(enabled=batch), \
            sqlaopt.count_queries() as queries:
        result = function(session, **arguments)
    return queries.count, result


@pytest.mark.parametrize("flow", FLOWS, ids=lambda flow: flow.name)
def test_naive_flows_batched(flows_engine: Engine, flow: Any) -> None:
    with Session(flows_engine) as session:
        arguments = flow_arguments(session)[flow.name]
        if flow.name == "user_dashboard":  # a user with upcoming appointments to walk
            arguments = {"user_id": busiest_user(session), "now": session.scalar(
                select(func.min(Appointment.start_time)))}
    statements, result = run(flows_engine, flow.naive, arguments, batch=True)
    unbatched, _ = run(flows_engine, flow.naive, arguments, batch=False)
    assert result == run(flows_engine, flow.optimized, arguments, batch=False)[1]
    if flow.name == "user_dashboard":  # the hops the count assumes are there
        assert len(result.memberships) == 1 and len(result.upcoming) > 1
    if flow.name == "available_slots":  # a statement per candidate slot: not lazy loads
        assert statements == unbatched
    else:
        assert statements == BATCHED[flow.name]
        assert unbatched > statements or flow.name in ("has_conflict", "revenue_report",
                                                        "analytics_dashboard")


def test_membership_walks(flows_engine: Engine) -> None:
    """``user.get_role_in_organization(...)`` and ``membership.organization`` for every user:
    the model-method N+1 of §1.3 in two statements per hop."""
    with Session(flows_engine) as session, sqlaopt.batch(), \
            sqlaopt.count_queries() as queries:
        users = session.scalars(select(User).order_by(User.id)).all()
        roles = [user.get_role_in_organization(1) for user in users]
        names = [[m.organization.name for m in user.user_organizations] for user in users]
    assert queries.count == 3
    assert len(users) > 10 and any(roles) and all(names)
