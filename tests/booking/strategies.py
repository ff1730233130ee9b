"""Hypothesis strategies: small booking data sets full of edge cases, and flow arguments.

Appointments fall on a 15-minute grid over one week that crosses an ISO week boundary (Monday
29 September 2025) and a month boundary (1 October), so midnights, week and month edges,
back-to-back and overlapping appointments (there is no constraint here) all come up quickly;
payments' ``created_at`` values cluster around UTC midnights. Flow arguments are drawn mostly
from the data set (its barbers, its appointments' days) so that results are rarely empty.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

FIRST_DAY = dt.date(2025, 9, 26)  # a Friday
DAYS = 7
STATUSES = ("completed", "confirmed", "pending", "cancelled", "no_show")

Rows = dict[str, list[dict[str, Any]]]

cents = st.integers(min_value=0, max_value=20_000).map(lambda c: Decimal(c) / 100)
days = st.integers(min_value=-2, max_value=DAYS + 1).map(lambda n: FIRST_DAY + dt.timedelta(n))
quarter_hours = st.integers(min_value=0, max_value=DAYS * 96)


def _quarter(quarters: int) -> dt.time:
    return dt.time(quarters // 4, 15 * (quarters % 4))


def on_grid(quarters: int) -> dt.datetime:
    return dt.datetime.combine(FIRST_DAY, dt.time()) + dt.timedelta(minutes=15 * quarters)


@st.composite
def utc_instants(draw: st.DrawFn) -> dt.datetime:
    """Aware UTC datetimes, often exactly at or just before a midnight."""
    day = draw(days)
    offset = draw(
        st.sampled_from([dt.timedelta(0), dt.timedelta(microseconds=-1), dt.timedelta(hours=12)])
        | st.timedeltas(min_value=dt.timedelta(0), max_value=dt.timedelta(days=1))
    )
    naive = dt.datetime.combine(day, dt.time()) + offset
    return naive.replace(tzinfo=dt.timezone.utc)


@st.composite
def datasets(draw: st.DrawFn) -> Rows:
    """Rows for every table of the reference schema, consistent in their foreign keys."""
    n_orgs = draw(st.integers(1, 2))
    n_barbers = draw(st.integers(1, 3))
    n_clients = draw(st.integers(1, 4))
    orgs = [{"id": i, "name": f"Shop {i}"} for i in range(1, n_orgs + 1)]
    barber_ids = list(range(1, n_barbers + 1))
    client_user_ids = list(range(n_barbers + 1, n_barbers + n_clients + 1))
    users = [
        {
            "id": uid,
            "email": f"u{uid}@example.com",
            "name": f"User {uid}",
            "unified_role": "barber" if uid in barber_ids else "client",
            "is_active": True,
            "lifetime_value": draw(cents),
            "organization_id": draw(st.integers(1, n_orgs)),
        }
        for uid in barber_ids + client_user_ids
    ]
    memberships = [
        {"id": i, "user_id": uid, "organization_id": org, "role": role, "is_primary": primary}
        for i, (uid, org, role, primary) in enumerate(
            draw(
                st.lists(
                    st.tuples(
                        st.sampled_from(barber_ids + client_user_ids),
                        st.integers(1, n_orgs),
                        st.sampled_from(["owner", "barber", "client"]),
                        st.booleans(),
                    ),
                    max_size=6,
                    unique_by=lambda m: (m[0], m[1]),
                )
            ),
            start=1,
        )
    ]
    services = [
        {
            "id": i,
            "organization_id": draw(st.integers(1, n_orgs)),
            "name": f"Service {i}",
            "base_price": draw(cents),
            "duration_minutes": draw(st.sampled_from([15, 30, 45, 60])),
        }
        for i in range(1, draw(st.integers(1, 3)) + 1)
    ]
    clients = [
        {
            "id": i,
            "user_id": uid,
            "preferred_barber_id": draw(st.none() | st.sampled_from(barber_ids)),
            "name": f"Client {i}",
            "phone": draw(st.none() | st.just(f"555-{i:04d}")),
            "last_visit": draw(st.none() | utc_instants()),
            "total_spent": draw(cents),
        }
        for i, uid in enumerate(client_user_ids, start=1)
    ]
    availability = [
        {
            "id": i,
            "user_id": barber,
            "day_of_week": weekday,
            "start_time": _quarter(opens),
            # Now and then a window that ends before it starts: it offers nothing.
            "end_time": _quarter(max(0, opens - 1) if inverted else min(95, opens + length)),
            "is_available": available,
        }
        for i, (barber, weekday, opens, length, inverted, available) in enumerate(
            draw(
                st.lists(
                    st.tuples(
                        st.sampled_from(barber_ids),
                        st.integers(0, 6),
                        st.integers(0, 90),
                        st.integers(1, 40),
                        st.sampled_from([False, False, False, True]),
                        st.sampled_from([True, True, True, False]),
                    ),
                    min_size=1,
                    max_size=3,
                )
            ),
            start=1,
        )
    ]
    appointments, payments = _appointments(draw, barber_ids, clients, services)
    return {
        "organizations": orgs,
        "users": users,
        "user_organizations": memberships,
        "services": services,
        "clients": clients,
        "barber_availability": availability,
        "appointments": appointments,
        "payments": payments,
    }


def _appointments(
    draw: st.DrawFn,
    barber_ids: list[int],
    clients: list[dict[str, Any]],
    services: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    appointments: list[dict[str, Any]] = []
    payments: list[dict[str, Any]] = []
    for i in range(1, draw(st.integers(2, 30)) + 1):
        client = draw(st.none() | st.sampled_from(clients))
        service = draw(st.none() | st.sampled_from(services))
        start = on_grid(draw(quarter_hours))
        length = 15 * draw(st.integers(1, 8))
        appointment = {
            "id": i,
            "user_id": client["user_id"] if client else None,
            "barber_id": draw(st.sampled_from(barber_ids)),
            "client_id": client["id"] if client else None,
            "service_id": service["id"] if service else None,
            "organization_id": None,
            "service_name": service["name"] if service else "Walk-in",
            "start_time": start,
            "end_time": start + dt.timedelta(minutes=length),
            "duration_minutes": length,
            "status": draw(st.sampled_from(STATUSES)),
            "price": draw(cents),
        }
        appointments.append(appointment)
        if draw(st.booleans()):
            payments.append({
                "id": len(payments) + 1,
                "user_id": appointment["user_id"],
                "barber_id": appointment["barber_id"],
                "appointment_id": i,
                "amount": draw(cents),
                "status": draw(st.sampled_from(["completed", "completed", "pending", "refunded"])),
                "commission_rate": Decimal("0.2000"),
                "created_at": draw(utc_instants()),
            })
    return appointments, payments


def barber_of(rows: Rows) -> st.SearchStrategy[int]:
    """A barber with appointments, any barber, now and then one that does not exist."""
    ids = [u["id"] for u in rows["users"] if u["unified_role"] == "barber"]
    booked = [a["barber_id"] for a in rows["appointments"]]
    return st.sampled_from(booked) | st.sampled_from(ids) | st.just(max(ids) + 100)


def barber_day_of(rows: Rows) -> st.SearchStrategy[tuple[int, dt.date]]:
    """A (barber, day) pair that has an appointment, or any pair."""
    pairs = sorted({(a["barber_id"], a["start_time"].date()) for a in rows["appointments"]})
    return st.sampled_from(pairs) | st.tuples(barber_of(rows), day_of(rows))


def interval_near(rows: Rows) -> st.SearchStrategy[tuple[int, dt.datetime, dt.datetime]]:
    """(barber, start, end): an interval cutting an appointment of the barber, or anywhere."""

    def around(pick: tuple[dict[str, Any], int, int]) -> tuple[int, dt.datetime, dt.datetime]:
        appointment, shift, length = pick
        start = appointment["start_time"] + dt.timedelta(minutes=5 * shift)
        return appointment["barber_id"], start, start + dt.timedelta(minutes=5 * length)

    near = st.tuples(
        st.sampled_from(rows["appointments"]), st.integers(-24, 24), st.integers(1, 24)
    ).map(around)
    anywhere = st.tuples(barber_of(rows), intervals()).map(lambda p: (p[0], *p[1]))
    return near | anywhere


def day_of(rows: Rows) -> st.SearchStrategy[dt.date]:
    """A day with appointments or payments, or any day of the grid."""
    busy = sorted(
        {a["start_time"].date() for a in rows["appointments"]}
        | {p["created_at"].date() for p in rows["payments"]}
    )
    return (st.sampled_from(busy) | days) if busy else days


def span_of(rows: Rows) -> st.SearchStrategy[tuple[dt.date, dt.date]]:
    """``(start, end)`` day pairs with ``start <= end``, starting at or before the data."""
    return st.tuples(day_of(rows), st.integers(0, 3), st.integers(0, DAYS)).map(
        lambda p: (p[0] - dt.timedelta(p[1]), p[0] + dt.timedelta(p[2]))
    )


def user_of(rows: Rows) -> st.SearchStrategy[int]:
    """A user of the data set, most often one with appointments."""
    booked = sorted({a["user_id"] for a in rows["appointments"] if a["user_id"]})
    everyone = st.sampled_from([u["id"] for u in rows["users"]])
    return (st.sampled_from(booked) | everyone) if booked else everyone


def intervals() -> st.SearchStrategy[tuple[dt.datetime, dt.datetime]]:
    """Positive-length intervals on a 5-minute grid (so they cut appointments anywhere)."""
    return st.tuples(st.integers(0, DAYS * 288), st.integers(1, 36)).map(
        lambda p: (
            dt.datetime.combine(FIRST_DAY, dt.time()) + dt.timedelta(minutes=5 * p[0]),
            dt.datetime.combine(FIRST_DAY, dt.time()) + dt.timedelta(minutes=5 * (p[0] + p[1])),
        )
    )
