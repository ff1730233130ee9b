"""Fixes that work when pasted: every loader-option suggestion the detector makes, applied to
the loop's own query, leaves the loop with no lazy SQL at all (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, Select, event, select
from sqlalchemy.orm import ORMExecuteState, Session, joinedload, selectinload, undefer

import sqlaopt
from sqlaopt.booking.models import Appointment, Organization, Service, User, UserOrganization

from .shapes import Category, Manager, Person, Team

NAMESPACE: dict[str, Any] = {
    "joinedload": joinedload, "selectinload": selectinload, "undefer": undefer,
    "Appointment": Appointment, "Organization": Organization, "Service": Service,
    "User": User, "UserOrganization": UserOrganization, "Category": Category, "Team": Team,
    "Person": Person, "Manager": Manager,
}
Loop = Callable[[Session, Select[Any]], object]


def _id(instance: Any) -> object:
    return instance.id if instance is not None else None


def appointment_clients(s: Session, query: Select[Any]) -> object:
    return [_id(a.client) for a in s.scalars(query)]


def user_appointments(s: Session, query: Select[Any]) -> object:
    return [len(u.appointments) for u in s.scalars(query)]


def service_barbers(s: Session, query: Select[Any]) -> object:
    return [len(x.barbers) for x in s.scalars(query)]


def users_then_clients(s: Session, query: Select[Any]) -> object:
    return [_id(a.client) for u in s.scalars(query) for a in u.appointments]


def organisation_walk(s: Session, query: Select[Any]) -> object:
    return [_id(a.client) for org in s.scalars(query) for membership in org.user_organizations
            for a in membership.user.appointments]


def subclass_hop(s: Session, query: Select[Any]) -> object:
    return [len(m.reports) for team in s.scalars(query) for m in team.members
            if isinstance(m, Manager)]


def deferred_column(s: Session, query: Select[Any]) -> object:
    return [c.notes for c in s.scalars(query)]


def _walk(node: Category) -> int:
    return 1 + sum(_walk(child) for child in node.children)


def tree_walk(s: Session, query: Select[Any]) -> object:
    return [_walk(root) for root in s.scalars(query)]


BOOKING: dict[str, tuple[Loop, Select[Any]]] = {
    "many-to-one": (appointment_clients, select(Appointment).limit(8)),
    "one-to-many": (user_appointments, select(User)),
    "many-to-many": (service_barbers, select(Service)),
    "nested": (users_then_clients, select(User).where(User.unified_role == "client")),
    "through a many-to-one": (organisation_walk, select(Organization)),
}
SHAPES: dict[str, tuple[Loop, Select[Any]]] = {
    "subclass": (subclass_hop, select(Team)),
    "recursion": (tree_walk, select(Category).where(Category.parent_id.is_(None))),
    "deferred column": (deferred_column, select(Category)),
}


@pytest.fixture
def lazy_sql(booking_engine: Engine) -> Iterator[list[str]]:
    """The lazy and column loads that run (an oracle through the public do_orm_execute)."""
    loads: list[str] = []

    def count(state: ORMExecuteState) -> None:
        lazy = state.is_relationship_load and state.lazy_loaded_from is not None \
            and "sa_top_level_orm_context" not in state.execution_options
        if lazy or state.is_column_load:
            loads.append(str(state.statement))

    event.listen(Session, "do_orm_execute", count)
    yield loads
    event.remove(Session, "do_orm_execute", count)


def _fixes(report: sqlaopt.Report) -> list[Any]:
    options = []
    for detection in report.detections:
        code = detection.suggestion.split(" or use ", 1)[0]
        options.append(eval(code, dict(NAMESPACE)))  # paste-ready: valid Python as it stands
    return options


def _check(engine: Engine, loop: Loop, query: Select[Any], lazy_sql: list[str]) -> None:
    with Session(engine) as s, sqlaopt.detect("record") as report:
        expected = loop(s, query)
    assert report.detections, "the case must produce a suggestion"
    fixes = _fixes(report)
    lazy_sql.clear()
    with Session(engine) as s, sqlaopt.detect("record") as after:
        assert loop(s, query.options(*fixes)) == expected
    assert lazy_sql == [] and after.detections == [], [d.suggestion for d in report.detections]


@pytest.mark.parametrize("case", sorted(BOOKING))
def test_booking_suggestions_remove_every_lazy_load(
    booking_engine: Engine, lazy_sql: list[str], case: str
) -> None:
    _check(booking_engine, *BOOKING[case], lazy_sql)


@pytest.mark.parametrize("case", sorted(SHAPES))
def test_shape_suggestions_remove_every_lazy_load(
    shapes_engine: Engine, lazy_sql: list[str], case: str
) -> None:
    _check(shapes_engine, *SHAPES[case], lazy_sql)


def test_the_chain_starts_at_the_loops_own_query(booking_engine: Engine) -> None:
    with Session(booking_engine) as s, sqlaopt.detect("record") as report:
        organisation_walk(s, select(Organization))
    fixes = {d.target: d.suggestion for d in report.detections}
    assert fixes["Appointment.client"].startswith(
        "selectinload(Organization.user_organizations).joinedload(UserOrganization.user)"
        ".selectinload(User.appointments).joinedload(Appointment.client)"
    )
