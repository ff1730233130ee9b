"""A second model base written the way the real booking backend writes its models.

Old-style ``Column``/``relationship`` without ``Mapped[]``, ``backref`` mixed with
``back_populates``, a base called ``BackendBase``: different classes from
``sqlaopt.booking.models`` that share the class and relationship names presets bind to.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Column, DateTime, ForeignKey, Integer, Numeric, String, Table
from sqlalchemy.orm import DeclarativeBase, Session, backref, relationship


@dataclass(frozen=True)
class BackendModels:
    """The base and its classes. The classes must be kept referenced: a registry holds its
    mappers weakly, so classes declared in a function vanish once nothing refers to them."""

    base: type[DeclarativeBase]
    classes: dict[str, Any]

    def __getitem__(self, name: str) -> Any:
        return self.classes[name]


def declare_backend_models(*, one_to_one_payment: bool = True) -> BackendModels:
    """A fresh base and models. With ``one_to_one_payment=False``, Appointment gets the
    collection ``payments`` instead of ``payment`` (the name the backend's broken bundle used),
    so presets that need ``Appointment.payment`` cannot bind."""

    class BackendBase(DeclarativeBase):
        pass

    barber_services = Table(
        "barber_services",
        BackendBase.metadata,
        Column("barber_id", ForeignKey("users.id"), primary_key=True),
        Column("service_id", ForeignKey("services.id"), primary_key=True),
    )

    class Organization(BackendBase):
        __tablename__ = "organizations"
        id = Column(Integer, primary_key=True)
        name = Column(String(120))
        parent_organization_id = Column(Integer, ForeignKey("organizations.id"))
        parent_organization = relationship(
            "Organization", remote_side=[id], backref="child_organizations"
        )

    class User(BackendBase):
        __tablename__ = "users"
        id = Column(Integer, primary_key=True)
        email = Column(String(200))
        appointments = relationship(
            "Appointment", foreign_keys="Appointment.user_id", back_populates="user"
        )
        payments = relationship("Payment", foreign_keys="Payment.user_id", back_populates="user")
        user_organizations = relationship("UserOrganization", back_populates="user")

    class UserOrganization(BackendBase):
        __tablename__ = "user_organizations"
        id = Column(Integer, primary_key=True)
        user_id = Column(Integer, ForeignKey("users.id"))
        organization_id = Column(Integer, ForeignKey("organizations.id"))
        role = Column(String(30))
        user = relationship("User", back_populates="user_organizations")
        organization = relationship("Organization", backref="user_organizations")

    class Client(BackendBase):
        __tablename__ = "clients"
        id = Column(Integer, primary_key=True)
        name = Column(String(120))
        barber_id = Column(Integer, ForeignKey("users.id"))
        preferred_barber_id = Column(Integer, ForeignKey("users.id"))
        appointments = relationship("Appointment", back_populates="client")
        preferred_barber = relationship("User", foreign_keys=[preferred_barber_id])

    class Service(BackendBase):
        __tablename__ = "services"
        id = Column(Integer, primary_key=True)
        name = Column(String(120))
        barbers = relationship("User", secondary=barber_services, backref="services_offered")

    class Appointment(BackendBase):
        __tablename__ = "appointments"
        id = Column(Integer, primary_key=True)
        user_id = Column(Integer, ForeignKey("users.id"))
        barber_id = Column(Integer, ForeignKey("users.id"))
        client_id = Column(Integer, ForeignKey("clients.id"))
        service_id = Column(Integer, ForeignKey("services.id"))
        start_time = Column(DateTime)
        duration_minutes = Column(Integer)
        user = relationship("User", foreign_keys=[user_id], back_populates="appointments")
        barber = relationship("User", foreign_keys=[barber_id])
        client = relationship("Client", back_populates="appointments")
        service = relationship("Service", backref="appointments")

    class Payment(BackendBase):
        __tablename__ = "payments"
        id = Column(Integer, primary_key=True)
        user_id = Column(Integer, ForeignKey("users.id"))
        appointment_id = Column(Integer, ForeignKey("appointments.id"))
        amount = Column(Numeric(10, 2))
        user = relationship("User", foreign_keys=[user_id], back_populates="payments")
        appointment = relationship(
            "Appointment",
            backref=backref("payment", uselist=False) if one_to_one_payment else "payments",
        )

    classes = (Organization, User, UserOrganization, Client, Service, Appointment, Payment)
    return BackendModels(BackendBase, {cls.__name__: cls for cls in classes})


def add_rows(session: Session, m: BackendModels) -> None:
    """A handful of rows touching every relationship the presets use; commits."""
    orgs = [m["Organization"](id=i, name=f"Org {i}") for i in (1, 2)]
    users = [m["User"](id=i, email=f"u{i}@example.com") for i in (1, 2, 3)]
    session.add_all(orgs + users)
    session.flush()
    session.add_all(
        m["UserOrganization"](id=u.id, user_id=u.id, organization_id=1 + u.id % 2, role="client")
        for u in users
    )
    clients = [m["Client"](id=i, name=f"C{i}", barber_id=1) for i in (1, 2)]
    service = m["Service"](id=1, name="Haircut", barbers=[users[0]])
    session.add_all([*clients, service])
    session.flush()
    start = dt.datetime(2025, 7, 1, 9)
    for i in range(1, 7):
        session.add(m["Appointment"](
            id=i, user_id=2 + i % 2, barber_id=1, client_id=1 + i % 2, service_id=1,
            start_time=start + dt.timedelta(hours=i), duration_minutes=30,
        ))
        if i % 3:
            session.add(m["Payment"](
                id=i, user_id=2 + i % 2, appointment_id=i, amount=Decimal("35.00")
            ))
    session.commit()
