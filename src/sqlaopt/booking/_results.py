"""The values the booking flows return: frozen dataclasses of plain, comparable values.

The naive and the optimized version of a flow return equal values for the same data, so the
two can be compared with ``==``. Money is a ``Decimal`` with two places, ``timestamptz``
values are aware UTC datetimes, appointment times are naive (as stored).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

__all__ = [
    "DashboardMetrics",
    "Membership",
    "PaymentLine",
    "RevenueBucket",
    "ScheduleEntry",
    "Slot",
    "UpcomingAppointment",
    "UserDashboard",
]


@dataclass(frozen=True)
class DashboardMetrics:
    """A barber's analytics dashboard for a period (the report's section 3.1).

    Appointment metrics cover appointments starting in the period; client metrics cover the
    clients whose preferred barber is this barber.
    """

    total_appointments: int
    total_revenue: Decimal
    """Sum of the prices of completed appointments."""
    avg_service_price: Decimal | None
    """Mean price of completed appointments; None when there are none."""
    unique_clients: int
    total_clients: int
    active_clients: int
    """Clients whose last visit is on or after the period's start."""
    avg_client_value: Decimal | None
    """Mean ``total_spent`` of the barber's clients; None when there are none."""


@dataclass(frozen=True, order=True)
class Slot:
    """A free interval ``[start, end)`` in a barber's day."""

    start: dt.datetime
    end: dt.datetime


@dataclass(frozen=True)
class ScheduleEntry:
    """One appointment in a barber's daily schedule, with its client and payment status."""

    appointment_id: int
    start_time: dt.datetime
    end_time: dt.datetime
    status: str
    service_name: str
    price: Decimal
    client_name: str | None
    client_phone: str | None
    payment_status: str | None


@dataclass(frozen=True)
class RevenueBucket:
    """Completed payments in one day, ISO week or month (``bucket`` is its first day, UTC)."""

    bucket: dt.date
    revenue: Decimal
    transactions: int
    average: Decimal


@dataclass(frozen=True)
class Membership:
    """The user's role in one organization."""

    organization_id: int
    organization_name: str
    role: str
    is_primary: bool


@dataclass(frozen=True)
class UpcomingAppointment:
    """A confirmed or pending appointment of the user, with its barber, service and payment."""

    appointment_id: int
    start_time: dt.datetime
    end_time: dt.datetime
    status: str
    barber_name: str
    service_name: str
    price: Decimal
    payment_status: str | None


@dataclass(frozen=True)
class PaymentLine:
    """One of the user's payments; ``created_at`` is aware UTC."""

    payment_id: int
    amount: Decimal
    status: str
    created_at: dt.datetime


@dataclass(frozen=True)
class UserDashboard:
    """What a user sees on their dashboard: memberships, next appointments, recent payments."""

    user_id: int
    name: str
    role: str
    lifetime_value: Decimal
    memberships: tuple[Membership, ...]
    upcoming: tuple[UpcomingAppointment, ...]
    recent_payments: tuple[PaymentLine, ...]
