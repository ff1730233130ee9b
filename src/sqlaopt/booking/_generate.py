"""``generate``: fill the reference schema with a realistic, deterministic data set, fast.

Shape: shops (organizations) of up to eight barbers, six services per shop, clients who mostly
see their preferred barber, barbers who work six days a week with more appointments on
Fridays and weekends, appointments back to back with short gaps inside the opening hours (so
no two appointments of a barber ever overlap and the ``no_double_booking`` exclusion
constraint holds), 85% of appointments completed, each completed one with a payment, and the
last few weeks still ahead (confirmed or pending).

Speed: rows are produced in chunks of plain tuples and written with COPY on PostgreSQL
(psycopg 3's ``cursor.copy()`` on the raw connection) and with Core ``insert()``
executemany elsewhere; appointment ids follow time, with barbers interleaved, as in a real
table.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TextIO

from sqlalchemy import Connection, Engine, Table, bindparam, func, insert, select, text, update
from sqlalchemy.engine import Dialect

from .._errors import SqlaoptError
from .models import Base

__all__ = ["GenerateError", "Generated", "generate"]

EPOCH = dt.date(2024, 1, 1)
"""The first day of generated appointments (a Monday)."""

BARBERS_PER_SHOP = 8
APPOINTMENTS_PER_BARBER = 3_000  # about a year of work
VISITS_PER_CLIENT = 12
CHUNK = 10_000  # appointments per COPY / executemany batch
FUTURE_SHARE = 0.055  # the last 5.5% of days are still ahead: confirmed or pending
COMPLETED_SHARE_OF_PAST = 0.90  # so about 0.945 * 0.90 = 85% of all appointments completed

# (name, base price, minutes, weight of 100): durations are multiples of 15 minutes.
CATALOGUE = (
    ("Haircut", Decimal("35.00"), 30, 40),
    ("Beard trim", Decimal("20.00"), 15, 15),
    ("Cut and beard", Decimal("50.00"), 45, 20),
    ("Kids cut", Decimal("25.00"), 30, 10),
    ("Hot towel shave", Decimal("40.00"), 30, 10),
    ("Colour", Decimal("65.00"), 60, 5),
)
PRICE_LEVELS = (Decimal("0.90"), Decimal("1.00"), Decimal("1.10"), Decimal("1.25"))
# Monday .. Sunday: (opens, closes, typical appointments); peaks on Friday and the weekend.
WEEK = (
    (dt.time(9), dt.time(19), 7),
    (dt.time(9), dt.time(19), 7),
    (dt.time(9), dt.time(19), 8),
    (dt.time(9), dt.time(19), 9),
    (dt.time(9), dt.time(19), 11),
    (dt.time(8), dt.time(18), 13),
    (dt.time(10), dt.time(17), 10),
)
MAX_GAP_QUARTERS = 4  # at most an hour between two appointments

_COLUMNS = {
    "organizations": ("id", "name", "created_at"),
    "users": (
        "id", "email", "name", "unified_role", "is_active", "lifetime_value",
        "organization_id", "created_at",
    ),
    "user_organizations": ("id", "user_id", "organization_id", "role", "is_primary"),
    "services": ("id", "organization_id", "name", "base_price", "duration_minutes"),
    "barber_services": ("barber_id", "service_id", "custom_price"),
    "clients": (
        "id", "user_id", "preferred_barber_id", "name", "phone", "last_visit", "created_at",
        "total_spent",
    ),
    "barber_availability": (
        "id", "user_id", "day_of_week", "start_time", "end_time", "is_available",
    ),
    "ai_insight_cache": ("id", "user_id", "insight_type", "payload", "is_active", "created_at"),
    "appointments": (
        "id", "user_id", "barber_id", "client_id", "service_id", "organization_id",
        "service_name", "start_time", "end_time", "duration_minutes", "status", "price",
        "created_at",
    ),
    "payments": (
        "id", "user_id", "barber_id", "organization_id", "appointment_id", "amount", "status",
        "commission_rate", "created_at",
    ),
}

Row = tuple[Any, ...]


class GenerateError(SqlaoptError):
    """:func:`generate` was pointed at tables that already hold data."""


@dataclass(frozen=True)
class Generated:
    """What :func:`generate` wrote: row counts and the generated calendar."""

    organizations: int
    barbers: int
    clients: int
    services: int
    appointments: int
    payments: int
    first_day: dt.date
    """The day of the first appointment."""
    today: dt.date
    """The data's "today": appointments from this day on are confirmed or pending."""
    last_day: dt.date
    seconds: float
    """Wall time of the load, ANALYZE included."""


def generate(
    bind: Engine | Connection,
    appointments: int = 100_000,
    *,
    seed: int = 0,
    progress: bool | None = None,
) -> Generated:
    """Fill the reference schema with ``appointments`` appointments and everything around them.

    Deterministic: the same ``appointments`` and ``seed`` give the same rows on every database.
    Creates missing tables; raises :class:`GenerateError` if ``users`` or ``appointments``
    already hold rows. PostgreSQL loads through COPY (psycopg 3) and resets the id sequences;
    other databases use batched ``INSERT`` executemany. Then runs ``ANALYZE`` (PostgreSQL,
    MySQL/MariaDB) so the planner sees the new sizes.

    With an :class:`~sqlalchemy.Engine` the load is one transaction, committed before
    ``ANALYZE``. With a :class:`~sqlalchemy.Connection` it runs in that connection's
    transaction and the caller commits; on MySQL ``ANALYZE TABLE`` would commit implicitly,
    so it is skipped there.

    ``progress``: draw a progress bar on stderr; by default only when stderr is a terminal.
    Nothing is printed otherwise.
    """
    if appointments < 0:
        raise ValueError(f"appointments must be >= 0, got {appointments}")
    began = time.perf_counter()
    show = sys.stderr.isatty() if progress is None else progress
    bar = _Progress(appointments, sys.stderr if show else None)
    plan = _Plan.for_size(appointments)
    if isinstance(bind, Engine):
        with bind.begin() as connection:
            counts = _load(connection, plan, random.Random(seed), bar)
        _analyze(bind, analyze_mysql=True)
    else:
        counts = _load(bind, plan, random.Random(seed), bar)
        _analyze(bind, analyze_mysql=False)
    bar.finish()
    return Generated(
        organizations=plan.organizations,
        barbers=plan.barbers,
        clients=plan.clients,
        services=plan.organizations * len(CATALOGUE),
        appointments=appointments,
        payments=counts.payments,
        first_day=EPOCH,
        today=plan.today,
        last_day=counts.last_day,
        seconds=time.perf_counter() - began,
    )


@dataclass(frozen=True)
class _Plan:
    """Sizes derived from the number of appointments."""

    appointments: int
    barbers: int
    organizations: int
    clients: int
    today: dt.date

    @classmethod
    def for_size(cls, appointments: int) -> _Plan:
        barbers = max(2, math.ceil(appointments / APPOINTMENTS_PER_BARBER))
        per_barber = math.ceil(appointments / barbers)
        weekly = sum(typical for *_, typical in WEEK[1:])  # one day off a week
        span_days = max(1, math.ceil(per_barber / weekly * 7))
        return cls(
            appointments=appointments,
            barbers=barbers,
            organizations=math.ceil(barbers / BARBERS_PER_SHOP),
            clients=max(3 * barbers, appointments // VISITS_PER_CLIENT),
            today=EPOCH + dt.timedelta(days=max(1, round(span_days * (1 - FUTURE_SHARE)))),
        )

    # Ids: barbers 1..B, shop owners B+1..B+O, client users after them; client i has user
    # barbers + organizations + i and prefers barber (i - 1) % barbers + 1.
    def owner_id(self, organization: int) -> int:
        return self.barbers + organization

    def client_user_id(self, client: int) -> int:
        return self.barbers + self.organizations + client

    def organization_of(self, barber: int) -> int:
        return (barber - 1) // BARBERS_PER_SHOP + 1

    def service_id(self, organization: int, index: int) -> int:
        return (organization - 1) * len(CATALOGUE) + index + 1

    def day_off(self, barber: int) -> int:
        return 0 if barber % 3 else 1  # Monday for most, Tuesday for every third barber


@dataclass
class _Counts:
    payments: int = 0
    last_day: dt.date = EPOCH
    spent: dict[int, Decimal] = field(default_factory=dict)
    last_visit: dict[int, dt.datetime] = field(default_factory=dict)


def _load(connection: Connection, plan: _Plan, rng: random.Random, bar: _Progress) -> _Counts:
    _require_empty(connection)
    writer = _writer_for(connection)
    writer.prepare()
    prices = _price_list(plan, rng)
    writer.write("organizations", _organizations(plan, rng))
    writer.write("users", _users(plan, rng))
    writer.write("user_organizations", _memberships(plan))
    writer.write("services", _services(plan, prices))
    writer.write("barber_services", _barber_services(plan, prices))
    writer.write("clients", _clients(plan, rng))
    writer.write("barber_availability", _availability(plan))
    writer.write("ai_insight_cache", _insights(plan))
    counts = _Counts()
    for appointment_rows, payment_rows in _appointment_chunks(plan, prices, rng, counts):
        writer.write("appointments", appointment_rows)
        writer.write("payments", payment_rows)
        bar.advance(len(appointment_rows))
    writer.write_client_totals(_client_totals(plan, counts))
    writer.finish()
    return counts


def _require_empty(connection: Connection) -> None:
    Base.metadata.create_all(connection)
    for name in ("users", "appointments"):
        table = Base.metadata.tables[name]
        if connection.scalar(select(func.count()).select_from(table)):
            raise GenerateError(f"table {name!r} already holds rows; generate fills empty tables")


# ---------------------------------------------------------------------------------------
# Row producers: plain tuples in _COLUMNS order.


def _utc(day: dt.date, hour: int = 12) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=dt.timezone.utc)


def _price_list(plan: _Plan, rng: random.Random) -> dict[int, Decimal]:
    """Price of every service id: the catalogue price times the shop's price level."""
    prices = {}
    for organization in range(1, plan.organizations + 1):
        level = rng.choice(PRICE_LEVELS)
        for index, (_, base, _, _) in enumerate(CATALOGUE):
            prices[plan.service_id(organization, index)] = (base * level).quantize(
                Decimal("0.50")
            )
    return prices


def _organizations(plan: _Plan, rng: random.Random) -> Iterator[Row]:
    for organization in range(1, plan.organizations + 1):
        opened = EPOCH - dt.timedelta(days=rng.randrange(400, 3000))
        yield (organization, f"Shop {organization}", _utc(opened))


def _users(plan: _Plan, rng: random.Random) -> Iterator[Row]:
    def user(user_id: int, role: str, organization: int, joined: dt.date) -> Row:
        return (
            user_id, f"{role}{user_id}@example.com", f"{role.replace('_', ' ').title()} {user_id}",
            role, rng.random() > 0.03, Decimal("0.00"), organization, _utc(joined),
        )

    for barber in range(1, plan.barbers + 1):
        joined = EPOCH - dt.timedelta(days=rng.randrange(30, 1500))
        yield user(barber, "barber", plan.organization_of(barber), joined)
    for organization in range(1, plan.organizations + 1):
        yield user(plan.owner_id(organization), "shop_owner", organization, EPOCH)
    for client in range(1, plan.clients + 1):
        joined = EPOCH - dt.timedelta(days=rng.randrange(0, 1000))
        yield user(plan.client_user_id(client), "client", _client_organization(plan, client),
                   joined)


def _client_barber(plan: _Plan, client: int) -> int:
    return (client - 1) % plan.barbers + 1


def _client_organization(plan: _Plan, client: int) -> int:
    return plan.organization_of(_client_barber(plan, client))


def _memberships(plan: _Plan) -> Iterator[Row]:
    link = 0
    for barber in range(1, plan.barbers + 1):
        link += 1
        yield (link, barber, plan.organization_of(barber), "barber", True)
    for organization in range(1, plan.organizations + 1):
        link += 1
        yield (link, plan.owner_id(organization), organization, "owner", True)
    for client in range(1, plan.clients + 1):
        link += 1
        yield (link, plan.client_user_id(client), _client_organization(plan, client), "client",
               True)


def _services(plan: _Plan, prices: dict[int, Decimal]) -> Iterator[Row]:
    for organization in range(1, plan.organizations + 1):
        for index, (name, _, minutes, _) in enumerate(CATALOGUE):
            service = plan.service_id(organization, index)
            yield (service, organization, name, prices[service], minutes)


def _barber_services(plan: _Plan, prices: dict[int, Decimal]) -> Iterator[Row]:
    for barber in range(1, plan.barbers + 1):
        organization = plan.organization_of(barber)
        for index in range(len(CATALOGUE)):
            service = plan.service_id(organization, index)
            # Every fourth barber charges a premium: the custom_price the real schema has.
            custom = prices[service] + Decimal("5.00") if barber % 4 == 0 else None
            yield (barber, service, custom)


def _clients(plan: _Plan, rng: random.Random) -> Iterator[Row]:
    for client in range(1, plan.clients + 1):
        registered = EPOCH - dt.timedelta(days=rng.randrange(0, 1000))
        yield (
            client, plan.client_user_id(client), _client_barber(plan, client),
            f"Client {client}", f"555-{client:07d}", None, _utc(registered), Decimal("0.00"),
        )


def _availability(plan: _Plan) -> Iterator[Row]:
    row = 0
    for barber in range(1, plan.barbers + 1):
        for weekday, (opens, closes, _) in enumerate(WEEK):
            row += 1
            yield (row, barber, weekday, opens, closes, weekday != plan.day_off(barber))


def _insights(plan: _Plan) -> Iterator[Row]:
    for barber in range(1, plan.barbers + 1):
        yield (barber, barber, "revenue_trend", "{}", True, _utc(EPOCH))


def _client_totals(plan: _Plan, counts: _Counts) -> Iterator[Row]:
    """(client id, client's user id, total spent, last visit) for clients who paid."""
    for client, spent in sorted(counts.spent.items()):
        yield (client, plan.client_user_id(client), spent, counts.last_visit[client])


def _appointment_chunks(
    plan: _Plan, prices: dict[int, Decimal], rng: random.Random, counts: _Counts
) -> Iterator[tuple[list[Row], list[Row]]]:
    """Appointments and their payments in chunks, day by day with barbers interleaved (so ids
    follow time, as in a real table), until every barber has had their share."""
    book = _Book(plan, prices, rng, counts)
    quota = [0] + [plan.appointments // plan.barbers] * plan.barbers
    for barber in range(1, plan.appointments % plan.barbers + 1):
        quota[barber] += 1
    day = EPOCH
    while any(quota):
        for barber in range(1, plan.barbers + 1):
            if quota[barber] and day.weekday() != plan.day_off(barber):
                quota[barber] -= book.fill_day(barber, day, quota[barber])
                counts.last_day = day
            if len(book.appointments) >= CHUNK:
                yield book.take()
        day += dt.timedelta(days=1)
    if book.appointments:
        yield book.take()


class _Book:
    """The appointment book being written: rows not yet handed to the writer, and ids."""

    def __init__(
        self, plan: _Plan, prices: dict[int, Decimal], rng: random.Random, counts: _Counts
    ) -> None:
        self.plan, self.prices, self.rng, self.counts = plan, prices, rng, counts
        self.appointments: list[Row] = []
        self.payments: list[Row] = []
        self.last_id = 0
        # Precomputed so the loop below creates no timedelta and calls random() once per pick.
        self.minutes = [dt.timedelta(minutes=m) for m in range(24 * 60 + 1)]
        self.weighted = [i for i, (*_, weight) in enumerate(CATALOGUE) for _ in range(weight)]

    def take(self) -> tuple[list[Row], list[Row]]:
        chunk = self.appointments, self.payments
        self.appointments, self.payments = [], []
        return chunk

    def fill_day(self, barber: int, day: dt.date, at_most: int) -> int:
        """Book up to ``at_most`` of the day's typical appointments, back to back with gaps of
        0-60 minutes inside the opening hours; returns how many were booked."""
        opens, closes, typical = WEEK[day.weekday()]
        window = (closes.hour - opens.hour) * 60
        rng = self.rng
        wanted = min(at_most, max(1, typical + int(rng.random() * 5) - 2))
        services = [self.weighted[int(rng.random() * len(self.weighted))] for _ in range(wanted)]
        while sum(CATALOGUE[s][2] for s in services) > window:
            services.pop()
        slack = (window - sum(CATALOGUE[s][2] for s in services)) // 15  # in quarter hours
        midnight = dt.datetime.combine(day, dt.time())
        clock = opens.hour * 60
        future = day >= self.plan.today
        for service_index in services:
            gap = int(rng.random() * (min(slack, MAX_GAP_QUARTERS) + 1))
            slack -= gap
            clock += 15 * gap
            length = CATALOGUE[service_index][2]
            start, end = midnight + self.minutes[clock], midnight + self.minutes[clock + length]
            self._add(barber, service_index, start, end, _status(future, rng.random()))
            clock += length
        return len(services)

    def _add(
        self, barber: int, service_index: int, start: dt.datetime, end: dt.datetime, status: str
    ) -> None:
        plan, counts = self.plan, self.counts
        organization = plan.organization_of(barber)
        service = plan.service_id(organization, service_index)
        name, _, length, _ = CATALOGUE[service_index]
        price = self.prices[service]
        client = _pick_client(plan, barber, self.rng)
        user = plan.client_user_id(client)
        booked = start - self.minutes[15 * int(self.rng.random() * 96)] * 14  # < 2 weeks ahead
        self.last_id += 1
        self.appointments.append((
            self.last_id, user, barber, client, service, organization, name, start, end, length,
            status, price, booked.replace(tzinfo=dt.timezone.utc),
        ))
        if status != "completed":
            return
        paid = end.replace(tzinfo=dt.timezone.utc)
        counts.payments += 1
        self.payments.append((
            counts.payments, user, barber, organization, self.last_id, price, "completed",
            _commission(barber), paid,
        ))
        counts.spent[client] = counts.spent.get(client, Decimal(0)) + price
        counts.last_visit[client] = max(paid, counts.last_visit.get(client, paid))


def _pick_client(plan: _Plan, barber: int, rng: random.Random) -> int:
    """Three visits in four go to a client who prefers this barber."""
    if rng.random() < 0.75:
        own = (plan.clients - barber) // plan.barbers + 1  # clients b, b + B, b + 2B, ...
        return barber + plan.barbers * int(rng.random() * own)
    return 1 + int(rng.random() * plan.clients)


def _status(future: bool, draw: float) -> str:
    if future:
        return "confirmed" if draw < 0.8 else "pending"
    if draw < COMPLETED_SHARE_OF_PAST:
        return "completed"
    return "cancelled" if draw < 0.97 else "no_show"


_COMMISSIONS = (Decimal("0.1500"), Decimal("0.2000"), Decimal("0.2500"), Decimal("0.3000"))


def _commission(barber: int) -> Decimal:
    return _COMMISSIONS[barber % len(_COMMISSIONS)]


# ---------------------------------------------------------------------------------------
# Writers.


class _Writer:
    """Batched Core ``INSERT`` executemany: any dialect SQLAlchemy supports."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def prepare(self) -> None:
        """Hook run before the first row."""

    def write(self, table_name: str, rows: Iterable[Row]) -> None:
        table = Base.metadata.tables[table_name]
        columns = _COLUMNS[table_name]
        batch: list[dict[str, Any]] = []
        for row in rows:
            batch.append(dict(zip(columns, row, strict=True)))
            if len(batch) >= CHUNK:
                self.connection.execute(insert(table), batch)
                batch = []
        if batch:
            self.connection.execute(insert(table), batch)

    def write_client_totals(self, totals: Iterable[Row]) -> None:
        rows = list(totals)
        if not rows:
            return
        clients, users = Base.metadata.tables["clients"], Base.metadata.tables["users"]
        self.connection.execute(
            update(clients)
            .where(clients.c.id == bindparam("client_key"))
            .values(total_spent=bindparam("spent"), last_visit=bindparam("last")),
            [{"client_key": c, "spent": spent, "last": last} for c, _, spent, last in rows],
        )
        self.connection.execute(
            update(users)
            .where(users.c.id == bindparam("user_key"))
            .values(lifetime_value=bindparam("spent")),
            [{"user_key": user, "spent": spent} for _, user, spent, _ in rows],
        )

    def finish(self) -> None:
        """Hook run after the last row."""


class _CopyWriter(_Writer):
    """PostgreSQL through psycopg 3: COPY ... FROM STDIN on the raw connection."""

    def prepare(self) -> None:
        # Losing the last commits on a crash is fine for generated data; waiting for the
        # WAL flush of every COPY chunk is not.
        self.connection.exec_driver_sql("SET LOCAL synchronous_commit = off")

    def _copy(self, table: str, columns: Sequence[str], rows: Iterable[Row]) -> None:
        quote = self.connection.dialect.identifier_preparer.quote
        statement = f"COPY {quote(table)} ({', '.join(quote(c) for c in columns)}) FROM STDIN"
        raw: Any = self.connection.connection.dbapi_connection
        with raw.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)

    def write(self, table_name: str, rows: Iterable[Row]) -> None:
        self._copy(table_name, _COLUMNS[table_name], rows)

    def write_client_totals(self, totals: Iterable[Row]) -> None:
        self.connection.exec_driver_sql(
            "CREATE TEMPORARY TABLE sqlaopt_client_totals (client_id integer, user_id integer, "
            "spent numeric(10, 2), last_visit timestamptz) ON COMMIT DROP"
        )
        self._copy(
            "sqlaopt_client_totals", ("client_id", "user_id", "spent", "last_visit"), totals
        )
        self.connection.exec_driver_sql(
            "UPDATE clients SET total_spent = t.spent, last_visit = t.last_visit "
            "FROM sqlaopt_client_totals t WHERE clients.id = t.client_id"
        )
        self.connection.exec_driver_sql(
            "UPDATE users SET lifetime_value = t.spent "
            "FROM sqlaopt_client_totals t WHERE users.id = t.user_id"
        )

    def finish(self) -> None:
        # Rows came with explicit ids: move each id sequence past them, or the next ORM insert
        # would collide with id 1.
        format_table = self.connection.dialect.identifier_preparer.format_table
        for table in Base.metadata.sorted_tables:
            if _has_serial_id(table):
                self.connection.execute(
                    text(
                        "SELECT setval(pg_get_serial_sequence(:table, 'id'), "
                        f"(SELECT max(id) FROM {format_table(table)}))"
                    ),
                    {"table": table.name},
                )


def _has_serial_id(table: Table) -> bool:
    keys = list(table.primary_key.columns)
    return len(keys) == 1 and keys[0].name == "id" and keys[0].autoincrement in (True, "auto")


def _writer_for(connection: Connection) -> _Writer:
    dialect: Dialect = connection.dialect
    if dialect.name == "postgresql" and dialect.driver == "psycopg":
        return _CopyWriter(connection)
    return _Writer(connection)


def _analyze(bind: Engine | Connection, *, analyze_mysql: bool) -> None:
    names = ", ".join(_COLUMNS)
    dialect = bind.dialect.name
    if dialect == "postgresql":
        statement = f"ANALYZE {names}"
    elif dialect in ("mysql", "mariadb") and analyze_mysql:
        statement = f"ANALYZE TABLE {names}"
    else:
        return
    if isinstance(bind, Engine):
        with bind.connect() as connection:
            connection.exec_driver_sql(statement).close()
            connection.commit()
    else:
        bind.exec_driver_sql(statement).close()


# ---------------------------------------------------------------------------------------
# Progress bar.


class _Progress:
    """A one-line progress bar on a terminal; does nothing when ``stream`` is None."""

    WIDTH = 30
    EVERY = 0.1  # seconds between redraws

    def __init__(self, total: int, stream: TextIO | None) -> None:
        self.total, self.stream = total, stream
        self.done = 0
        self.began = self.drawn = time.perf_counter()

    def advance(self, rows: int) -> None:
        self.done += rows
        if self.stream is not None and time.perf_counter() - self.drawn >= self.EVERY:
            self._draw()

    def finish(self) -> None:
        if self.stream is not None:
            self._draw()
            self.stream.write("\n")
            self.stream.flush()

    def _draw(self) -> None:
        assert self.stream is not None
        self.drawn = time.perf_counter()
        share = self.done / self.total if self.total else 1.0
        filled = int(share * self.WIDTH)
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        self.stream.write(
            f"\rgenerating [{bar}] {share:4.0%}  {self.done:,}/{self.total:,} appointments"
            f"  {self.drawn - self.began:.0f}s"
        )
        self.stream.flush()
