"""Turn loaded ORM objects into result values, and the flows' shared argument checks.

Both versions of a flow build their results with these functions; they read relationships
(``appointment.client``, ``appointment.payment`` ...), which is where the naive versions lazy
load row by row and the optimized versions find everything already loaded.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from ..sql import UNITS, DateBucketUnitError, IntervalError
from ._common import as_utc, money
from ._results import Membership, PaymentLine, ScheduleEntry, Slot, UpcomingAppointment
from .models import Appointment, Payment, UserOrganization

__all__ = [
    "candidate_slots",
    "check_booking_interval",
    "check_slot_lengths",
    "check_unit",
    "memberships",
    "payment_line",
    "schedule_entry",
    "upcoming_appointment",
]


def check_booking_interval(start: dt.datetime, end: dt.datetime) -> None:
    """A booking must last a positive time: ``end > start``."""
    if end <= start:
        raise IntervalError(f"a booking must end after it starts: [{start!r}, {end!r})")


def check_slot_lengths(duration: dt.timedelta, step: dt.timedelta) -> None:
    if duration <= dt.timedelta(0) or step <= dt.timedelta(0):
        raise ValueError(f"duration and step must be positive, got {duration} and {step}")


def check_unit(unit: str) -> None:
    if unit not in UNITS:
        raise DateBucketUnitError(unit)


def schedule_entry(appointment: Appointment) -> ScheduleEntry:
    client, payment = appointment.client, appointment.payment
    return ScheduleEntry(
        appointment_id=appointment.id,
        start_time=appointment.start_time,
        end_time=appointment.end_time,
        status=appointment.status,
        service_name=appointment.service_name,
        price=money(appointment.price),
        client_name=client.name if client else None,
        client_phone=client.phone if client else None,
        payment_status=payment.status if payment else None,
    )


def upcoming_appointment(appointment: Appointment) -> UpcomingAppointment:
    service, payment = appointment.service, appointment.payment
    return UpcomingAppointment(
        appointment_id=appointment.id,
        start_time=appointment.start_time,
        end_time=appointment.end_time,
        status=appointment.status,
        barber_name=appointment.barber.name,
        service_name=service.name if service else appointment.service_name,
        price=money(appointment.price),
        payment_status=payment.status if payment else None,
    )


def memberships(links: Iterable[UserOrganization]) -> tuple[Membership, ...]:
    """The user's memberships ordered by organization id, then role."""
    views = (
        Membership(
            organization_id=link.organization_id,
            organization_name=link.organization.name,
            role=link.role,
            is_primary=bool(link.is_primary),
        )
        for link in links
    )
    return tuple(sorted(views, key=lambda m: (m.organization_id, m.role)))


def payment_line(payment: Payment) -> PaymentLine:
    return PaymentLine(
        payment_id=payment.id,
        amount=money(payment.amount),
        status=payment.status,
        created_at=as_utc(payment.created_at),
    )


def candidate_slots(
    day: dt.date,
    windows: Iterable[tuple[dt.time, dt.time]],
    duration: dt.timedelta,
    step: dt.timedelta,
) -> list[Slot]:
    """Every ``[t, t + duration)`` that fits in one of the day's working windows.

    Candidates start at each window's opening and every ``step`` after it. A window whose end
    is not after its start (e.g. one that crosses midnight) yields nothing. Overlapping windows
    do not produce duplicates; the result is sorted.
    """
    slots: set[Slot] = set()
    for opens, closes in windows:
        t, close = dt.datetime.combine(day, opens), dt.datetime.combine(day, closes)
        while t + duration <= close:
            slots.add(Slot(t, t + duration))
            t += step
    return sorted(slots)
