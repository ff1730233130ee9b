"""The report's flows as data: name, both implementations and the report's numbers' key.

The demo and the benchmarks iterate over :data:`FLOWS`; :func:`flow_arguments` picks
realistic arguments for each flow from whatever data is loaded.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from . import naive, optimized
from .models import Appointment

__all__ = ["FLOWS", "Flow", "flow_arguments"]


@dataclass(frozen=True)
class Flow:
    """One of the report's flows, naive and optimized."""

    name: str
    """Function name in :mod:`~sqlaopt.booking.naive` and :mod:`~sqlaopt.booking.optimized`."""
    title: str
    report_key: str | None
    """Key in the report's ``CURRENT_PERFORMANCE``/``TARGET_PERFORMANCE`` (section 9.1), or
    None for a flow the report does not time."""
    naive: Callable[..., Any]
    optimized: Callable[..., Any]
    statements: int
    """Statements the optimized version runs, whatever the data size."""


def _flow(name: str, title: str, report_key: str | None) -> Flow:
    return Flow(
        name=name,
        title=title,
        report_key=report_key,
        naive=getattr(naive, name),
        optimized=getattr(optimized, name),
        statements=optimized.STATEMENTS[name],
    )


FLOWS: tuple[Flow, ...] = (
    _flow("analytics_dashboard", "Analytics dashboard", "analytics_dashboard_load"),
    _flow("has_conflict", "Booking conflict check", "booking_conflict_check"),
    _flow("available_slots", "Available slots", None),
    _flow("daily_schedule", "Daily schedule", "daily_schedule_load"),
    _flow("revenue_report", "Revenue report", "revenue_report_generation"),
    _flow("user_dashboard", "User dashboard", "user_dashboard_load"),
)
"""The report's flows in the report's order (available slots, untimed there, after the
conflict check it builds on)."""


def flow_arguments(session: Session, now: dt.datetime | None = None) -> dict[str, dict[str, Any]]:
    """Keyword arguments for every flow, taken from an appointment in the middle of the data.

    Its barber and day drive the barber flows (dashboard for its month, revenue by week over
    the twelve weeks before it, conflict check on its first half hour); its client's user the
    user dashboard, seen from ``now`` (default: the start of that day). Two primary-key
    lookups, so it is cheap on any data size. Raises :class:`LookupError` with no appointments.
    """
    last_id = session.scalar(select(func.max(Appointment.id)))
    if last_id is None:
        raise LookupError("no appointments to take flow arguments from")
    anchor = session.scalars(
        select(Appointment).where(Appointment.id >= last_id // 2).order_by(Appointment.id).limit(1)
    ).one()
    barber, day = anchor.barber_id, anchor.start_time.date()
    month = day.replace(day=1)
    next_month = (month + dt.timedelta(days=32)).replace(day=1)
    return {
        "analytics_dashboard": {"barber_id": barber, "start": month, "end": next_month},
        "has_conflict": {
            "barber_id": barber,
            "start": anchor.start_time,
            "end": anchor.start_time + dt.timedelta(minutes=30),
        },
        "available_slots": {"barber_id": barber, "day": day},
        "daily_schedule": {"barber_id": barber, "day": day},
        "revenue_report": {
            "unit": "week",
            "start": day - dt.timedelta(weeks=12),
            "end": day + dt.timedelta(days=1),
            "barber_id": barber,
        },
        "user_dashboard": {
            "user_id": anchor.user_id if anchor.user_id is not None else barber,
            "now": now or dt.datetime.combine(day, dt.time()),
        },
    }
