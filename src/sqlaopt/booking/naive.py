"""The report's flows written the way the report describes the current code.

Lazy loads in loops, the three-way ``OR`` conflict check, one query per dashboard metric,
grouping in Python, ``DATE(start_time) = :day`` filters. They return exactly what the
functions of the same name in :mod:`sqlaopt.booking.optimized` return; they exist to be
measured against them (statement counts and latency), not to be used.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

from sqlalchemy import and_, distinct, func, or_, select
from sqlalchemy.orm import Session

from ..sql._buckets import bucket_start
from ._common import ACTIVE_STATUSES, as_utc, mean, money, utc_midnight
from ._results import (
    DashboardMetrics,
    RevenueBucket,
    ScheduleEntry,
    Slot,
    UserDashboard,
)
from ._views import (
    candidate_slots,
    check_booking_interval,
    check_slot_lengths,
    check_unit,
    memberships,
    payment_line,
    schedule_entry,
    upcoming_appointment,
)
from .models import Appointment, Client, Payment, User

__all__ = [
    "analytics_dashboard",
    "available_slots",
    "daily_schedule",
    "has_conflict",
    "revenue_report",
    "user_dashboard",
]


def analytics_dashboard(
    session: Session, barber_id: int, start: dt.date, end: dt.date
) -> DashboardMetrics:
    """Seven statements: one per metric, as the report's "current issue" describes."""
    period = (
        Appointment.barber_id == barber_id,
        Appointment.start_time >= dt.datetime.combine(start, dt.time()),
        Appointment.start_time < dt.datetime.combine(end, dt.time()),
    )
    completed = (*period, Appointment.status == "completed")
    own_clients = Client.preferred_barber_id == barber_id
    total = session.scalar(select(func.count(Appointment.id)).where(*period))
    revenue = session.scalar(select(func.sum(Appointment.price)).where(*completed))
    average = session.scalar(select(func.avg(Appointment.price)).where(*completed))
    unique = session.scalar(select(func.count(distinct(Appointment.client_id))).where(*period))
    clients = session.scalar(select(func.count(Client.id)).where(own_clients))
    active = session.scalar(
        select(func.count(Client.id)).where(own_clients, Client.last_visit >= utc_midnight(start))
    )
    client_value = session.scalar(select(func.avg(Client.total_spent)).where(own_clients))
    return DashboardMetrics(
        total_appointments=total or 0,
        total_revenue=money(revenue),
        avg_service_price=None if average is None else money(average),
        unique_clients=unique or 0,
        total_clients=clients or 0,
        active_clients=active or 0,
        avg_client_value=None if client_value is None else money(client_value),
    )


def has_conflict(
    session: Session, barber_id: int, start: dt.datetime, end: dt.datetime
) -> bool:
    """The report's three-way ``OR``: loads every conflicting appointment to test for one."""
    check_booking_interval(start, end)
    existing = session.scalars(
        select(Appointment).where(
            and_(
                Appointment.barber_id == barber_id,
                Appointment.status.in_(ACTIVE_STATUSES),
                or_(
                    and_(Appointment.start_time <= start, Appointment.end_time > start),
                    and_(Appointment.start_time < end, Appointment.end_time >= end),
                    and_(Appointment.start_time >= start, Appointment.end_time <= end),
                ),
            )
        )
    ).all()
    return len(existing) > 0


def available_slots(
    session: Session,
    barber_id: int,
    day: dt.date,
    duration: dt.timedelta = dt.timedelta(minutes=30),
    step: dt.timedelta = dt.timedelta(minutes=15),
) -> tuple[Slot, ...]:
    """Loads the barber, lazy loads the weekly schedule, runs one conflict check per slot."""
    check_slot_lengths(duration, step)
    barber = session.get(User, barber_id)
    if barber is None:
        return ()
    windows = [
        (w.start_time, w.end_time)
        for w in barber.availability_schedule
        if w.day_of_week == day.weekday() and w.is_available
    ]
    return tuple(
        slot
        for slot in candidate_slots(day, windows, duration, step)
        if not has_conflict(session, barber_id, slot.start, slot.end)
    )


def daily_schedule(session: Session, barber_id: int, day: dt.date) -> tuple[ScheduleEntry, ...]:
    """``DATE(start_time) = :day``, then a lazy load of client and payment per appointment."""
    appointments = session.scalars(
        select(Appointment)
        .where(Appointment.barber_id == barber_id, func.date(Appointment.start_time) == day)
        .order_by(Appointment.start_time, Appointment.id)
    ).all()
    return tuple(schedule_entry(a) for a in appointments)


def revenue_report(
    session: Session,
    unit: str,
    start: dt.date,
    end: dt.date,
    barber_id: int | None = None,
) -> tuple[RevenueBucket, ...]:
    """Loads every completed payment of the period and groups them in Python."""
    check_unit(unit)
    query = select(Payment).where(
        Payment.status == "completed",
        Payment.created_at >= utc_midnight(start),
        Payment.created_at < utc_midnight(end),
    )
    if barber_id is not None:
        query = query.where(Payment.barber_id == barber_id)
    groups: defaultdict[dt.date, list[Decimal]] = defaultdict(list)
    for payment in session.scalars(query):
        groups[bucket_start(unit, as_utc(payment.created_at).date())].append(
            money(payment.amount)
        )
    return tuple(
        RevenueBucket(bucket, money(sum(amounts)), len(amounts), _mean(amounts))
        for bucket, amounts in sorted(groups.items())
    )


def _mean(amounts: list[Decimal]) -> Decimal:
    average = mean(money(sum(amounts)), len(amounts))
    assert average is not None  # a group is never empty
    return average


def user_dashboard(
    session: Session, user_id: int, now: dt.datetime, limit: int = 5
) -> UserDashboard:
    """Walks the user's relationships: memberships → organization, appointments → barber,
    service, payment, and payments, each a lazy load (per row for the nested ones)."""
    user = session.get(User, user_id)
    if user is None:
        raise LookupError(f"no user with id {user_id}")
    upcoming = sorted(
        (a for a in user.appointments if a.status in ACTIVE_STATUSES and a.start_time >= now),
        key=lambda a: (a.start_time, a.id),
    )[:limit]
    recent = sorted(user.payments, key=lambda p: (as_utc(p.created_at), p.id), reverse=True)
    return UserDashboard(
        user_id=user.id,
        name=user.name,
        role=user.unified_role,
        lifetime_value=money(user.lifetime_value),
        memberships=memberships(user.user_organizations),
        upcoming=tuple(upcoming_appointment(a) for a in upcoming),
        recent_payments=tuple(payment_line(p) for p in recent[:limit]),
    )
