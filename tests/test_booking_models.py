"""The reference schema and its sample data, on SQLite and PostgreSQL."""

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload

from sqlaopt.booking import SampleSize, build_sample
from sqlaopt.booking.models import Appointment, Base, Payment, Service, User


def test_sample_is_deterministic_and_shaped(session: Session) -> None:
    assert session.scalar(select(func.count(Appointment.id))) == SampleSize().appointments
    paid = session.scalar(select(func.count(Payment.id)))
    assert 0 < paid < SampleSize().appointments
    payments = session.scalars(select(Payment).options(
        joinedload(Payment.appointment).joinedload(Appointment.payment)
    )).all()
    assert all(p.appointment.payment is p for p in payments)
    assert session.get(Service, 1).barbers  # the many-to-many is populated


def test_relationship_names_follow_the_real_backend() -> None:
    names = {
        (mapper.class_.__name__, rel.key)
        for mapper in Base.registry.mappers
        for rel in mapper.relationships
    }
    expected = {
        ("User", "appointments"), ("User", "payments"), ("User", "user_organizations"),
        ("User", "ai_insights"), ("User", "services_offered"), ("User", "availability_schedule"),
        ("UserOrganization", "user"), ("UserOrganization", "organization"),
        ("Organization", "user_organizations"), ("Appointment", "user"),
        ("Appointment", "barber"), ("Appointment", "client"), ("Appointment", "service"),
        ("Appointment", "organization"), ("Appointment", "payment"), ("Payment", "user"),
        ("Payment", "barber"), ("Payment", "organization"), ("Payment", "appointment"),
        ("Client", "appointments"), ("Client", "preferred_barber"), ("Service", "barbers"),
        ("BarberAvailability", "barber"),
    }
    assert expected <= names
    assert User.__mapper__.relationships["appointments"].direction.name == "ONETOMANY"


@pytest.mark.nplusone(mode="off")  # runs the same build and query twice on purpose
def test_same_seed_same_rows() -> None:
    from tests.conftest import sqlite_engine

    def snapshot(seed: int) -> list[tuple[object, ...]]:
        engine = sqlite_engine()
        Base.metadata.create_all(engine)
        with Session(engine) as s:
            build_sample(s, seed=seed)
            rows = s.execute(select(Appointment.id, Appointment.status, Appointment.start_time,
                                    Appointment.client_id)).all()
        return [tuple(r) for r in rows]

    assert snapshot(1) == snapshot(1)
    assert snapshot(1) != snapshot(2)
