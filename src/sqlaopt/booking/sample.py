"""A small, deterministic data set for the reference schema (tests, docs, the demo's first act).

Every row gets an explicit primary key and every value comes from ``random.Random(seed)``, so
the same arguments give the same rows on SQLite, PostgreSQL and MySQL.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.orm import Session

from .models import (
    AIInsightCache,
    Appointment,
    BarberAvailability,
    Client,
    Organization,
    Payment,
    Service,
    User,
    UserOrganization,
)

__all__ = ["SampleSize", "build_sample"]

EPOCH = dt.datetime(2025, 7, 1, 9, 0)
STATUSES = ("completed", "completed", "completed", "confirmed", "pending", "cancelled")
SERVICES = (("Haircut", "35.00", 30), ("Beard trim", "20.00", 15), ("Cut and beard", "50.00", 45))


@dataclass(frozen=True)
class SampleSize:
    """How many rows :func:`build_sample` makes."""

    organizations: int = 2
    barbers: int = 4
    clients: int = 12
    appointments: int = 40


def build_sample(session: Session, size: SampleSize = SampleSize(), *, seed: int = 0) -> None:
    """Add a deterministic sample data set to ``session`` and commit it.

    Appointments are spread over the barbers without overlaps (each barber's appointments are
    back to back), 85% of non-cancelled ones have a payment, and every user belongs to an
    organization through ``user_organizations``.
    """
    rng = random.Random(seed)
    orgs = [Organization(id=i + 1, name=f"Shop {i + 1}") for i in range(size.organizations)]
    session.add_all(orgs)
    services = [
        Service(id=i + 1, name=name, base_price=Decimal(price), duration_minutes=minutes,
                organization_id=orgs[i % len(orgs)].id)
        for i, (name, price, minutes) in enumerate(SERVICES)
    ]
    barbers = [_user(i + 1, "barber", rng, orgs) for i in range(size.barbers)]
    for i, barber in enumerate(barbers):
        # Set before the first flush: assigning to a persistent barber's collection would
        # lazy-load the old one first (an N+1 the detector rightly reports).
        barber.services_offered = services[: 1 + i % len(services)]
    clients_users = [
        _user(size.barbers + i + 1, "client", rng, orgs) for i in range(size.clients)
    ]
    session.add_all([*services, *barbers, *clients_users])
    session.flush()
    session.add_all(_memberships(barbers + clients_users, orgs))
    clients = [
        Client(id=i + 1, user_id=u.id, preferred_barber_id=barbers[i % len(barbers)].id,
               name=u.name, phone=f"555-01{i:02d}", total_spent=Decimal("0"))
        for i, u in enumerate(clients_users)
    ]
    session.add_all(clients)
    session.add_all(_availability(barbers))
    session.add_all(
        AIInsightCache(id=i + 1, user_id=b.id, insight_type="revenue_trend", payload="{}")
        for i, b in enumerate(barbers)
    )
    session.flush()
    _appointments(session, size.appointments, rng, barbers, clients, services)
    session.flush()
    _advance_sequences(session)
    session.commit()


def _advance_sequences(session: Session) -> None:
    """Explicit ids do not move PostgreSQL's sequences; move them past the sample's rows."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for table in ("organizations", "users", "user_organizations", "services", "clients",
                  "appointments", "payments", "barber_availability", "ai_insight_cache"):
        session.execute(text(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
            f"(SELECT coalesce(max(id), 0) + 1 FROM {table}), false)"
        ))


def _user(user_id: int, role: str, rng: random.Random, orgs: list[Organization]) -> User:
    return User(
        id=user_id,
        email=f"{role}{user_id}@example.com",
        name=f"{role.title()} {user_id}",
        unified_role=role,
        is_active=rng.random() > 0.1,
        lifetime_value=Decimal(rng.randrange(0, 200_000)) / 100,
        organization_id=orgs[user_id % len(orgs)].id,
    )


def _memberships(users: list[User], orgs: list[Organization]) -> list[UserOrganization]:
    return [
        UserOrganization(id=i + 1, user_id=u.id, organization_id=orgs[u.id % len(orgs)].id,
                         role=u.unified_role, is_primary=True)
        for i, u in enumerate(users)
    ]


def _availability(barbers: list[User]) -> list[BarberAvailability]:
    return [
        BarberAvailability(id=len(barbers) * day + i + 1, user_id=b.id, day_of_week=day,
                           start_time=dt.time(9), end_time=dt.time(18), is_available=True)
        for day in range(7)
        for i, b in enumerate(barbers)
    ]


def _appointments(
    session: Session,
    count: int,
    rng: random.Random,
    barbers: list[User],
    clients: list[Client],
    services: list[Service],
) -> None:
    next_free = {b.id: EPOCH for b in barbers}
    payment_id = 0
    for i in range(count):
        barber = barbers[i % len(barbers)]
        client = clients[rng.randrange(len(clients))]
        service = services[rng.randrange(len(services))]
        start = next_free[barber.id]
        end = start + dt.timedelta(minutes=service.duration_minutes)
        next_free[barber.id] = end + dt.timedelta(minutes=15 * rng.randrange(0, 3))
        status = rng.choice(STATUSES)
        appointment = Appointment(
            id=i + 1, user_id=client.user_id, barber_id=barber.id, client_id=client.id,
            service_id=service.id, organization_id=barber.organization_id,
            service_name=service.name, start_time=start, end_time=end,
            duration_minutes=service.duration_minutes, status=status, price=service.base_price,
        )
        session.add(appointment)
        if status != "cancelled" and rng.random() < 0.85:
            payment_id += 1
            session.add(Payment(
                id=payment_id, user_id=client.user_id, barber_id=barber.id,
                organization_id=barber.organization_id, appointment_id=appointment.id,
                amount=service.base_price,
                status="completed" if status == "completed" else "pending",
                commission_rate=Decimal("0.2000"),
                created_at=dt.datetime.combine(start.date(), dt.time(12), dt.timezone.utc),
            ))
