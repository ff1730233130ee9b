"""The reference booking schema: the tables and relationships of the barber-booking backend.

Names follow the real backend (``User.appointments``, ``Appointment.payment`` one-to-one,
``Service.barbers`` many-to-many, the ``services_offered`` and ``availability_schedule``
back-references), columns follow the performance report. Every relationship is lazy, as in the
real backend, so the N+1 patterns the report describes can be reproduced exactly.

Appointment times are ``timestamp without time zone`` (the report indexes
``tsrange(start_time, end_time)``, which needs plain timestamps); ``created_at`` columns are
``timestamptz``, which is why the report's ``DATE(created_at)`` index fails as written.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    Numeric,
    String,
    Table,
    Text,
    Time,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncAttrs
else:
    try:
        from sqlalchemy.ext.asyncio import AsyncAttrs
    except ImportError:  # SQLAlchemy 2.1 without greenlet: its asyncio package refuses to load

        class AsyncAttrs:
            """Stands in for SQLAlchemy's mixin when asyncio is unavailable; without greenlet
            no AsyncSession can exist, so nothing could await these attributes anyway."""

            @property
            def awaitable_attrs(self) -> Any:
                raise ImportError(
                    "awaitable_attrs needs SQLAlchemy's asyncio support: pip install "
                    "'sqlalchemy[asyncio]' (greenlet)"
                )

__all__ = [
    "AIInsightCache",
    "Appointment",
    "BarberAvailability",
    "Base",
    "Client",
    "Organization",
    "Payment",
    "Service",
    "User",
    "UserOrganization",
    "barber_services",
]

Money = Numeric(10, 2)
TimestampTZ = DateTime(timezone=True)


class Base(AsyncAttrs, DeclarativeBase):
    """Declarative base of the reference schema (with ``awaitable_attrs`` for asyncio)."""


barber_services = Table(
    "barber_services",
    Base.metadata,
    Column("barber_id", ForeignKey("users.id"), primary_key=True),
    Column("service_id", ForeignKey("services.id"), primary_key=True),
    Column("custom_price", Money, nullable=True),
)


class Organization(Base):
    __tablename__ = "organizations"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[dt.datetime] = mapped_column(TimestampTZ, server_default=func.now())

    user_organizations: Mapped[list[UserOrganization]] = relationship(
        back_populates="organization"
    )

    def __repr__(self) -> str:
        return f"<Organization {self.id}>"


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(200), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    unified_role: Mapped[str] = mapped_column(String(30))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    lifetime_value: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"))
    created_at: Mapped[dt.datetime] = mapped_column(TimestampTZ, server_default=func.now())

    appointments: Mapped[list[Appointment]] = relationship(
        foreign_keys="Appointment.user_id", back_populates="user"
    )
    payments: Mapped[list[Payment]] = relationship(
        foreign_keys="Payment.user_id", back_populates="user"
    )
    user_organizations: Mapped[list[UserOrganization]] = relationship(back_populates="user")
    ai_insights: Mapped[list[AIInsightCache]] = relationship(back_populates="user")
    services_offered: Mapped[list[Service]] = relationship(
        secondary=barber_services, back_populates="barbers"
    )
    availability_schedule: Mapped[list[BarberAvailability]] = relationship(
        back_populates="barber"
    )

    def get_role_in_organization(self, organization_id: int) -> str | None:
        """The user's role in one organization (walks ``self.user_organizations``, as the
        real backend does: called for each user of a list, it is an N+1)."""
        for membership in self.user_organizations:
            if membership.organization_id == organization_id:
                return membership.role
        return None

    def __repr__(self) -> str:
        return f"<User {self.id}>"


class UserOrganization(Base):
    __tablename__ = "user_organizations"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    role: Mapped[str] = mapped_column(String(30))
    is_primary: Mapped[bool] = mapped_column(Boolean, default=False)

    user: Mapped[User] = relationship(back_populates="user_organizations")
    organization: Mapped[Organization] = relationship(back_populates="user_organizations")

    def __repr__(self) -> str:
        return f"<UserOrganization {self.id}>"


class Client(Base):
    __tablename__ = "clients"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    preferred_barber_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    name: Mapped[str] = mapped_column(String(120))
    phone: Mapped[str | None] = mapped_column(String(40))
    last_visit: Mapped[dt.datetime | None] = mapped_column(TimestampTZ)
    created_at: Mapped[dt.datetime] = mapped_column(TimestampTZ, server_default=func.now())
    total_spent: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))

    appointments: Mapped[list[Appointment]] = relationship(back_populates="client")
    preferred_barber: Mapped[User | None] = relationship(foreign_keys=[preferred_barber_id])

    def __repr__(self) -> str:
        return f"<Client {self.id}>"


class Service(Base):
    __tablename__ = "services"

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"))
    name: Mapped[str] = mapped_column(String(120))
    base_price: Mapped[Decimal] = mapped_column(Money)
    duration_minutes: Mapped[int] = mapped_column(Integer, default=30)

    barbers: Mapped[list[User]] = relationship(
        secondary=barber_services, back_populates="services_offered"
    )

    def __repr__(self) -> str:
        return f"<Service {self.id}>"


class Appointment(Base):
    __tablename__ = "appointments"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    barber_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id"))
    service_id: Mapped[int | None] = mapped_column(ForeignKey("services.id"))
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"))
    service_name: Mapped[str] = mapped_column(String(120))
    start_time: Mapped[dt.datetime] = mapped_column(DateTime)
    end_time: Mapped[dt.datetime] = mapped_column(DateTime)
    duration_minutes: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))
    price: Mapped[Decimal] = mapped_column(Money)
    created_at: Mapped[dt.datetime] = mapped_column(TimestampTZ, server_default=func.now())

    user: Mapped[User | None] = relationship(foreign_keys=[user_id], back_populates="appointments")
    barber: Mapped[User] = relationship(foreign_keys=[barber_id])
    client: Mapped[Client | None] = relationship(back_populates="appointments")
    service: Mapped[Service | None] = relationship()
    organization: Mapped[Organization | None] = relationship()
    payment: Mapped[Payment | None] = relationship(back_populates="appointment", uselist=False)

    def __repr__(self) -> str:
        return f"<Appointment {self.id}>"


class Payment(Base):
    __tablename__ = "payments"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    barber_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"))
    appointment_id: Mapped[int | None] = mapped_column(ForeignKey("appointments.id"), unique=True)
    amount: Mapped[Decimal] = mapped_column(Money)
    status: Mapped[str] = mapped_column(String(20))
    commission_rate: Mapped[Decimal] = mapped_column(Numeric(5, 4), default=Decimal("0.2"))
    created_at: Mapped[dt.datetime] = mapped_column(TimestampTZ, server_default=func.now())

    user: Mapped[User | None] = relationship(foreign_keys=[user_id], back_populates="payments")
    barber: Mapped[User | None] = relationship(foreign_keys=[barber_id])
    organization: Mapped[Organization | None] = relationship()
    appointment: Mapped[Appointment | None] = relationship(back_populates="payment")

    def __repr__(self) -> str:
        return f"<Payment {self.id}>"


class BarberAvailability(Base):
    __tablename__ = "barber_availability"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    day_of_week: Mapped[int] = mapped_column(Integer)
    start_time: Mapped[dt.time] = mapped_column(Time)
    end_time: Mapped[dt.time] = mapped_column(Time)
    is_available: Mapped[bool] = mapped_column(Boolean, default=True)

    barber: Mapped[User] = relationship(back_populates="availability_schedule")

    def __repr__(self) -> str:
        return f"<BarberAvailability {self.id}>"


class AIInsightCache(Base):
    __tablename__ = "ai_insight_cache"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    insight_type: Mapped[str] = mapped_column(String(50))
    payload: Mapped[str | None] = mapped_column(Text)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(TimestampTZ, server_default=func.now())

    user: Mapped[User] = relationship(back_populates="ai_insights")

    def __repr__(self) -> str:
        return f"<AIInsightCache {self.id}>"
