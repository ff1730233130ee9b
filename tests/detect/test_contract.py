"""The detection rule, case by case: what must be flagged and what must never be.

Runs on SQLite and PostgreSQL (the ``session`` fixture). Detections are collected in
``record`` mode inside an explicit scope, which also keeps the pytest plugin out of it.
"""

from __future__ import annotations

import pytest
from sqlalchemy import Column, ForeignKey, Table, create_engine, func, select, text
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    defer,
    immediateload,
    joinedload,
    mapped_column,
    relationship,
    selectinload,
    subqueryload,
)

import sqlaopt
from sqlaopt.booking.models import Appointment, Client, Service, User

from .conftest import kinds


def appointments(session: Session, n: int = 6) -> list[Appointment]:
    return list(session.scalars(select(Appointment).order_by(Appointment.id).limit(n)))


# ---------------------------------------------------------------- must be flagged


def test_many_to_one_in_a_loop(session: Session) -> None:
    rows = appointments(session)
    with sqlaopt.detect("record") as report:
        for a in rows:
            a.service  # noqa: B018
    [d] = report.detections
    assert (d.kind, d.model, d.relationship) == ("lazy_load", "Appointment", "service")
    # Services 1-3 are shared: only the loads that hit the database count.
    assert d.count == len({a.service_id for a in rows})
    assert d.suggestion == (
        "joinedload(Appointment.service) or use sqlaopt.presets.APPOINTMENT_DETAILS"  # smallest
    )
    assert d.location.startswith("tests/detect/test_contract.py:")
    assert d.location.endswith("in test_many_to_one_in_a_loop")
    assert "FROM services" in d.statement


def test_one_to_many_in_a_loop(session: Session) -> None:
    users = session.scalars(select(User).order_by(User.id).limit(5)).all()
    with sqlaopt.detect("record") as report:
        for u in users:
            u.appointments  # noqa: B018
    assert kinds(report) == [("lazy_load", "User.appointments", 5)]
    assert report.detections[0].suggestion.startswith("selectinload(User.appointments)")


def test_many_to_many_in_a_loop(session: Session) -> None:
    services = session.scalars(select(Service)).all()
    with sqlaopt.detect("record") as report:
        for s in services:
            s.barbers  # noqa: B018
    assert kinds(report) == [("lazy_load", "Service.barbers", len(services))]
    assert report.detections[0].suggestion == "selectinload(Service.barbers)"


def test_both_levels_of_a_nested_loop(session: Session) -> None:
    users = session.scalars(select(User).where(User.unified_role == "client")).all()
    with sqlaopt.detect("record") as report:
        for u in users:
            for a in u.appointments:
                a.client  # noqa: B018
    found = {d.target: d for d in report.detections}
    assert set(found) == {"User.appointments", "Appointment.client"}
    assert found["User.appointments"].count == len(users)
    assert found["Appointment.client"].suggestion == (
        "selectinload(User.appointments).joinedload(Appointment.client)"
        " or use sqlaopt.presets.USER_APPOINTMENTS_WITH_CLIENTS"
    )


def test_model_method_walking_a_relationship(session: Session) -> None:
    users = session.scalars(select(User)).all()
    with sqlaopt.detect("record") as report:
        roles = [u.get_role_in_organization(1) for u in users]
    assert any(roles)
    [d] = report.detections
    assert d.target == "User.user_organizations"
    # The innermost application frame is the model method, called from the comprehension.
    assert "in get_role_in_organization" in d.location


def test_repeated_get_and_repeated_select(session: Session) -> None:
    session.expunge_all()
    with sqlaopt.detect("record") as report:
        for i in range(1, 5):
            session.get(Client, i)
        for i in range(1, 4):
            session.execute(select(Appointment.price).where(Appointment.id == i)).one()
    found = {(d.kind, d.model): d for d in report.detections}
    assert set(found) == {("repeated_statement", "Client"), ("repeated_statement", "Appointment")}
    assert found["repeated_statement", "Client"].count == 4
    assert found["repeated_statement", "Appointment"].count == 3
    assert ".id.in_(values)" in found["repeated_statement", "Client"].suggestion
    assert found["repeated_statement", "Client"].relationship is None


def test_column_load_after_commit(session: Session) -> None:
    rows = appointments(session, 4)
    session.commit()  # expire_on_commit: every attribute is now unloaded
    with sqlaopt.detect("record") as report:
        for a in rows:
            a.status  # noqa: B018
    [d] = report.detections
    assert (d.kind, d.model, d.relationship, d.count) == ("column_load", "Appointment", "status", 4)
    assert "expire_on_commit=False" in d.suggestion


def test_rows_created_then_expired_are_not_blamed_on_a_defer() -> None:
    """Objects the application created, expired by a commit, read in a loop that adds rows
    pointing at them (each add autoflushes): no query deferred anything (ihatemoney's demo)."""

    class Base(DeclarativeBase):
        pass

    owing_table = Table("owers", Base.metadata,
                        Column("bill_id", ForeignKey("bill.id"), primary_key=True),
                        Column("person_id", ForeignKey("person.id"), primary_key=True))

    class Person(Base):
        __tablename__ = "person"
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str]

    class Bill(Base):
        __tablename__ = "bill"
        id: Mapped[int] = mapped_column(primary_key=True)
        payer_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
        owers: Mapped[list[Person]] = relationship(secondary=owing_table)

    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        members = {name: Person(name=name) for name in "abc"}
        session.add_all(members.values())
        session.commit()
        with sqlaopt.detect("record") as report:
            for payer, owing in (("b", "abc"), ("c", "ac"), ("a", "abc")):
                session.add(Bill(owers=[members[n] for n in owing], payer_id=members[payer].id))
            session.commit()
    [d] = report.detections
    assert (d.kind, d.target) == ("column_load", "Person.id")
    assert "defer" not in d.suggestion and "expire_on_commit=False" in d.suggestion


def test_deferred_column_in_a_loop(session: Session) -> None:
    rows = session.scalars(select(Appointment).options(defer(Appointment.service_name))).all()
    with sqlaopt.detect("record") as report:
        for a in rows[:3]:
            a.service_name  # noqa: B018
    [d] = report.detections
    assert (d.kind, d.relationship, d.count) == ("column_load", "service_name", 3)
    assert d.suggestion == (  # the query's own defer(): undefer() would conflict with it
        "remove defer(Appointment.service_name) from the query that loaded the rows")


def test_statement_explained_by_a_lazy_load_is_not_reported_twice(session: Session) -> None:
    rows = appointments(session)
    with sqlaopt.detect("record") as report:
        for a in rows:
            a.payment  # noqa: B018
    assert [d.kind for d in report.detections] == ["lazy_load"]


def test_raise_mode_points_at_the_loop(session: Session) -> None:
    rows = appointments(session)
    with pytest.raises(sqlaopt.NPlusOneError) as caught, sqlaopt.detect():
        for a in rows:
            a.client  # noqa: B018
    [d] = caught.value.detections
    assert d.count == 2  # raised at the access that reached the threshold
    frames = [(f.name, f.lineno) for f in caught.traceback]
    assert any(name == "test_raise_mode_points_at_the_loop" for name, _ in frames)


def test_threshold(session: Session) -> None:
    rows = appointments(session, 3)
    with sqlaopt.detect("record", threshold=4) as report:
        for a in rows:
            a.client  # noqa: B018
    assert report.detections == []
    with sqlaopt.detect("record", threshold=1) as report:
        rows[0].service  # noqa: B018
    assert kinds(report) == [("lazy_load", "Appointment.service", 1)]


# ---------------------------------------------------------------- must never be flagged


def test_one_lazy_load_after_all(session: Session) -> None:
    rows = appointments(session)
    with sqlaopt.detect("record") as report:
        rows[0].client  # noqa: B018
    assert report.detections == []
    assert report.statements == 1


@pytest.mark.parametrize("option", [joinedload, selectinload, subqueryload, immediateload])
def test_eager_loaded_relationships(session: Session, option: object) -> None:
    with sqlaopt.detect("record") as report:
        rows = session.scalars(
            select(User).options(option(User.appointments))  # type: ignore[operator]
        ).unique().all()
        for u in rows:
            u.appointments  # noqa: B018
    assert report.detections == []


def test_many_to_one_already_in_the_identity_map(session: Session) -> None:
    services = session.scalars(select(Service)).all()  # held: the identity map is weak
    rows = appointments(session)
    with sqlaopt.detect("record") as report:
        for a in rows:
            a.service  # noqa: B018
    assert report.detections == [] and report.statements == 0
    assert {a.service for a in rows} <= set(services)


def test_first_and_one_then_one_lazy_load(session: Session) -> None:
    with sqlaopt.detect("record") as report:
        first = session.scalars(select(Appointment).order_by(Appointment.id)).first()
        assert first is not None
        first.client  # noqa: B018
        one = session.scalars(select(User).where(User.id == 2)).one()
        one.appointments  # noqa: B018
    assert report.detections == []


def test_two_relationships_each_loaded_once(session: Session) -> None:
    a = appointments(session, 1)[0]
    with sqlaopt.detect("record") as report:
        a.client  # noqa: B018
        a.service  # noqa: B018
    assert report.detections == []


def test_core_and_column_queries_do_not_disturb(session: Session) -> None:
    rows = appointments(session, 4)
    with sqlaopt.detect("record") as report:
        session.execute(text("SELECT 1")).all()
        session.execute(select(func.count(Appointment.id))).scalar()
        for a in rows:
            session.connection().execute(text("SELECT 2")).all()
            a.client  # noqa: B018
    # The Core statement inside the loop runs from the same line each time: that is a
    # repeated statement of its own, and the lazy load count is untouched by it.
    found = {d.kind: d for d in report.detections}
    assert found["lazy_load"].count == 4
    assert found["repeated_statement"].count == 4
    assert report.statements == 2 + 4 + 4


def test_flush_and_single_refresh(session: Session) -> None:
    with sqlaopt.detect("record") as report:
        for i in range(5):
            session.add(Client(name=f"walk-in {i}"))
        session.flush()
        a = appointments(session, 1)[0]
        session.refresh(a)
        session.expire(a)
        a.status  # noqa: B018
    assert report.detections == []


@pytest.mark.parametrize("pattern", ["Appointment.client", "Appointment.*", "*.client", "*.cli?nt"])
def test_allow_patterns(session: Session, pattern: str) -> None:
    rows = appointments(session)
    with sqlaopt.detect("record", allow=[pattern]) as report:
        for a in rows:
            a.client  # noqa: B018
    assert report.detections == []


def test_allow_context_manager(session: Session) -> None:
    rows = appointments(session)
    with sqlaopt.detect("record") as report, sqlaopt.allow("Appointment.client"):
        for a in rows:
            a.client  # noqa: B018
            a.service  # noqa: B018
    assert [d.target for d in report.detections] == ["Appointment.service"]


# ---------------------------------------------------------------- scopes


def test_nested_scope_owns_its_detections(session: Session) -> None:
    rows = appointments(session)
    with sqlaopt.detect("record") as outer:
        with sqlaopt.detect("record") as inner:
            for a in rows:
                a.client  # noqa: B018
        for a in rows:
            a.service  # noqa: B018
    assert [d.target for d in inner.detections] == ["Appointment.client"]
    assert [d.target for d in outer.detections] == ["Appointment.service"]
    assert outer.statements == inner.statements + 3


def test_decorator_sync(session: Session) -> None:
    @sqlaopt.detect()
    def touch(rows: list[Appointment]) -> None:
        for a in rows:
            a.client  # noqa: B018

    with pytest.raises(sqlaopt.NPlusOneError):
        touch(appointments(session))
    assert touch.__name__ == "touch"


def test_same_loop_in_separate_scopes_counts_separately(session: Session) -> None:
    a1, a2 = appointments(session, 2)
    for a in (a1, a2):
        with sqlaopt.detect("record") as report:
            a.client  # noqa: B018
        assert report.detections == []


def test_repeated_writes_and_ddl_are_not_n_plus_ones(session: Session) -> None:
    with sqlaopt.detect("record") as report:
        for i in range(3):
            session.execute(text("CREATE TEMPORARY TABLE IF NOT EXISTS scratch (x INTEGER)"))
            session.execute(text("INSERT INTO scratch (x) VALUES (:x)"), {"x": i})
            session.execute(text("SELECT x FROM scratch WHERE x = :x"), {"x": i}).all()
    assert [(d.kind, d.count) for d in report.detections] == [("repeated_statement", 3)]
    assert report.detections[0].statement.startswith("SELECT x FROM scratch")
