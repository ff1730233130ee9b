"""A schema shaped like the real booking backend (notes/booking-backend.md), where the report's
index migration named columns that do not exist: no ``appointments.end_time``, no
``users.organization_id``, no ``clients.user_id``, ``clients.last_visit_date`` instead of
``last_visit``, and the AI table called ``ai_insights_cache``. Old-style ``Column()`` models."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, ForeignKey, Index, Integer, Numeric, String, Text
from sqlalchemy.orm import DeclarativeBase


def backend_base() -> type[DeclarativeBase]:
    """A fresh declarative base with the backend's tables (a new one per call)."""

    class Base(DeclarativeBase):
        pass

    class User(Base):
        __tablename__ = "users"
        id = Column(Integer, primary_key=True)
        email = Column(String(200), unique=True)
        name = Column(String(120))
        unified_role = Column(String(30))
        is_active = Column(Boolean, default=True)
        lifetime_value = Column(Numeric(10, 2))
        created_at = Column(DateTime(timezone=True))

    class Organization(Base):
        __tablename__ = "organizations"
        id = Column(Integer, primary_key=True)
        name = Column(String(120))

    class Client(Base):
        __tablename__ = "clients"
        id = Column(Integer, primary_key=True)
        barber_id = Column(Integer, ForeignKey("users.id"))
        preferred_barber_id = Column(Integer, ForeignKey("users.id"))
        created_by_id = Column(Integer, ForeignKey("users.id"))
        name = Column(String(120))
        last_visit_date = Column(DateTime(timezone=True))
        created_at = Column(DateTime(timezone=True))
        total_spent = Column(Numeric(10, 2))

    class Appointment(Base):
        __tablename__ = "appointments"
        id = Column(Integer, primary_key=True)
        user_id = Column(Integer, ForeignKey("users.id"))
        barber_id = Column(Integer, ForeignKey("users.id"))
        client_id = Column(Integer, ForeignKey("clients.id"))
        organization_id = Column(Integer, ForeignKey("organizations.id"))
        start_time = Column(DateTime)
        duration_minutes = Column(Integer)
        status = Column(String(20))
        price = Column(Numeric(10, 2))
        created_at = Column(DateTime(timezone=True))

    class Payment(Base):
        __tablename__ = "payments"
        id = Column(Integer, primary_key=True)
        user_id = Column(Integer, ForeignKey("users.id"))
        barber_id = Column(Integer, ForeignKey("users.id"))
        organization_id = Column(Integer, ForeignKey("organizations.id"))
        appointment_id = Column(Integer, ForeignKey("appointments.id"))
        amount = Column(Numeric(10, 2))
        status = Column(String(20))
        commission_rate = Column(Numeric(5, 4))
        created_at = Column(DateTime(timezone=True))

    class AIInsight(Base):
        __tablename__ = "ai_insights_cache"
        __table_args__ = (Index("idx_user_insights", "user_id", "is_active", "expires_at"),)
        id = Column(Integer, primary_key=True)
        user_id = Column(Integer, ForeignKey("users.id"))
        insight_type = Column(String(50))
        payload = Column(Text)
        is_active = Column(Boolean, default=True)
        created_at = Column(DateTime(timezone=True))
        expires_at = Column(DateTime(timezone=True))

    return Base


#: The renames that fit the report to this schema as far as it can be fitted.
BACKEND_RENAMES = {
    "clients.last_visit": "last_visit_date",
    # In the report's dashboard query, clients.user_id is the barber the client belongs to.
    "clients.user_id": "barber_id",
    "ai_insight_cache": "ai_insights_cache",
}


#: One instance for ``--models tests.indexes.backend_schema:Base`` (the CLI never mutates it).
Base = backend_base()
