"""The report's section 6 on the reference schema, corrected: ``barber_monthly_stats`` and the
dashboard served from it.

The report's view filters ``u.unified_role IN ('BARBER', 'SHOP_OWNER')``, but roles are stored
lower-case, so it is always empty; its index is not unique, so it can never be refreshed
concurrently; nothing refreshes it. Here the roles are lower-case, the lookup index on
``(barber_id, month)`` is the unique index, and two columns are added so that the analytics
dashboard (report section 3.1) can be served from the view for a calendar month: the report's
columns count completed appointments only, the dashboard counts every status.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import Numeric, case, cast, distinct, func, select, true, type_coerce
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from ..booking._common import money
from ..booking._results import DashboardMetrics
from ..booking.models import Appointment, User
from ..booking.optimized import _client_metrics, _money_or_none
from ..indexes import REPORT, SUPPLEMENT, in_
from ..sql import date_bucket
from ._aggregates import DistinctCount, Latest, MaintainedAggregates, MonthlyTotal
from ._partitions import MonthlyPartitions
from ._views import MaterializedView

# The public names are listed in sqlaopt.structure.__all__.

BARBER_ROLES = ("barber", "shop_owner")
"""The roles whose appointments the view aggregates (stored lower-case)."""


def _average(value: ColumnElement[Decimal]) -> ColumnElement[Decimal]:
    """``AVG(value)`` that every database stores with the digits it returns.

    MariaDB returns a selected AVG with 4 more decimals than its input but stores more in
    ``INSERT ... SELECT``: the CAST fixes the digits. The result keeps the input's type, as a
    plain AVG would, so each driver hands back what the live query hands back (SQLite's
    float average included).
    """
    return type_coerce(cast(func.avg(value), Numeric(38, 10)), value.type)


def _barber_monthly_stats() -> MaterializedView:
    completed = Appointment.status == "completed"
    month = date_bucket("month", Appointment.start_time)
    query = (
        select(
            User.id.label("barber_id"),
            User.name.label("barber_name"),
            month.label("month"),
            func.count(case((completed, Appointment.id))).label("total_appointments"),
            func.sum(case((completed, Appointment.price))).label("total_revenue"),
            func.count(distinct(case((completed, Appointment.client_id)))).label(
                "unique_clients"
            ),
            _average(case((completed, Appointment.price))).label("avg_service_price"),
            func.count(Appointment.id).label("booked_appointments"),
            func.count(distinct(Appointment.client_id)).label("booked_clients"),
        )
        .join(Appointment, Appointment.barber_id == User.id)
        .where(User.unified_role.in_(BARBER_ROLES))
        .group_by(User.id, User.name, month)
    )
    return MaterializedView(
        "barber_monthly_stats",
        query,
        unique=["barber_id", "month"],
        doc="Per barber and calendar month: the report's completed-appointment statistics "
        "(total_appointments, total_revenue, unique_clients, avg_service_price) and the "
        "dashboard's counts over every status (booked_appointments, booked_clients).",
    )


BARBER_MONTHLY_STATS = _barber_monthly_stats()
"""The report's ``barber_monthly_stats`` (section 6.1), corrected, on the reference schema."""


def monthly_dashboard(session: Session, barber_id: int, month: dt.date) -> DashboardMetrics:
    """The analytics dashboard of ``barber_id`` for the calendar month of ``month``, served
    from :data:`BARBER_MONTHLY_STATS`: one statement (the view's row for that month and the
    barber's client metrics, which the view does not hold).

    After a refresh it equals ``sqlaopt.booking.optimized.analytics_dashboard(session,
    barber_id, first_day, first_day_of_next_month)`` for barbers and shop owners (the roles
    the view covers); between refreshes it shows the view's data.
    """
    first = month.replace(day=1)
    view = BARBER_MONTHLY_STATS.table
    stats = (
        select(
            view.c.booked_appointments,
            view.c.total_revenue,
            view.c.avg_service_price,
            view.c.booked_clients,
        )
        .where(view.c.barber_id == barber_id, view.c.month == first)
        .subquery("stats")
    )
    clients = _client_metrics(barber_id, first)
    row = session.execute(
        select(stats, clients).select_from(clients.outerjoin(stats, true()))
    ).one()
    return DashboardMetrics(
        total_appointments=row.booked_appointments or 0,
        total_revenue=money(row.total_revenue),
        avg_service_price=_money_or_none(row.avg_service_price),
        unique_clients=row.booked_clients or 0,
        total_clients=row.total_clients,
        active_clients=row.active_clients,
        avg_client_value=_money_or_none(row.avg_client_value),
    )


BOOKED_STATUSES = ("confirmed", "pending", "completed")
"""Appointments that count as bookings for ``client_count`` and ``last_booking_date``
(cancelled and no-show ones do not)."""

USER_AGGREGATES = MaintainedAggregates(
    Appointment.__table__,  # type: ignore[arg-type]
    "barber_id",
    User.__table__,  # type: ignore[arg-type]
    [
        MonthlyTotal("barber_monthly_revenue", of="price", by="start_time",
                     where={"status": "completed"}),
        DistinctCount("client_count", of="client_id", where=in_("status", BOOKED_STATUSES)),
        Latest("last_booking_date", of="start_time", where=in_("status", BOOKED_STATUSES)),
    ],
)
"""The report's denormalised ``users`` columns (section 6.1), corrected: ``client_count`` and
``last_booking_date`` on ``users``; the monthly revenue in ``barber_monthly_revenue``
(barber, month, total, rows), since a "this month" column changes with no write."""

APPOINTMENT_PARTITIONS = MonthlyPartitions(
    Appointment.__table__,  # type: ignore[arg-type]
    "start_time",
    spec=REPORT + SUPPLEMENT,
)
"""The report's partitioned ``appointments`` (section 6.2), corrected: primary key
``(id, start_time)``, the report's and the supplement's indexes on every partition, the
``no_double_booking`` constraint on every partition plus the month guard, appointments of at
most one day."""
